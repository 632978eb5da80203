"""The networks: a registry of network families, and the CNN + LSTM classifier.

A model folder names its network family (`ModelConfig.network`, recorded in
`config.json`); :func:`build_network` looks the builder up in :data:`NETWORKS`,
so a new family is one module with a builder plus one :func:`register_network`
call. Folders that name none get `"cnn_lstm"`.

The CNN + LSTM network: a masked convolutional front end, an LSTM stack, masked pooling, a head.

Padding never changes a prediction: every convolutional block zeroes the
padded steps of its output, so each layer sees zeros beyond a record's end
whatever the padded length, and the boolean mask is halved with the sequence
(`ceil` semantics) and handed to the LSTM layers and the pooling.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import layers, ops

from ecgrhythm.config import DEFAULT_NETWORK, ModelConfig
from ecgrhythm.utils.validation import check_positive_int

__all__ = ["NETWORKS", "register_network", "build_network", "build_lstm_classifier", "MaskedConvBlock", "DownsampleMask", "MaskedGlobalPooling"]

NetworkBuilder = Callable[[int, int, ModelConfig], keras.Model]
NETWORKS: dict[str, NetworkBuilder] = {}

_PACKAGE = "ecgrhythm"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskedConvBlock(layers.Layer):
    """Two convolutions with batch normalisation and a residual path, then max pooling by 2.

    Call args:
        inputs: float `(batch, steps, channels)`; `steps` must be even.
        keep: bool mask `(batch, steps)`, True for real samples.

    Returns:
        float `(batch, steps // 2, filters)`, zero where the halved mask is False.
    """

    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(**kwargs)
        check_positive_int("filters", filters)
        self.filters = filters
        self.kernel_size = kernel_size
        self.conv1 = layers.Conv1D(filters, kernel_size, padding="same", use_bias=False)
        self.bn1 = layers.BatchNormalization()
        self.conv2 = layers.Conv1D(filters, kernel_size, padding="same", use_bias=False)
        self.bn2 = layers.BatchNormalization()
        self.skip = layers.Conv1D(filters, 1, use_bias=False)
        self.pool = layers.MaxPooling1D(2)

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
        return self.pool(h)

    def compute_output_shape(self, inputs_shape, keep_shape):
        steps = None if inputs_shape[1] is None else inputs_shape[1] // 2
        return (inputs_shape[0], steps, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DownsampleMask(layers.Layer):
    """Halve a boolean mask `(batch, steps)`: a step is kept if either of its two inputs was."""

    def call(self, keep):
        m = ops.cast(keep, "float32")[..., None]
        return ops.cast(ops.squeeze(ops.max_pool(m, 2, 2, padding="valid"), -1), "bool")

    def compute_output_shape(self, keep_shape):
        return (keep_shape[0], None if keep_shape[1] is None else keep_shape[1] // 2)


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


def build_lstm_classifier(n_leads: int, n_classes: int, config: ModelConfig | None = None) -> keras.Model:
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
    config = config or ModelConfig()
    signal = keras.Input(shape=(None, n_leads), name="signal")
    mask = keras.Input(shape=(None,), dtype="bool", name="mask")
    x, m = signal, mask
    for i, filters in enumerate(config.conv_filters):
        x = MaskedConvBlock(int(filters), config.conv_kernel, name=f"conv_block_{i}")(x, m)
        m = DownsampleMask(name=f"mask_down_{i}")(m)
    for i in range(config.lstm_layers):
        lstm = layers.LSTM(config.lstm_units, return_sequences=True, name=f"lstm_{i}")
        if config.bidirectional:
            lstm = layers.Bidirectional(lstm, name=f"bilstm_{i}")
        x = lstm(x, mask=m)
    x = MaskedGlobalPooling(name="pool")(x, m)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    activation = "sigmoid" if config.multilabel else "softmax"
    out = layers.Dense(n_classes, activation=activation, name="probabilities")(x)
    return keras.Model({"signal": signal, "mask": mask}, out, name="ecgrhythm_cnn_lstm")


def register_network(name: str, builder: NetworkBuilder) -> NetworkBuilder:
    """Make a network family buildable (and loadable) by `name`.

    Args:
        name: the name `ModelConfig.network` and `config.json` use.
        builder: `builder(n_leads, n_classes, config)` returning a `keras.Model`
            with inputs `{"signal": (batch, steps, n_leads) float32, "mask": (batch, steps) bool}`
            and output `(batch, n_classes)` probabilities, for any `steps` that is a
            multiple of `config.downsampling`.

    Returns:
        `builder`, so the call can decorate it.

    Raises:
        ValueError: `name` is empty or already names another builder.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"Invalid argument `name`: expected a non-empty string. Received: name={name!r}")
    if NETWORKS.get(name, builder) is not builder:
        raise ValueError(f"Invalid argument `name`: the network {name!r} is already registered to {NETWORKS[name].__qualname__}; choose another name")
    NETWORKS[name] = builder
    return builder


def build_network(n_leads: int, n_classes: int, config: ModelConfig | None = None) -> keras.Model:
    """Build the network `config.network` names, untrained (see :func:`register_network`).

    Raises:
        ValueError: no network of that name is registered.
    """
    config = config or ModelConfig()
    if config.network not in NETWORKS:
        raise ValueError(
            f"Invalid argument `network`: expected one of {sorted(NETWORKS)} (register others with "
            f"ecgrhythm.networks.cnn_lstm.register_network). Received: network={config.network!r}"
        )
    return NETWORKS[config.network](n_leads, n_classes, config)


register_network(DEFAULT_NETWORK, build_lstm_classifier)
