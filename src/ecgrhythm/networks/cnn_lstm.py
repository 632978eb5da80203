"""The CNN + LSTM network family (`"cnn_lstm"`): masked convolutional blocks, an LSTM stack, masked pooling, a head.

Padding never changes a prediction: every convolutional block zeroes the padded steps of its output, so
each layer sees zeros beyond a record's end whatever the padded length, and the boolean mask is halved with
the sequence (`ceil` semantics) and handed to the LSTM layers and the pooling.

The family is :data:`FAMILY`: :class:`ModelConfig`, :func:`build_lstm_classifier` and :func:`write_onnx`,
which maps each layer onto ONNX: `Conv` and `BatchNormalization` for each block's convolutions, `MaxPool`
for the features and for the mask, ONNX's own `LSTM` operator with `sequence_lens` for the masked
(bi)directional LSTM, masked mean and max pooling, and `MatMul`/`Softmax` for the head.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ecgrhythm.config import check_argument
from ecgrhythm.networks.family import (
    MAX_KERNEL,
    MAX_RECURRENT_LAYERS,
    MAX_UNITS,
    NetworkConfig,
    NetworkFamily,
    check_halving_filters,
    check_head,
    check_whole,
)
from ecgrhythm.networks.onnx_graph import OnnxGraph, channels_first, conv_block, pooled_head, recurrent, time_major

__all__ = ["ModelConfig", "build_lstm_classifier", "write_onnx", "FAMILY"]


@dataclasses.dataclass(frozen=True)
class ModelConfig(NetworkConfig):
    """Architecture of the CNN + LSTM: the convolutional front end, the LSTM stack and the head.

    Args:
        conv_filters: filters of each convolutional block (1 to `MAX_STAGES` blocks of at most `MAX_FILTERS`);
            each block halves the sequence length, so the network shortens its input by
            `2 ** len(conv_filters)`.
        conv_kernel: kernel size of every convolution, at most `MAX_KERNEL`.
        lstm_layers: number of stacked LSTM layers (0 for none), at most `MAX_RECURRENT_LAYERS`.
        lstm_units: units per LSTM layer (per direction), at most `MAX_UNITS`.
        bidirectional: whether each LSTM layer reads both directions.
        dropout: dropout rate before the classification head.
        multilabel: sigmoid outputs (several labels per record) instead of softmax.

    `config.json` records it with `"network": "cnn_lstm"` (see :class:`~ecgrhythm.networks.family.NetworkConfig`).

    Example:
        >>> import ecgrhythm
        >>> ecgrhythm.RhythmClassifier.load().architecture_          # the shipped model's
        ModelConfig(conv_filters=(8, 16, 24, 32, 48, 64), conv_kernel=7, lstm_layers=2, lstm_units=64, bidirectional=True, dropout=0.3, multilabel=False)
        >>> smaller = ecgrhythm.ModelConfig(lstm_units=32)            # pass it as `model_config=` to train
        >>> smaller.downsampling                                     # 2 ** len(conv_filters)
        64
        >>> ecgrhythm.ModelConfig(dropout=1.0)
        Traceback (most recent call last):
        ...
        ValueError: Invalid argument `dropout`: expected a rate in [0, 1). Received: dropout=1.0
    """

    network = "cnn_lstm"

    conv_filters: tuple[int, ...] = (8, 16, 24, 32, 48, 64)
    conv_kernel: int = 7
    lstm_layers: int = 2
    lstm_units: int = 64
    bidirectional: bool = True
    dropout: float = 0.3
    multilabel: bool = False

    def __post_init__(self):
        check_halving_filters("conv_filters", self.conv_filters, "block")
        check_whole("conv_kernel", self.conv_kernel, 1, MAX_KERNEL)
        check_whole("lstm_layers", self.lstm_layers, 0, MAX_RECURRENT_LAYERS)
        check_whole("lstm_units", self.lstm_units, 1, MAX_UNITS)
        check_argument(isinstance(self.bidirectional, bool), "bidirectional", "True or False", self.bidirectional)
        check_head(self)

    @property
    def downsampling(self) -> int:
        """Factor by which the network shortens its input sequence: `2 ** len(conv_filters)`."""
        return 2 ** len(self.conv_filters)


def build_lstm_classifier(n_leads: int, n_classes: int, config: ModelConfig | None = None):
    """Build the CNN + LSTM classifier.

    Args:
        n_leads: input channels.
        n_classes: output classes.
        config: architecture; defaults to `ModelConfig()`.

    Returns:
        A `keras.Model` with inputs `{"signal": (batch, steps, n_leads) float32,
        "mask": (batch, steps) bool}` and output `(batch, n_classes)`
        probabilities (softmax, or sigmoid for multi-label). `steps` must be a
        multiple of `config.downsampling`.

    Example:
    >>> model = build_lstm_classifier(1, 4)
    >>> model.output.shape
    (None, 4)
    """
    import keras
    from keras import layers

    from ecgrhythm.networks.layers import DownsampleMask, MaskedConvBlock, classification_head, network_inputs

    config = config or ModelConfig()
    signal, mask = network_inputs(n_leads)
    x, m = signal, mask
    for i, filters in enumerate(config.conv_filters):
        x = MaskedConvBlock(int(filters), config.conv_kernel, name=f"conv_block_{i}")(x, m)
        m = DownsampleMask(name=f"mask_down_{i}")(m)
    for i in range(config.lstm_layers):
        lstm = layers.LSTM(config.lstm_units, return_sequences=True, name=f"lstm_{i}")
        if config.bidirectional:
            lstm = layers.Bidirectional(lstm, name=f"bilstm_{i}")
        x = lstm(x, mask=m)
    out = classification_head(x, m, n_classes, config.dropout, config.multilabel)
    return keras.Model({"signal": signal, "mask": mask}, out, name="ecgrhythm_cnn_lstm")


def _lstm_weights(layer):
    """ONNX `W (4h, in)`, `R (4h, h)`, `B (8h,)` of a Keras LSTM (gates i, f, c, o -> ONNX i, o, f, c)."""
    cell = layer.cell
    if cell.activation.__name__ != "tanh" or cell.recurrent_activation.__name__ != "sigmoid":
        raise ValueError(f"LSTM {layer.name}: only tanh/sigmoid activations map onto the ONNX LSTM operator")
    h = cell.units
    order = np.concatenate([np.arange(0, h), np.arange(3 * h, 4 * h), np.arange(h, 2 * h), np.arange(2 * h, 3 * h)])
    w = np.asarray(cell.kernel)[:, order].T
    r = np.asarray(cell.recurrent_kernel)[:, order].T
    b = np.asarray(cell.bias)[order] if cell.use_bias else np.zeros(4 * h, np.float32)
    return w, r, np.concatenate([b, np.zeros_like(b)])


def write_onnx(g: OnnxGraph, network, config: ModelConfig, signal: str, keep: str) -> str:
    """Append the nodes of a trained CNN + LSTM `network`; returns the name of its `(batch, n_classes)` probabilities.

    See :attr:`ecgrhythm.networks.family.NetworkFamily.write_onnx`.
    """
    x, m = channels_first(g, signal, keep)  # (batch, n_channels, 1, steps), (batch, 1, 1, steps)
    for i in range(len(config.conv_filters)):
        x, m = conv_block(g, x, m, network.get_layer(f"conv_block_{i}"))
    x, m, lengths = time_major(g, x, m)
    for i in range(config.lstm_layers):
        if config.bidirectional:
            wrapper = network.get_layer(f"bilstm_{i}")
            directions, direction = [wrapper.forward_layer, wrapper.backward_layer], "bidirectional"
        else:
            directions, direction = [network.get_layer(f"lstm_{i}")], "forward"
        weights = [np.stack(a) for a in zip(*(_lstm_weights(layer) for layer in directions))]
        x = recurrent(g, "LSTM", x, weights, lengths, direction)
    return pooled_head(g, x, m, network.get_layer("probabilities"), config.multilabel)


FAMILY = NetworkFamily(ModelConfig, build_lstm_classifier, write_onnx)
