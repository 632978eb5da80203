"""Shared fixtures: the real PhysioNet data beside the checkout and a tiny model trained on it."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

from pathlib import Path

import pytest

from ecgrhythm.config import PreprocessConfig, TrainConfig, default_data_dir
from ecgrhythm.networks.cnn_lstm import ModelConfig

DATA = default_data_dir()


def _data(subset: str) -> Path:
    if DATA is None or not (DATA / subset).is_dir():
        pytest.skip(f"the shared data folder {subset!r} is not available (set ECGRHYTHM_DATA)")
    return DATA / subset


@pytest.fixture(scope="session")
def cinc2017_dir() -> Path:
    """The CinC 2017 records (read-only)."""
    return _data("cinc2017")


@pytest.fixture(scope="session")
def cinc2021_dir() -> Path:
    """The CinC 2021 12-lead sample (read-only)."""
    return _data("cinc2021-sample")


@pytest.fixture(scope="session")
def cpsc2021_dir() -> Path:
    """The CPSC 2021 2-lead sample (read-only)."""
    return _data("cpsc2021-sample")


TINY_PREPROCESS = PreprocessConfig(fs=100.0)
TINY_MODEL = ModelConfig(conv_filters=(8, 8, 16, 16), lstm_units=8, dropout=0.0)
TINY_TRAIN = TrainConfig(epochs=2, batch_size=16, window_s=10.0, val_fraction=0.25, seed=0)
# The tiny network, its rate and window as command-line options of train and crossval.
TINY_CLI = ["--fs", "100", "--window", "10", "--conv-filters", "8,8,16,16", "--lstm-units", "8", "--dropout", "0"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, cinc2017_dir) -> Path:
    """A small model trained for 2 epochs on 64 real CinC 2017 records (seconds, not accuracy)."""
    from ecgrhythm.training.trainer import train

    out = tmp_path_factory.mktemp("models") / "tiny"
    train(cinc2017_dir, out, preprocess_config=TINY_PREPROCESS, model_config=TINY_MODEL, train_config=TINY_TRAIN, limit=64, verbose=0)
    return out


@pytest.fixture(scope="session")
def onnx_file(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model exported with `ecgrhythm export` (skipped without the onnx extra)."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from ecgrhythm.export.onnx import export_onnx

    path, difference = export_onnx(tiny_model_dir, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    assert difference < 1e-4
    return path


@pytest.fixture(scope="session")
def other_member(tmp_path_factory, tiny_model_dir) -> Path:
    """A second network of the tiny model's architecture, for ensembles: its output layer's weights scaled by 3."""
    import numpy as np

    from ecgrhythm.networks.saving import load_model_dir, save_model_dir

    model, config = load_model_dir(tiny_model_dir)
    dense = model.get_layer("probabilities")
    dense.kernel.assign(np.asarray(dense.kernel) * 3.0)
    out = tmp_path_factory.mktemp("members") / "scaled"
    save_model_dir(model, out, classes=config["classes"], preprocess=config["preprocess"], architecture=config["model"], metadata={"seed": 1})
    return out


@pytest.fixture(scope="session")
def tiny_rr_model_dir(tmp_path_factory, cinc2017_dir) -> Path:
    """The tiny network trained with `ecgrhythm train --rr-channel` (and every augmentation) on the same 64 records."""
    from ecgrhythm.cli import main

    out = tmp_path_factory.mktemp("models") / "tiny_rr"
    args = ["--limit", "64", "--epochs", "2", "--batch-size", "16", "--val-fraction", "0.25", "--augment", "flip,scale,noise,wander,stretch"]
    assert main(["train", "--data", str(cinc2017_dir), "--output", str(out), *TINY_CLI, *args, "--rr-channel"]) == 0
    return out


FIRST_SIX = ["A00001", "A00002", "A00003", "A00004", "A00005", "A00006"]


@pytest.fixture(scope="module")
def clf(tiny_model_dir):
    """The tiny model, loaded."""
    from ecgrhythm.inference.classifier import RhythmClassifier

    return RhythmClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def paths(cinc2017_dir):
    """The headers of the first six CinC 2017 records (`FIRST_SIX`)."""
    return [cinc2017_dir / f"{n}.hea" for n in FIRST_SIX]


def assert_padding_changes_nothing(clf, cinc2017_dir, multiple: int) -> None:
    """`clf`'s network gives A00001 the same output alone, padded by 40 more `multiple`s of steps, and in a batch beside
    A00005 (whose output differs): padding past a record's end never changes its prediction."""
    import numpy as np

    from ecgrhythm.preprocessing.batching import pad_batch
    from ecgrhythm.records import read_record

    signals = [clf.prepare(read_record(cinc2017_dir / f"{n}.hea")) for n in ("A00001", "A00005")]
    short = -(-max(len(s) for s in signals) // multiple) * multiple

    def predict(batch, length):
        x, mask = pad_batch(batch, length, 4)
        return np.asarray(clf.model_.predict_on_batch({"signal": x, "mask": mask}))[: len(batch)]

    alone, padded, together = predict(signals[:1], short), predict(signals[:1], short + 40 * multiple), predict(signals, short + multiple)
    np.testing.assert_allclose(alone[0], padded[0], atol=1e-5)
    np.testing.assert_allclose(alone[0], together[0], atol=1e-5)
    assert not np.allclose(together[0], together[1], atol=1e-4), "two different records should not get identical outputs"
