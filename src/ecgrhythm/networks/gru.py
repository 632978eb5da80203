"""The GRU network family (`"gru"`): a strided convolutional stem, a GRU stack, masked pooling, a head.

A small, fast network: each stem convolution (with bias, ReLU) shortens the sequence by its stride, so the
GRU reads `1 / prod(strides)` of the steps, and one direction of three gates holds 3/8 of the recurrent
weights of a bidirectional LSTM of the same width. Padding never changes a prediction: each stem layer zeroes the steps its shortened mask
drops (a step is kept if any of its inputs was), and the GRU layers and the pooling take that mask.

The family is :data:`FAMILY`: :class:`GruConfig`, :func:`build_gru_classifier` and :func:`write_onnx`,
which maps the stem onto strided `Conv`, `Relu` and `MaxPool` of the mask, and each GRU layer onto
ONNX's `GRU` operator (`linear_before_reset`, as Keras' `reset_after`) with `sequence_lens`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ecgrhythm.config import check_argument
from ecgrhythm.networks.family import (
    MAX_DOWNSAMPLING,
    MAX_FILTERS,
    MAX_KERNEL,
    MAX_RECURRENT_LAYERS,
    MAX_STAGES,
    MAX_UNITS,
    NetworkConfig,
    NetworkFamily,
    check_head,
    check_whole,
)
from ecgrhythm.networks.onnx_graph import OnnxGraph, channels_first, conv, downsample_mask, pooled_head, recurrent, time_major

__all__ = ["GruConfig", "build_gru_classifier", "write_onnx", "gru_weights", "FAMILY"]


@dataclasses.dataclass(frozen=True)
class GruConfig(NetworkConfig):
    """Architecture of the GRU network.

    Args:
        strides: stride of each stem convolution (1 to `MAX_STAGES` of them); the network shortens its input by
            their product, at most `MAX_DOWNSAMPLING`.
        filters: filters of every stem convolution, at most `MAX_FILTERS`.
        kernel: kernel size of every stem convolution, at least the largest stride and at most `MAX_KERNEL`.
        gru_layers: stacked GRU layers, 1 to `MAX_RECURRENT_LAYERS`.
        gru_units: units per GRU layer, at most `MAX_UNITS`.
        dropout: dropout rate before the classification head.
        multilabel: sigmoid outputs (several labels per record) instead of softmax.

    `config.json` records it with `"network": "gru"`.
    """

    network = "gru"

    strides: tuple[int, ...] = (4, 4)
    filters: int = 32
    kernel: int = 9
    gru_layers: int = 1
    gru_units: int = 32
    dropout: float = 0.2
    multilabel: bool = False

    def __post_init__(self):
        strides = self.strides
        check_argument(
            isinstance(strides, (tuple, list)) and 1 <= len(strides) <= MAX_STAGES, "strides", f"a list of 1 to {MAX_STAGES} strides", strides
        )
        for s in strides:
            check_whole("strides", s, 1, MAX_KERNEL)
        check_argument(
            math.prod(strides) <= MAX_DOWNSAMPLING,
            "strides",
            f"strides whose product is at most {MAX_DOWNSAMPLING} (the input is padded to it)",
            strides,
        )
        check_whole("filters", self.filters, 1, MAX_FILTERS)
        check_whole("kernel", self.kernel, 1, MAX_KERNEL)
        check_argument(self.kernel >= max(strides), "kernel", f"an integer of at least the largest stride, {max(strides)}", self.kernel)
        check_whole("gru_layers", self.gru_layers, 1, MAX_RECURRENT_LAYERS)
        check_whole("gru_units", self.gru_units, 1, MAX_UNITS)
        check_head(self)

    @property
    def downsampling(self) -> int:
        """Factor by which the network shortens its input sequence: the product of `strides`."""
        return math.prod(int(s) for s in self.strides)


def build_gru_classifier(n_channels: int, n_classes: int, config: GruConfig | None = None):
    """Build the GRU classifier.

    Args:
        n_channels: input channels.
        n_classes: output classes.
        config: architecture; defaults to `GruConfig()`.

    Returns:
        A `keras.Model` with inputs `{"signal": (batch, steps, n_channels) float32, "mask": (batch, steps) bool}`
        and output `(batch, n_classes)` probabilities. `steps` must be a multiple of `config.downsampling`.

    Example:
    >>> build_gru_classifier(1, 4, GruConfig(strides=(2, 2), gru_units=8)).output.shape
    (None, 4)
    """
    import keras
    from keras import layers

    from ecgrhythm.networks.layers import DownsampleMask, MaskedStridedConv, classification_head, network_inputs

    config = config or GruConfig()
    signal, mask = network_inputs(n_channels)
    x, m = signal, mask
    for i, stride in enumerate(config.strides):
        m = DownsampleMask(int(stride), name=f"mask_down_{i}")(m)
        x = MaskedStridedConv(config.filters, config.kernel, int(stride), name=f"stem_{i}")(x, m)
    for i in range(config.gru_layers):
        x = layers.GRU(config.gru_units, return_sequences=True, name=f"gru_{i}")(x, mask=m)
    out = classification_head(x, m, n_classes, config.dropout, config.multilabel)
    return keras.Model({"signal": signal, "mask": mask}, out, name="ecgrhythm_gru")


def gru_weights(layer):
    """ONNX `W (1, 3h, in)`, `R (1, 3h, h)`, `B (1, 6h)` of a Keras GRU (gates z, r, h in both; `reset_after` biases)."""
    cell = layer.cell
    if cell.activation.__name__ != "tanh" or cell.recurrent_activation.__name__ != "sigmoid" or not cell.reset_after:
        raise ValueError(f"GRU {layer.name}: only tanh/sigmoid activations with reset_after=True map onto the ONNX GRU operator")
    h = cell.units
    bias = np.asarray(cell.bias).reshape(-1) if cell.use_bias else np.zeros(6 * h, np.float32)  # (2, 3h): input, then recurrent
    return np.asarray(cell.kernel).T[None], np.asarray(cell.recurrent_kernel).T[None], bias[None]


def write_onnx(g: OnnxGraph, network, config: GruConfig, signal: str, keep: str) -> str:
    """Append the nodes of a trained GRU `network`; returns the name of its `(batch, n_classes)` probabilities.

    See :attr:`ecgrhythm.networks.family.NetworkFamily.write_onnx`.
    """
    x, m = channels_first(g, signal, keep)
    for i, stride in enumerate(config.strides):
        m = downsample_mask(g, m, int(stride))
        x = g.op("Mul", [g.op("Relu", [conv(g, x, network.get_layer(f"stem_{i}").conv, int(stride))]), m])
    x, m, lengths = time_major(g, x, m)
    for i in range(config.gru_layers):
        x = recurrent(g, "GRU", x, gru_weights(network.get_layer(f"gru_{i}")), lengths, "forward", linear_before_reset=1)
    return pooled_head(g, x, m, network.get_layer("probabilities"), config.multilabel)


FAMILY = NetworkFamily(GruConfig, build_gru_classifier, write_onnx)
