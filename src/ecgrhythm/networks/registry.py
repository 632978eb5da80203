"""The registry of network families, by name: the one place that knows which families exist.

A model folder names its family in `config.json` (`"model": {"network": NAME, ...}`; folders that name
none get :data:`DEFAULT_NETWORK`). :func:`config_from_dict` reads such an architecture into its family's
config, :func:`build_network` builds the network it describes, and the ONNX exporter asks
:func:`get_family` for the family's graph writer. A new family is one module defining a
:class:`~ecgrhythm.networks.family.NetworkFamily` plus one :func:`register_family` call.

Example:
>>> config = config_from_dict({"strides": [2, 2], "gru_units": 8, "network": "gru"})
>>> type(config).__name__, config.downsampling
('GruConfig', 4)
"""

from __future__ import annotations

from ecgrhythm.networks import cnn_lstm, gru, resnet
from ecgrhythm.networks.family import NetworkConfig, NetworkFamily

__all__ = ["DEFAULT_NETWORK", "register_family", "get_family", "network_names", "config_from_dict", "default_config", "build_network"]

DEFAULT_NETWORK = "cnn_lstm"  # the network of model folders whose config.json names none
_FAMILIES: dict[str, NetworkFamily] = {}


def register_family(family: NetworkFamily) -> NetworkFamily:
    """Make a network family buildable, loadable and exportable by its name (`family.config_class.network`).

    Args:
        family: the family (see :class:`~ecgrhythm.networks.family.NetworkFamily`).

    Returns:
        `family`.

    Raises:
        ValueError: its config class is not a :class:`~ecgrhythm.networks.family.NetworkConfig` with a non-empty
            `network` name, or that name is registered to another family.
    """
    config_class = getattr(family, "config_class", None)
    name = getattr(config_class, "network", None)
    if not (isinstance(config_class, type) and issubclass(config_class, NetworkConfig) and isinstance(name, str) and name):
        raise ValueError(
            f"Invalid argument `family`: expected a NetworkFamily whose config_class subclasses NetworkConfig and sets a "
            f"non-empty `network` name. Received: family={family!r}"
        )
    if _FAMILIES.get(name, family) != family:
        raise ValueError(f"Invalid argument `family`: the network {name!r} is already registered to {_FAMILIES[name]!r}; choose another name")
    _FAMILIES[name] = family
    return family


def get_family(name: str) -> NetworkFamily:
    """The registered family called `name`.

    Raises:
        ValueError: no family of that name is registered.
    """
    if name not in _FAMILIES:
        raise ValueError(
            f"Invalid argument `network`: expected one of {network_names()} (register others with "
            f"ecgrhythm.networks.registry.register_family). Received: network={name!r}"
        )
    return _FAMILIES[name]


def network_names() -> list[str]:
    """Names of the registered families, sorted."""
    return sorted(_FAMILIES)


def config_from_dict(data: dict) -> NetworkConfig:
    """The architecture a `config.json` `"model"` entry describes, as its family's config.

    Args:
        data: the entry, as parsed JSON; its `"network"` names the family (default :data:`DEFAULT_NETWORK`).

    Raises:
        ValueError: the family is not registered, or the entry does not fit its config (naming the field).
    """
    if not isinstance(data, dict):
        raise ValueError(f"Invalid argument `data`: expected a mapping of architecture fields. Received: data={data!r}")
    return get_family(data.get("network", DEFAULT_NETWORK)).config_class.from_dict(data)


def default_config() -> NetworkConfig:
    """The default architecture: the :data:`DEFAULT_NETWORK` family's config with its defaults."""
    return get_family(DEFAULT_NETWORK).config_class()


def build_network(n_channels: int, n_classes: int, config: NetworkConfig | None = None):
    """Build the untrained network `config` describes (default: :func:`default_config`).

    Returns:
        A `keras.Model` as :attr:`~ecgrhythm.networks.family.NetworkFamily.build` describes it.

    Raises:
        ValueError: `config`'s family is not registered, or `config` is not of its config class.
    """
    config = default_config() if config is None else config
    family = get_family(config.network)
    if type(config) is not family.config_class:
        raise ValueError(
            f"Invalid argument `config`: expected a {family.config_class.__name__} for the network {family.name!r}. Received: config={config!r}"
        )
    return family.build(n_channels, n_classes, config)


register_family(cnn_lstm.FAMILY)
register_family(gru.FAMILY)
register_family(resnet.FAMILY)
