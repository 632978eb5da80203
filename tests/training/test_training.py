import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from ecgrhythm.records import read_record
from ecgrhythm.training.data import stratified_split
from ecgrhythm.training.losses import class_weights
from ecgrhythm.training.trainer import cosine_learning_rate

TINY_ARGS = [
    "--fs",
    "100",
    "--conv-filters",
    "8,8,16,16",
    "--lstm-units",
    "8",
    "--dropout",
    "0.2",
    "--epochs",
    "3",
    "--batch-size",
    "16",
    "--window",
    "10",
    "--val-fraction",
    "0.25",
    "--limit",
    "48",
    "--seed",
    "5",
    "--quiet",
]


def _train_cmd(data, out, *extra):
    return [sys.executable, "-m", "ecgrhythm.cli", "train", "--data", str(data), "--output", str(out), *TINY_ARGS, *extra]


def _without_timings(rows):
    """Log rows without their two timing columns."""
    return [r.rsplit(",", 2)[0] for r in rows]


def _weights(folder):
    arrays = []
    with h5py.File(folder / "model.weights.h5", "r") as f:
        f.visititems(lambda name, obj: arrays.append((name, obj[()])) if isinstance(obj, h5py.Dataset) else None)
    return arrays


def test_tiny_run_writes_a_complete_model_folder(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    meta = config["metadata"]
    assert config["classes"] == ["N", "A", "O", "~"]
    assert meta["n_train"] + meta["n_val"] == 64
    assert 0.0 <= meta["val_cinc_score"] <= 1.0 and meta["parameters"] > 0
    log = (tiny_model_dir / "training_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,loss,val_cinc_score") and len(log) == 1 + meta["epochs_run"]
    split = json.loads((tiny_model_dir / "split.json").read_text())
    assert not set(split["train"]) & set(split["val"])
    assert (tiny_model_dir / "checkpoint" / "state.npz").is_file()


def test_split_is_stratified_and_seeded():
    labels = np.array([0] * 80 + [1] * 12 + [2] * 40 + [3] * 8)
    a = stratified_split(labels, 0.25, seed=1)
    b = stratified_split(labels, 0.25, seed=1)
    np.testing.assert_array_equal(a[1], b[1])
    assert np.bincount(labels[a[1]], minlength=4).tolist() == [20, 3, 10, 2]
    assert not set(a[0]) & set(a[1])


def test_balanced_class_weights_equalise_class_totals():
    labels = np.array([0] * 60 + [1] * 10 + [2] * 30)
    w = class_weights(labels, 4, "balanced")
    totals = np.bincount(labels, weights=w[labels], minlength=4)
    np.testing.assert_allclose(totals[:3], totals[0])
    assert w[3] == 0.0


def test_cosine_learning_rate_decays_to_floor():
    assert cosine_learning_rate(1e-3, 0, 10) == pytest.approx(1e-3)
    assert cosine_learning_rate(1e-3, 10, 10) == pytest.approx(2e-5)
    assert cosine_learning_rate(1e-3, 4, 10) > cosine_learning_rate(1e-3, 5, 10)


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, cinc2017_dir):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    subprocess.run(_train_cmd(cinc2017_dir, whole), check=True, env=env, capture_output=True)

    proc = subprocess.Popen(_train_cmd(cinc2017_dir, broken), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = broken / "checkpoint" / "state.npz"
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with np.load(state, allow_pickle=False) as saved:
        assert json.loads(str(saved["state"]))["epoch"] < 2, "the run was killed before it finished"
    assert not (broken / "config.json").exists()

    again = subprocess.run(_train_cmd(cinc2017_dir, broken), env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "continue that run with `resume=True`" in again.stderr
    subprocess.run(_train_cmd(cinc2017_dir, broken, "--resume"), check=True, env=env, capture_output=True)

    for (name_a, a), (name_b, b) in zip(_weights(whole), _weights(broken)):
        assert name_a == name_b
        np.testing.assert_allclose(a, b, atol=1e-6, err_msg=name_a)
    log_a = (whole / "training_log.csv").read_text().splitlines()
    log_b = (broken / "training_log.csv").read_text().splitlines()
    assert _without_timings(log_a) == _without_timings(log_b)


def test_resume_finds_a_checkpoint_left_beside_the_output(tiny_model_dir, tmp_path, cinc2017_dir):
    """A kill while the finished model folder replaces the old one leaves the checkpoint beside it."""
    import shutil

    from conftest import TINY_MODEL, TINY_PREPROCESS, TINY_TRAIN

    from ecgrhythm.training.trainer import train

    out = tmp_path / "m"
    shutil.copytree(tiny_model_dir / "checkpoint", tmp_path / ".m.checkpoint")
    result = train(
        cinc2017_dir, out, preprocess_config=TINY_PREPROCESS, model_config=TINY_MODEL, train_config=TINY_TRAIN, limit=64, resume=True, verbose=0
    )
    assert (out / "config.json").is_file() and (out / "checkpoint" / "state.npz").is_file()
    assert not (tmp_path / ".m.checkpoint").exists()
    expected = json.loads((tiny_model_dir / "config.json").read_text())["metadata"]
    assert result.best_epoch == expected["best_epoch"] and result.best_score == expected["val_cinc_score"]
    for (name_a, a), (name_b, b) in zip(_weights(tiny_model_dir), _weights(out)):
        assert name_a == name_b
        np.testing.assert_array_equal(a, b)


def test_resume_with_other_settings_is_refused(tmp_path, cinc2017_dir):
    out = tmp_path / "m"
    first = subprocess.run([a for a in _train_cmd(cinc2017_dir, out) if a != "--quiet"], check=True, capture_output=True, text=True)
    assert "Epoch 1/3" in first.stdout and "val CinC score" in first.stdout, "train shows per-epoch progress"
    assert "\x1b" not in first.stdout and "\b" not in first.stdout and "\r" not in first.stdout, "a log (not a terminal) gets plain lines"
    other = [a if a != "5" else "6" for a in _train_cmd(cinc2017_dir, out, "--resume")]
    result = subprocess.run(other, capture_output=True, text=True)
    assert result.returncode == 2 and "other settings; train with the same settings, or start a new run (`resume=False`)" in result.stderr


class _Stop(Exception):
    """Raised by a test's `on_epoch` to interrupt a run."""


def _stop_after_first_epoch(row):
    if row["epoch"] == 1:
        raise _Stop


def _tiny(data_dir, out, **kwargs):
    from conftest import TINY_MODEL, TINY_PREPROCESS, TINY_TRAIN

    from ecgrhythm.training.trainer import train

    return train(
        data_dir,
        out,
        preprocess_config=TINY_PREPROCESS,
        model_config=TINY_MODEL,
        train_config=kwargs.pop("train_config", TINY_TRAIN),
        limit=64,
        verbose=0,
        **kwargs,
    )


def test_a_run_stopped_in_process_resumes_to_the_uninterrupted_result(tiny_model_dir, tmp_path, cinc2017_dir):
    """tiny_model_dir is the same run (seed, data, settings) without the interruption."""
    out = tmp_path / "m"
    with pytest.raises(_Stop):
        _tiny(cinc2017_dir, out, on_epoch=_stop_after_first_epoch)
    with np.load(out / "checkpoint" / "state.npz", allow_pickle=False) as saved:
        assert json.loads(str(saved["state"]))["epoch"] == 0
    assert not (out / "config.json").exists() and len((out / "training_log.csv").read_text().splitlines()) == 2
    with pytest.raises(FileExistsError, match=r"checkpoint exists: continue that run with `resume=True`, or choose another `output_dir`"):
        _tiny(cinc2017_dir, out)
    result = _tiny(cinc2017_dir, out, resume=True)
    expected = json.loads((tiny_model_dir / "config.json").read_text())["metadata"]
    assert result.best_epoch == expected["best_epoch"] and result.best_score == expected["val_cinc_score"]
    for (name_a, a), (name_b, b) in zip(_weights(tiny_model_dir), _weights(out), strict=True):
        assert name_a == name_b
        np.testing.assert_allclose(a, b, atol=1e-6, err_msg=name_a)
    assert _without_timings((out / "training_log.csv").read_text().splitlines()) == _without_timings(
        (tiny_model_dir / "training_log.csv").read_text().splitlines()
    )


def test_config_records_the_data_set_by_name_not_by_machine_path(tiny_model_dir, cinc2017_dir):
    text = (tiny_model_dir / "config.json").read_text()
    data = json.loads(text)["metadata"]["data"]
    assert data == {"name": "cinc2017", "path": None}  # the shared data lies outside the checkout
    assert str(cinc2017_dir.resolve()) not in text


def test_paths_inside_the_checkout_are_stored_relative_and_compared_resolved():
    from ecgrhythm.config import checkout_root, portable_path, resolve_portable
    from ecgrhythm.training.checkpoint import _same_settings

    root = checkout_root()
    assert root is not None and (root / "pyproject.toml").is_file()
    assert portable_path(root / "tests" / ".." / "tests") == "tests"
    assert resolve_portable("tests") == (root / "tests").resolve()
    outside = root.parent / "elsewhere"
    assert portable_path(outside) == str(outside.resolve()) and resolve_portable(portable_path(outside)) == outside.resolve()
    settings = {"data": "tests", "limit": 64}
    assert _same_settings({"data": str(root / "tests"), "limit": 64}, settings)
    assert not _same_settings({"data": str(root / "tests"), "limit": 32}, settings)
    assert not _same_settings({"data": str(outside), "limit": 64}, settings)
    named = {"data": "tests", "model": {"lstm_units": 8, "network": "cnn_lstm"}}
    assert _same_settings({"data": "tests", "model": {"lstm_units": 8}}, named), "a checkpoint from before network names resumes"
    assert not _same_settings({"data": "tests", "model": {"lstm_units": 8}}, {**named, "model": {"lstm_units": 8, "network": "toy"}})


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_folder_that_is_not_a_model_folder_is_refused_before_reading_data(tmp_path, cinc2017_dir):
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    for name in ("A00001.hea", "A00001.mat", "A00002.hea", "A00002.mat"):
        shutil.copy(cinc2017_dir / name, data / name)
    (data / "REFERENCE.csv").write_text("A00001,N\nA00002,N\n")
    (data / "notes.txt").write_text("mine")
    before = _snapshot(data)
    # the data argument does not exist: the refusal must come before any reading
    with pytest.raises(FileExistsError, match=r"holds 6 other entries such as A00001.hea, A00001.mat, A00002.hea"):
        _tiny(tmp_path / "no-such-data", data)
    assert _snapshot(data) == before and sorted(p.name for p in tmp_path.iterdir()) == ["data"]

    runs = tmp_path / "runs"
    (runs / "run1").mkdir(parents=True)
    result = subprocess.run(_train_cmd(data, runs), capture_output=True, text=True)
    assert result.returncode == 2 and "holds 1 other entry such as run1" in result.stderr
    assert _snapshot(data) == before
    # the command checks that the data folder exists before Keras and JAX start, and says what it should hold
    result = subprocess.run(_train_cmd(tmp_path / "no-such-data", runs), capture_output=True, text=True)
    assert result.returncode == 2 and "--data" in result.stderr and "no-such-data: no such folder; give a folder of labelled records" in result.stderr


def test_retraining_into_a_model_folder_keeps_its_other_files(tiny_model_dir, tmp_path, cinc2017_dir):
    import shutil

    from ecgrhythm.config import TrainConfig

    resumed = tmp_path / "resumed"
    shutil.copytree(tiny_model_dir, resumed)
    (resumed / "notes.txt").write_text("keep me")
    _tiny(cinc2017_dir, resumed, resume=True)  # the run had finished: only the final save runs again
    assert (resumed / "notes.txt").read_text() == "keep me" and (resumed / "checkpoint" / "state.npz").is_file()

    fresh = tmp_path / "fresh"
    shutil.copytree(tiny_model_dir, fresh, ignore=shutil.ignore_patterns("checkpoint"))
    (fresh / "notes.txt").write_text("keep me too")
    old_config = (fresh / "config.json").read_text()
    _tiny(cinc2017_dir, fresh, train_config=TrainConfig(epochs=1, batch_size=16, window_s=10.0, val_fraction=0.25, seed=0))
    assert (fresh / "notes.txt").read_text() == "keep me too"
    assert json.loads((fresh / "config.json").read_text())["metadata"]["epochs_run"] == 1 != json.loads(old_config)["metadata"]["epochs_run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "resumed"], "no temporary folders are left behind"


def test_model_sampling_rate_has_an_upper_bound(tmp_path):
    from ecgrhythm.config import PreprocessConfig

    with pytest.raises(ValueError, match="fs.*at most 2,000"):
        PreprocessConfig(fs=1e9)
    assert PreprocessConfig(fs=2000.0).fs == 2000.0
    result = subprocess.run(_train_cmd(tmp_path / "no-such-data", tmp_path / "m", "--fs", "5000"), capture_output=True, text=True)
    assert result.returncode == 2 and "fs" in result.stderr and "at most 2,000" in result.stderr
    assert not (tmp_path / "m").exists()


def test_augmented_training_resumes_to_the_same_weights_and_records_its_augmentations(tmp_path, cinc2017_dir):
    import dataclasses

    from conftest import TINY_TRAIN

    tc = dataclasses.replace(TINY_TRAIN, augment=("flip", "scale", "noise", "wander", "stretch"))
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    _tiny(cinc2017_dir, whole, train_config=tc)
    with pytest.raises(_Stop):
        _tiny(cinc2017_dir, broken, train_config=tc, on_epoch=_stop_after_first_epoch)
    _tiny(cinc2017_dir, broken, train_config=tc, resume=True)
    for (name_a, a), (_, b) in zip(_weights(whole), _weights(broken), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, err_msg=name_a)
    recorded = json.loads((whole / "config.json").read_text())["metadata"]["train_config"]["augment"]
    assert recorded == list(tc.augment)


@pytest.fixture(scope="module")
def fixed_model_dir(tmp_path_factory, cinc2017_dir):
    """A tiny model trained for 1 epoch by `ecgrhythm train --fixed-length 30` on 48 real records."""
    from ecgrhythm.cli import main

    out = tmp_path_factory.mktemp("fixed") / "model"
    assert main(["train", "--data", str(cinc2017_dir), "--output", str(out), *TINY_ARGS, "--epochs", "1", "--fixed-length", "30"]) == 0
    return out


def test_a_fixed_length_model_trains_on_and_classifies_its_fixed_input(fixed_model_dir, cinc2017_dir):
    from ecgrhythm.config import PreprocessConfig, TrainConfig
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.preprocessing.batching import window_length
    from ecgrhythm.preprocessing.pipeline import preprocess
    from ecgrhythm.training.plan import training_window

    config = json.loads((fixed_model_dir / "config.json").read_text())
    assert config["preprocess"]["fixed_length_s"] == 30 and config["metadata"]["epochs_run"] == 1
    tc = TrainConfig(window_s=10.0)
    assert training_window(PreprocessConfig(fs=100.0, fixed_length_s=30), tc, 16) == 3008  # 3,000 samples rounded up
    assert training_window(PreprocessConfig(fs=100.0), tc, 16) == window_length(10.0, 100.0, 16)
    clf = RhythmClassifier.load(fixed_model_dir)
    assert clf.preprocess_.fixed_length_s == 30
    records = [cinc2017_dir / "A00014.hea", cinc2017_dir / "A00003.hea"]  # 18.6 s and 60 s
    signals = [clf.prepare(read_record(p)) for p in records]
    assert [s.shape for s in signals] == [(3000, 1), (3000, 1)]
    np.testing.assert_array_equal(signals[1], preprocess(read_record(records[1]), PreprocessConfig(fs=100.0))[:3000])
    prediction = clf.predict_records(records)
    assert set(prediction.labels) <= set(clf.classes_)
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_paths_that_need_whole_records_refuse_a_fixed_length_model(fixed_model_dir, cinc2017_dir, tmp_path, capsys):
    from ecgrhythm.cli import main
    from ecgrhythm.episodes.finder import record_episodes
    from ecgrhythm.export.onnx import export_onnx
    from ecgrhythm.inference.classifier import RhythmClassifier

    clf = RhythmClassifier.load(fixed_model_dir)
    record = read_record(cinc2017_dir / "A00003.hea")
    expected = f"{fixed_model_dir}: .* needs whole records, but this model crops or zero-pads every record to its first 30 s"
    with pytest.raises(ValueError, match=expected):
        record_episodes(clf, record)
    with pytest.raises(ValueError, match=expected):
        clf.predict_segments(record, 10.0)
    with pytest.raises(ValueError, match=expected):
        export_onnx(fixed_model_dir, tmp_path / "m.onnx", verify=False)
    assert not (tmp_path / "m.onnx").exists()
    out = tmp_path / "episodes.csv"
    assert main(["episodes", str(cinc2017_dir / "A00003.hea"), "--output", str(out), "--model", str(fixed_model_dir)]) == 2
    err = capsys.readouterr().err
    assert f"ecgrhythm episodes: error: {fixed_model_dir}: ecgrhythm episodes needs whole records" in err and "fixed_length_s=30" in err
    assert not out.exists()


def test_training_on_every_record_keeps_the_last_epoch_and_resumes(tmp_path, cinc2017_dir, caplog):
    """--val-fraction 0: no validation, no early stopping, the last epoch's weights; a stopped run resumes to them."""
    import dataclasses
    import logging

    from conftest import TINY_TRAIN

    from ecgrhythm.inference.classifier import RhythmClassifier

    tc = dataclasses.replace(TINY_TRAIN, val_fraction=0.0, patience=1)  # patience 1 would stop a validated run that stopped improving
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    with caplog.at_level(logging.INFO, logger="ecgrhythm.training.trainer"):
        result = _tiny(cinc2017_dir, whole, train_config=dataclasses.replace(tc, epochs=3))
    assert result.best_epoch == 3 and result.best_score is None and len(result.history) == 3
    assert "no validation records (every record trains)" in caplog.text
    meta = json.loads((whole / "config.json").read_text())["metadata"]
    assert meta["n_val"] == 0 and meta["n_train"] == 64 and meta["best_epoch"] == meta["epochs_run"] == 3 and meta["val_cinc_score"] is None
    split = json.loads((whole / "split.json").read_text())
    assert len(split["train"]) == 64 and split["val"] == []
    log = (whole / "training_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,loss,val_cinc_score") and all(row.split(",")[2] == "" for row in log[1:])
    with np.load(whole / "checkpoint" / "state.npz", allow_pickle=False) as state:  # the kept ("best") weights are the last epoch's
        kept = sorted(k for k in state.files if k.startswith("best_"))
        assert kept and all(np.array_equal(state[k], state[k.replace("best_", "model_")]) for k in kept)
    assert RhythmClassifier.load(whole).predict_records([read_record(cinc2017_dir / "A00001.hea")]).labels[0] in "NAO~"
    with pytest.raises(_Stop):
        _tiny(cinc2017_dir, broken, train_config=dataclasses.replace(tc, epochs=3), on_epoch=_stop_after_first_epoch)
    _tiny(cinc2017_dir, broken, train_config=dataclasses.replace(tc, epochs=3), resume=True)
    for (name_a, a), (_, b) in zip(_weights(whole), _weights(broken), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6, err_msg=name_a)


def test_early_stopping_ends_a_run_patience_epochs_after_its_best_and_is_off_by_default(tmp_path, cinc2017_dir):
    import dataclasses

    from conftest import TINY_TRAIN

    from ecgrhythm.config import TrainConfig

    assert TrainConfig().patience is None
    tc = dataclasses.replace(TINY_TRAIN, epochs=5)
    full = _tiny(cinc2017_dir, tmp_path / "full", train_config=tc)
    assert len(full.history) == 5  # no patience: every epoch, the best kept
    scores = [row["val_cinc_score"] for row in full.history]
    best, stop = 0, None  # the epochs a patience of 1 keeps: until the first epoch no better than the best before it
    for i in range(1, len(scores)):
        if scores[i] > scores[best]:
            best = i
        else:
            stop = i + 1
            break
    assert stop is not None and stop < 5, f"the tiny run improved every epoch: the test needs a plateau ({scores})"
    stopped = _tiny(cinc2017_dir, tmp_path / "stopped", train_config=dataclasses.replace(tc, patience=1))
    assert [row["val_cinc_score"] for row in stopped.history] == scores[:stop]
    assert stopped.best_score == max(scores[:stop])
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(patience=0)
