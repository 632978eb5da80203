"""The masked Keras layers network families are built from, and their shared inputs and head.

Every layer keeps padding out of a prediction: a layer that shortens the sequence zeroes the padded steps
of its output, and the boolean mask `(batch, steps)` (True = real sample, a prefix of each row) is shortened
with it (:class:`DownsampleMask`), so each layer sees zeros past a record's end whatever the padded length.
Family modules import this module inside their builders, so that loading a config imports no Keras.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from ecgrhythm.utils.validation import check_positive_int

__all__ = ["MaskedConvBlock", "MaskedStridedConv", "DownsampleMask", "MaskedGlobalPooling", "network_inputs", "classification_head"]

_PACKAGE = "ecgrhythm"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedConvBlock(layers.Layer):
    """Two convolutions with batch normalisation and a residual path (a 1x1 convolution), then max pooling by `pool_size`.

    Args:
        filters: filters of each convolution.
        kernel_size: kernel of the two convolutions.
        pool_size: the factor the block shortens the sequence by (1: no pooling).

    Call args:
        inputs: float `(batch, steps, channels)`; `steps` must be a multiple of `pool_size`.
        keep: bool mask `(batch, steps)`, True for real samples.

    Returns:
        float `(batch, steps // pool_size, filters)`, zero where the shortened mask is False.
    """

    def __init__(self, filters, kernel_size, pool_size=2, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        check_positive_int("pool_size", pool_size)
        self.filters = filters
        self.kernel_size = kernel_size
        self.pool_size = pool_size
        self.conv1 = layers.Conv1D(filters, kernel_size, padding="same", use_bias=False)
        self.bn1 = layers.BatchNormalization()
        self.conv2 = layers.Conv1D(filters, kernel_size, padding="same", use_bias=False)
        self.bn2 = layers.BatchNormalization()
        self.skip = layers.Conv1D(filters, 1, use_bias=False)
        self.pool = layers.MaxPooling1D(pool_size) if pool_size > 1 else None

    def build(self, input_shape):
        self.conv1.build(input_shape)
        self.bn1.build(input_shape[:-1] + (self.filters,))
        self.conv2.build(input_shape[:-1] + (self.filters,))
        self.bn2.build(input_shape[:-1] + (self.filters,))
        self.skip.build(input_shape)

    def call(self, inputs, keep, training=None):
        m = ops.expand_dims(ops.cast(keep, inputs.dtype), -1)
        h = ops.relu(self.bn1(self.conv1(inputs), training=training)) * m
        h = self.bn2(self.conv2(h), training=training)
        h = ops.relu(h + self.skip(inputs)) * m
        return h if self.pool is None else self.pool(h)

    def compute_output_shape(self, inputs_shape, keep_shape):
        steps = None if inputs_shape[1] is None else inputs_shape[1] // self.pool_size
        return (inputs_shape[0], steps, self.filters)

    def get_config(self):
        config = {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}
        return config if self.pool_size == 2 else {**config, "pool_size": self.pool_size}  # as before pool_size existed, when 2


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedStridedConv(layers.Layer):
    """A convolution with bias, stride `strides` and Keras "same" padding, then ReLU, zero past the real steps.

    Call args:
        inputs: float `(batch, steps, channels)`; `steps` must be a multiple of `strides`.
        keep: bool mask of the output, `(batch, steps // strides)` (:class:`DownsampleMask` of the input's).

    Returns:
        float `(batch, steps // strides, filters)`, zero where `keep` is False.
    """

    def __init__(self, filters, kernel_size, strides, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("filters", filters), ("kernel_size", kernel_size), ("strides", strides)):
            check_positive_int(name, value)
        self.filters, self.kernel_size, self.strides = filters, kernel_size, strides
        self.conv = layers.Conv1D(filters, kernel_size, strides=strides, padding="same")

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, inputs, keep):
        return ops.relu(self.conv(inputs)) * ops.expand_dims(ops.cast(keep, inputs.dtype), -1)

    def compute_output_shape(self, inputs_shape, keep_shape):
        steps = None if inputs_shape[1] is None else inputs_shape[1] // self.strides
        return (inputs_shape[0], steps, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size, "strides": self.strides}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DownsampleMask(layers.Layer):
    """Shorten a boolean mask `(batch, steps)` by `factor` (default 2): a step is kept if any of its `factor` inputs was."""

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("factor", factor)
        self.factor = factor

    def call(self, keep):
        m = ops.cast(keep, "float32")[..., None]
        return ops.cast(ops.squeeze(ops.max_pool(m, self.factor, self.factor, padding="valid"), -1), "bool")

    def compute_output_shape(self, keep_shape):
        return (keep_shape[0], None if keep_shape[1] is None else keep_shape[1] // self.factor)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedGlobalPooling(layers.Layer):
    """Mean and max over the real steps: `(batch, steps, ch)` -> `(batch, 2 * ch)`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True  # consumes the mask it is given explicitly

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def call(self, inputs, keep):
        m = ops.expand_dims(ops.cast(keep, inputs.dtype), -1)
        count = ops.maximum(ops.sum(m, axis=1), 1.0)
        mean = ops.sum(inputs * m, axis=1) / count
        very_negative = ops.cast(-1e9, inputs.dtype)
        maximum = ops.max(ops.where(m > 0, inputs, very_negative), axis=1)
        return ops.concatenate([mean, maximum], axis=-1)

    def compute_output_shape(self, inputs_shape, keep_shape):
        return (inputs_shape[0], 2 * inputs_shape[2])


def network_inputs(n_channels: int):
    """`(signal, mask)`: the Keras inputs of every network, float32 `(batch, steps, n_channels)` and bool `(batch, steps)`."""
    return keras.Input(shape=(None, n_channels), name="signal"), keras.Input(shape=(None,), dtype="bool", name="mask")


def classification_head(x, keep, n_classes: int, dropout: float, multilabel: bool):
    """Masked mean and max pooling (`pool`), dropout (`dropout`), then the dense output layer (`probabilities`).

    Args:
        x: features `(batch, steps, ch)`.
        keep: their bool mask `(batch, steps)`.
        n_classes: output classes.
        dropout: dropout rate before the output layer.
        multilabel: sigmoid outputs instead of softmax.

    Returns:
        The probabilities `(batch, n_classes)`; :func:`ecgrhythm.networks.onnx_graph.pooled_head` writes the same in ONNX.
    """
    x = MaskedGlobalPooling(name="pool")(x, keep)
    x = layers.Dropout(dropout, name="dropout")(x)
    return layers.Dense(n_classes, activation="sigmoid" if multilabel else "softmax", name="probabilities")(x)
