"""The fast Keras loader pins the Keras internals it relies on (see `ecgrhythm.inference.keras_loading`'s docstring)."""

import numpy as np

from ecgrhythm.inference.keras_loading import fast_loading_supported, load_networks_fast
from ecgrhythm.networks.saving import load_model_dir


def _saved(model):
    return [v for v in model.variables if "seed_generator" not in v.path]  # seed states are drawn anew, not saved


def test_this_keras_has_the_internals_of_fast_loading():
    # A Keras upgrade that moves them makes loading the shipped model about 3 times slower (13.8 s instead of
    # 4.5 s on 2 CPU cores, benchmarks/keras_loading.py): this test says so before anyone notices the slowness.
    assert fast_loading_supported()


def test_fast_loading_gives_the_saved_weights_and_keras_goes_on_as_usual(tiny_model_dir):
    import keras

    from ecgrhythm.networks.registry import build_network

    plain, config = load_model_dir(tiny_model_dir)
    networks, fast_config = load_networks_fast(tiny_model_dir)
    assert fast_config["classes"] == config["classes"] and len(networks) == 1
    assert len(_saved(plain)) == len(_saved(networks[0])) > 10
    for a, b in zip(_saved(plain), _saved(networks[0])):
        assert a.path.split("/")[0] == b.path.split("/")[0]
        np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value))
    assert all(v.value is not None for v in networks[0].variables)
    # No variable of the loaded network is left awaiting initialisation: Keras' next scope would draw it again,
    # or refuse it as already set. Leaving a scope and building another network work as usual.
    with keras.StatelessScope():
        pass
    other = build_network(config["preprocess"].n_channels(config["n_leads"]), len(config["classes"]), config["model"])
    x = np.zeros((1, 1024, 1), np.float32)
    inputs = {"signal": x, "mask": np.ones((1, 1024), bool)}
    np.testing.assert_allclose(networks[0].predict_on_batch(inputs), plain.predict_on_batch(inputs), atol=1e-6)
    assert other.predict_on_batch(inputs).shape == (1, len(config["classes"]))
