"""What a network family is: a config class, a Keras builder and an ONNX graph writer.

A family lives in one module (:mod:`ecgrhythm.networks.cnn_lstm`, :mod:`ecgrhythm.networks.gru`,
:mod:`ecgrhythm.networks.resnet`) that defines
a frozen dataclass subclassing :class:`NetworkConfig`, a builder, an ONNX graph writer, and a
:class:`NetworkFamily` bundling them, registered by :mod:`ecgrhythm.networks.registry`. Nothing outside the
family module reads its config's own fields: callers use :class:`NetworkConfig`'s `network`, `multilabel`
and `downsampling`, and `to_dict`/`from_dict`.

A config's numbers come from `config.json` files and exported models as well as from callers, so each family
checks them in `__post_init__` against the bounds below before anything is built: a file that asks for 27
convolutional blocks (inputs padded to multiples of 2**27 samples) is refused at once instead of taking
minutes and gigabytes. The bounds are the project's own networks with margin: the shipped network has 6
blocks of 8 to 64 filters, kernel 7, 2 LSTM layers of 64 units; the depth study tries 5 or 6 blocks of at
most 128 filters and 1 to 4 LSTM layers of 32 to 128 units (`ecgrhythm.lab.studies.depth`); the GRU family's
default stem has 2 strides of 4, 32 filters, kernel 9; the residual family's 5 stages of 2 blocks of 16 to 64 filters.

This module imports neither Keras nor ONNX, so that configs load as fast as the command parser needs.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable
from typing import Any, ClassVar

from ecgrhythm.config import Config, check_argument

__all__ = [
    "NetworkConfig",
    "NetworkFamily",
    "check_whole",
    "check_halving_filters",
    "check_head",
    "MAX_DOWNSAMPLING",
    "MAX_STAGES",
    "MAX_BLOCKS_PER_STAGE",
    "MAX_FILTERS",
    "MAX_KERNEL",
    "MAX_RECURRENT_LAYERS",
    "MAX_UNITS",
]

MAX_DOWNSAMPLING = 1024  # inputs are padded to multiples of it: 16x the shipped 64 (10 halving blocks)
MAX_STAGES = 10  # convolutional blocks or stem convolutions: 1024 = 2 ** 10; the shipped network has 6
MAX_BLOCKS_PER_STAGE = 4  # residual blocks per halving: 2x the residual family's default (2)
MAX_FILTERS = 256  # per convolution: 2x the widest the depth study tries (128), 4x the shipped network's (64)
MAX_KERNEL = 31  # samples per convolution: 4x the shipped kernel (7), 3x the GRU stem's (9)
MAX_RECURRENT_LAYERS = 8  # 2x the deepest the depth study tries (4)
MAX_UNITS = 256  # per recurrent layer (and direction): 2x the widest the depth study tries (128), 4x the shipped network's


def check_whole(name: str, value, low: int, high: int) -> None:
    """Raise `ValueError` naming the argument unless `value` is an integer (not a bool) from `low` to `high`."""
    whole = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    check_argument(whole and low <= value <= high, name, f"an integer from {low} to {high}", value)


def check_halving_filters(name: str, filters, unit: str) -> None:
    """Raise `ValueError` naming `name` unless `filters` is a list of 1 to `MAX_STAGES` filter counts of 1 to
    `MAX_FILTERS`, one per `unit` (a block or stage, each of which halves the input)."""
    check_argument(
        isinstance(filters, (tuple, list)) and 1 <= len(filters) <= MAX_STAGES,
        name,
        f"a list of 1 to {MAX_STAGES} filter counts (each {unit} halves the input)",
        filters,
    )
    for f in filters:
        check_whole(name, f, 1, MAX_FILTERS)


def check_head(config) -> None:
    """Raise `ValueError` unless `config.dropout` is a rate in [0, 1) and `config.multilabel` a bool (every family's head)."""
    check_argument(isinstance(config.multilabel, bool), "multilabel", "True or False", config.multilabel)
    check_argument(isinstance(config.dropout, (int, float)) and 0 <= config.dropout < 1, "dropout", "a rate in [0, 1)", config.dropout)


class NetworkConfig(Config):
    """Base of a network family's architecture: a frozen dataclass of hyperparameters only.

    Subclasses are frozen dataclasses that set the class attribute `network` (the family's name, which
    `config.json` records) and have a `multilabel: bool` field (sigmoid outputs instead of softmax), and
    implement `downsampling`. `to_dict` appends `"network"` after the fields; `from_dict` accepts that key
    (or its absence) for the family's own name only.
    """

    network: ClassVar[str]

    @property
    def downsampling(self) -> int:
        """Factor by which the network shortens its input sequence: input lengths are multiples of it."""
        raise NotImplementedError(f"{type(self).__name__} must define `downsampling`")

    def to_dict(self) -> dict:
        return {**super().to_dict(), "network": self.network}

    @classmethod
    def from_dict(cls, data: dict):
        data = dict(data)
        name = data.pop("network", cls.network)
        check_argument(name == cls.network, "network", f"{cls.network!r} for a {cls.__name__}", name)
        return super().from_dict(data)


@dataclasses.dataclass(frozen=True)
class NetworkFamily:
    """A network family, as :func:`ecgrhythm.networks.registry.register_family` takes it.

    Attributes:
        config_class: the family's frozen dataclass subclassing :class:`NetworkConfig`; its `network`
            attribute is the family's name.
        build: `build(n_channels, n_classes, config) -> keras.Model` with inputs
            `{"signal": (batch, steps, n_channels) float32, "mask": (batch, steps) bool}` (each mask row a
            prefix of True) and output `(batch, n_classes)` probabilities, for any `steps` that is a multiple
            of `config.downsampling`; padding past a record's end never changes its output.
        write_onnx: `write_onnx(graph, network, config, signal, keep) -> str`: appends the nodes computing the
            trained `network` to an :class:`ecgrhythm.networks.onnx_graph.OnnxGraph`, reading the input named
            `signal` `(batch, steps, n_channels)` and the float mask `keep` `(batch, steps)`, and returns the
            name of its `(batch, n_classes)` probabilities; `None` for a family that cannot be exported.
    """

    config_class: type[NetworkConfig]
    build: Callable[[int, int, Any], Any]
    write_onnx: Callable[..., str] | None = None

    @property
    def name(self) -> str:
        """The family's name: `config_class.network`."""
        return self.config_class.network
