"""The residual convolutional network family (`"resnet"`): a stem, stages of residual blocks, masked pooling, a head.

A deep convolutional network with no recurrent layer, after the 1-D ResNets that classify ECG rhythms (Hannun et
al., Nature Medicine 2019: 16 residual blocks, 34 layers), made small enough to train on a CPU. Every block is a
:class:`~ecgrhythm.networks.layers.MaskedConvBlock` (two convolutions with batch normalisation and a 1x1 shortcut,
then max pooling): the stem, whose pooling shortens the signal by `stem_pool`, then stages of `blocks_per_stage`
blocks, the last of which halves the sequence; the features are batch-normalised before the head, so that the
pooled maxima of 22 layers start at the scale the head's initial weights expect. It sees the signal through convolutions only, where the CNN + LSTM
family reads its features in order, so it makes other errors: a member for ensembles whose networks differ in more
than their initial weights. Padding never changes a prediction: every layer zeroes the steps its mask drops, as in
the other families.

The family is :data:`FAMILY`: :class:`ResNetConfig`, :func:`build_resnet_classifier` and :func:`write_onnx`, which
maps the blocks onto `Conv`, `BatchNormalization`, `Add` and `MaxPool`, and the head onto masked mean and max
pooling with `MatMul`/`Softmax`.
"""

from __future__ import annotations

import dataclasses

from ecgrhythm.config import check_argument
from ecgrhythm.networks.family import (
    MAX_BLOCKS_PER_STAGE,
    MAX_DOWNSAMPLING,
    MAX_FILTERS,
    MAX_KERNEL,
    NetworkConfig,
    NetworkFamily,
    check_halving_filters,
    check_head,
    check_whole,
)
from ecgrhythm.networks.onnx_graph import OnnxGraph, batch_norm, channels_first, conv_block, pooled_head, time_major

__all__ = ["ResNetConfig", "build_resnet_classifier", "write_onnx", "FAMILY"]


@dataclasses.dataclass(frozen=True)
class ResNetConfig(NetworkConfig):
    """Architecture of the residual convolutional network.

    Args:
        stem_pool: the factor the stem block shortens the input by (1: none).
        stem_filters: filters of the stem block, at most `MAX_FILTERS`.
        stem_kernel: kernel of the stem block, at most `MAX_KERNEL`.
        stage_filters: filters of each stage's blocks (1 to `MAX_STAGES` stages); each stage halves the sequence, so
            the network shortens its input by `stem_pool * 2 ** len(stage_filters)`, at most `MAX_DOWNSAMPLING`.
        blocks_per_stage: residual blocks per stage, 1 to `MAX_BLOCKS_PER_STAGE`; the last one halves the sequence.
        kernel: kernel of the blocks' convolutions, at most `MAX_KERNEL`.
        dropout: dropout rate before the classification head.
        multilabel: sigmoid outputs (several labels per record) instead of softmax.

    The defaults make 22 convolutional layers (11 blocks of two) and 11 shortcuts, with about 0.24 million weights;
    a training epoch takes about as long as the shipped CNN + LSTM's.
    `config.json` records it with `"network": "resnet"`.

    Example:
        >>> ResNetConfig().downsampling                               # as the shipped CNN + LSTM's
        64
        >>> ResNetConfig(blocks_per_stage=5)
        Traceback (most recent call last):
        ...
        ValueError: Invalid argument `blocks_per_stage`: expected an integer from 1 to 4. Received: blocks_per_stage=5
    """

    network = "resnet"

    stem_pool: int = 2
    stem_filters: int = 16
    stem_kernel: int = 8
    stage_filters: tuple[int, ...] = (16, 24, 32, 48, 64)
    blocks_per_stage: int = 2
    kernel: int = 7
    dropout: float = 0.3
    multilabel: bool = False

    def __post_init__(self):
        check_whole("stem_pool", self.stem_pool, 1, MAX_DOWNSAMPLING)
        check_whole("stem_filters", self.stem_filters, 1, MAX_FILTERS)
        check_whole("stem_kernel", self.stem_kernel, 1, MAX_KERNEL)
        check_halving_filters("stage_filters", self.stage_filters, "stage")
        check_argument(
            self.downsampling <= MAX_DOWNSAMPLING,
            "stage_filters",
            f"at most {MAX_DOWNSAMPLING} for stem_pool * 2 ** len(stage_filters) (the input is padded to it)",
            self.stage_filters,
        )
        check_whole("blocks_per_stage", self.blocks_per_stage, 1, MAX_BLOCKS_PER_STAGE)
        check_whole("kernel", self.kernel, 1, MAX_KERNEL)
        check_head(self)

    @property
    def downsampling(self) -> int:
        """Factor by which the network shortens its input sequence: `stem_pool * 2 ** len(stage_filters)`."""
        return int(self.stem_pool) * 2 ** len(self.stage_filters)


def _blocks(config: ResNetConfig):
    """`(name, filters, pool_size)` of each residual block, in order."""
    for s, filters in enumerate(config.stage_filters):
        for b in range(config.blocks_per_stage):
            yield f"block_{s}_{b}", int(filters), 2 if b == config.blocks_per_stage - 1 else 1


def build_resnet_classifier(n_channels: int, n_classes: int, config: ResNetConfig | None = None):
    """Build the residual convolutional classifier (`config`, default `ResNetConfig()`) for `n_channels` inputs and
    `n_classes` outputs: the `keras.Model` :attr:`~ecgrhythm.networks.family.NetworkFamily.build` describes.

    Example:
    >>> build_resnet_classifier(1, 4, ResNetConfig(stage_filters=(8, 8), blocks_per_stage=1)).output.shape
    (None, 4)
    """
    import keras

    from ecgrhythm.networks.layers import DownsampleMask, MaskedConvBlock, classification_head, network_inputs

    config = config or ResNetConfig()
    signal, mask = network_inputs(n_channels)
    x = MaskedConvBlock(config.stem_filters, config.stem_kernel, pool_size=int(config.stem_pool), name="stem")(signal, mask)
    m = DownsampleMask(int(config.stem_pool), name="mask_stem")(mask) if config.stem_pool > 1 else mask
    for name, filters, pool in _blocks(config):
        x = MaskedConvBlock(filters, config.kernel, pool_size=pool, name=name)(x, m)
        if pool > 1:
            m = DownsampleMask(pool, name=f"mask_{name}")(m)
    x = keras.layers.BatchNormalization(name="features_norm")(x)  # the pooling reads only the kept steps
    out = classification_head(x, m, n_classes, config.dropout, config.multilabel)
    return keras.Model({"signal": signal, "mask": mask}, out, name="ecgrhythm_resnet")


def write_onnx(g: OnnxGraph, network, config: ResNetConfig, signal: str, keep: str) -> str:
    """Append the nodes of a trained residual `network`; returns the name of its `(batch, n_classes)` probabilities.

    See :attr:`ecgrhythm.networks.family.NetworkFamily.write_onnx`.
    """
    x, m = channels_first(g, signal, keep)
    for name in ["stem", *(name for name, _, _ in _blocks(config))]:
        x, m = conv_block(g, x, m, network.get_layer(name))
    x, m, _ = time_major(g, batch_norm(g, x, network.get_layer("features_norm")), m)
    return pooled_head(g, x, m, network.get_layer("probabilities"), config.multilabel)


FAMILY = NetworkFamily(ResNetConfig, build_resnet_classifier, write_onnx)
