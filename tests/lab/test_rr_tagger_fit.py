"""Fitting the R-R tagger: its training beats from joined CinC 2017 records, and its ONNX graph against the Keras network."""

import numpy as np
import pytest

from ecgrhythm.episodes.rr_tagger import INPUT, INPUT_NAMES, MIRROR_BEATS, OUTPUT
from ecgrhythm.lab.rr_tagger_fit import fit_tagger, training_beats, write_tagger_onnx

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def records(cinc2017_dir):
    return training_beats(2, skip=1, data_dir=cinc2017_dir)


def test_training_beats_are_mirrored_records_with_their_af_truth(records):
    for x, truth in records:
        assert x.shape == (len(truth), len(INPUT_NAMES)) and x.dtype == np.float32 and np.isfinite(x).all()
        # the truth is mirrored with the beats: its ends read alike forwards and backwards
        np.testing.assert_array_equal(truth[:MIRROR_BEATS], truth[2 * MIRROR_BEATS : MIRROR_BEATS : -1])
    assert 0 < np.mean(np.concatenate([t for _, t in records])) < 1  # AF and other rhythms both there


def test_the_graph_computes_what_the_keras_network_does(records):
    model, (mean, scale) = fit_tagger(records, epochs=1, seed=0)
    x = records[0][0]
    graph = write_tagger_onnx(model, (mean, scale), x[:300])
    other = records[1][0][None, :500]  # beats the check did not see, and another length
    got = ort.InferenceSession(graph, providers=["CPUExecutionProvider"]).run([OUTPUT], {INPUT: other})[0]
    expected = np.asarray(model.predict_on_batch((other - mean) / scale))[..., 0]
    assert got.shape == (1, 500) and np.max(np.abs(got - expected)) < 1e-4
