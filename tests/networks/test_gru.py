"""The second network family, the GRU: registered like the CNN + LSTM, it trains, saves, loads, exports and classifies."""

import json

import numpy as np
import pytest
from conftest import TINY_PREPROCESS, TINY_TRAIN, assert_padding_changes_nothing

from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.networks.gru import GruConfig, build_gru_classifier

TINY_GRU = GruConfig(strides=(4, 4), filters=8, kernel=9, gru_units=8, dropout=0.0)
RECORDS = ["A00001", "A00002", "A00003", "A00004", "A00005", "A00093"]


@pytest.fixture(scope="module")
def gru_model_dir(tmp_path_factory, cinc2017_dir):
    """The GRU trained for 2 epochs on 64 real CinC 2017 records through the same `train` as the CNN + LSTM."""
    from ecgrhythm.training.trainer import train

    out = tmp_path_factory.mktemp("models") / "gru"
    train(cinc2017_dir, out, preprocess_config=TINY_PREPROCESS, model_config=TINY_GRU, train_config=TINY_TRAIN, limit=64, verbose=0)
    return out


@pytest.fixture(scope="module")
def gru_clf(gru_model_dir):
    return RhythmClassifier.load(gru_model_dir)


def test_gru_config_checks_its_fields_and_shortens_by_the_product_of_its_strides():
    from ecgrhythm.networks.registry import config_from_dict

    assert GruConfig(strides=(2, 3), kernel=3).downsampling == 6 and TINY_GRU.downsampling == 16
    assert config_from_dict(json.loads(json.dumps(TINY_GRU.to_dict()))) == TINY_GRU
    with pytest.raises(ValueError, match=r"`kernel`: expected an integer of at least the largest stride, 4. Received: kernel=3"):
        GruConfig(strides=(4,), kernel=3)
    with pytest.raises(ValueError, match="gru_layers"):
        GruConfig(gru_layers=0)


def test_a_trained_gru_folder_records_its_family_and_loads_as_it(gru_model_dir, gru_clf):
    config = json.loads((gru_model_dir / "config.json").read_text())
    assert config["model"] == {**TINY_GRU.to_dict(), "strides": [4, 4]} and config["model"]["network"] == "gru"
    assert gru_clf.architecture_ == TINY_GRU and gru_clf.model_.name == "ecgrhythm_gru"
    assert all(b % 16 == 0 for b in gru_clf.buckets_)
    assert config["metadata"]["parameters"] == gru_clf.model_.count_params() == build_gru_classifier(1, 4, TINY_GRU).count_params()
    assert (gru_model_dir / "training_log.csv").is_file() and len(json.loads((gru_model_dir / "split.json").read_text())["val"]) == 16


def test_padding_never_changes_a_gru_prediction(gru_clf, cinc2017_dir):
    assert_padding_changes_nothing(gru_clf, cinc2017_dir, 16)


def test_a_gru_classifies_records_from_the_command_line(gru_model_dir, gru_clf, cinc2017_dir, tmp_path):
    import csv

    from ecgrhythm.cli import main

    paths = [cinc2017_dir / f"{n}.hea" for n in RECORDS]
    expected = gru_clf.predict_records(paths)
    np.testing.assert_allclose(expected.probabilities.sum(axis=1), 1.0, atol=1e-5)
    out = tmp_path / "gru.csv"
    assert main(["classify", *map(str, paths), "--model", str(gru_model_dir), "--output", str(out)]) == 0
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["record"] for r in rows] == RECORDS and [r["label"] for r in rows] == expected.labels
    np.testing.assert_allclose([[float(r[c]) for c in expected.classes] for r in rows], expected.probabilities, atol=1e-5)


def test_a_gru_exports_to_onnx_within_the_parity_tolerance_and_classifies_alike(gru_model_dir, gru_clf, cinc2017_dir, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    import onnx

    from ecgrhythm.export.onnx import PARITY_TOLERANCE, export_onnx
    from ecgrhythm.inference.onnx_backend import read_onnx_metadata

    path, difference = export_onnx(gru_model_dir, tmp_path / "gru.onnx")
    assert difference <= PARITY_TOLERANCE
    assert {n.op_type for n in onnx.load(path).graph.node} >= {"GRU", "Conv"} and "LSTM" not in {n.op_type for n in onnx.load(path).graph.node}
    assert read_onnx_metadata(path)["downsampling"] == 16
    onnx_clf = RhythmClassifier.load(path)  # the .onnx file, on onnxruntime
    assert onnx_clf.architecture_ == TINY_GRU and onnx_clf.buckets_ == gru_clf.buckets_
    paths = [cinc2017_dir / f"{n}.hea" for n in RECORDS]
    expected, got = gru_clf.predict_records(paths), onnx_clf.predict_records(paths)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=1e-4, rtol=0)
    assert got.labels == expected.labels
