"""Loading a model folder's Keras networks without drawing the initial weights that loading replaces.

Why this module uses Keras internals (`keras.src`), the only one in ecgrhythm that does: Keras draws random
initial values for every weight when it builds a network, and on JAX each weight shape compiles its own XLA
program: loading the shipped folder (3 networks) in a fresh process takes 13.8 s with the plain loader
(:func:`ecgrhythm.networks.saving.load_networks`) and 4.5 s here, medians of 3 on a 2-core AMD EPYC
(`benchmarks/keras_loading.py`, `docs/benchmarks/keras_loading.json`). Building inside the public
`keras.StatelessScope(initialize_variables=False)` defers those draws, and the scope records the loaded values
(`scope.get_current_value`), but the variables built there stay on Keras' global list of variables awaiting
initialisation: the next scope Keras itself leaves (building any other network, tracing a call) would draw
their values, or refuse them as already set. No public API reads or edits that list, so it is done here
through `keras.src.backend.common`.

`tests/inference/test_keras_loading.py` pins what this relies on: :func:`fast_loading_supported` on the pinned
Keras, the same weights as the plain loader, and Keras building networks as usual afterwards. A Keras without
these internals falls back to the plain loader (slower, same networks).
"""

from __future__ import annotations

__all__ = ["load_networks_fast", "fast_loading_supported"]

_PENDING = "uninitialized_variables"  # Keras' global list of variables awaiting their initial values


def _internals():
    """`(global_state, in_stateless_scope, initialize_all_variables)` of this Keras, or None if it lacks them."""
    try:
        from keras.src.backend.common import global_state
        from keras.src.backend.common.stateless_scope import in_stateless_scope
        from keras.src.backend.common.variables import initialize_all_variables
    except ImportError:  # pragma: no cover - other Keras layouts
        return None
    return global_state, in_stateless_scope, initialize_all_variables


def fast_loading_supported() -> bool:
    """Whether this Keras has the internals :func:`load_networks_fast` needs (else it loads as the plain loader)."""
    return _internals() is not None


def load_networks_fast(path):
    """:func:`ecgrhythm.networks.saving.load_networks`, without drawing initial weights (see the module docstring).

    Only variables the weights files do not hold (random seed states) are initialised as usual.

    Returns:
        `(networks, config)`, as :func:`~ecgrhythm.networks.saving.load_networks` gives them.

    Raises:
        As :func:`~ecgrhythm.networks.saving.load_networks`.
    """
    import keras

    from ecgrhythm.networks.saving import load_networks

    internals = _internals()
    if internals is None or internals[1]():  # a caller's scope would capture the loaded values
        return load_networks(path)
    global_state, _, initialize_all_variables = internals
    before = len(global_state.get_global_attribute(_PENDING) or [])
    try:
        with keras.StatelessScope(initialize_variables=False) as scope:
            networks, config = load_networks(path)
    except BaseException:
        pending = global_state.get_global_attribute(_PENDING) or []
        global_state.set_global_attribute(_PENDING, pending[:before])  # forget the half-built network
        raise
    pending = global_state.get_global_attribute(_PENDING) or []
    loaded = [(v, scope.get_current_value(v)) for v in pending[before:]]
    global_state.set_global_attribute(_PENDING, pending[:before] + [v for v, value in loaded if value is None])
    for variable, value in loaded:
        if value is not None:
            variable.assign(value)
    initialize_all_variables()
    return networks, config
