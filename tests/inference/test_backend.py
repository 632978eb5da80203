"""Backend choice: a model folder runs on its ONNX graph (onnxruntime, no Keras, no JAX) when the graph is of its weights, else on Keras."""

import json
import os
import shutil
import warnings

import numpy as np
import pytest
from fresh_python import run_cli

from ecgrhythm.cli import main
from ecgrhythm.episodes.finder import record_episodes
from ecgrhythm.inference.backend import default_model_dir, load_backend
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.inference.keras_backend import KerasBackend
from ecgrhythm.inference.onnx_backend import GRAPH_FILE, OnnxBackend, OnnxModelError, intra_op_threads, read_onnx_metadata
from ecgrhythm.inference.onnx_metadata import folder_weights
from ecgrhythm.networks.saving import set_calibration
from ecgrhythm.records import read_record

pytest.importorskip("onnxruntime")

PARITY = 1e-5  # largest probability difference between the shipped graph and its Keras networks
# Real records of several lengths: 9 s, 30 s, 44 s and 60 s (the largest buckets); an AF and a noisy one among them.
CINC = ["A00001", "A00004", "A00093", "A00245", "A00395", "A00022"]
LONG = "data_101_9"  # CPSC 2021, 249 s with AF episodes: its windows as episodes run them (the first network alone)


@pytest.fixture(scope="module")
def shipped():
    """The shipped model as it loads by default, and on Keras."""
    return RhythmClassifier.load(), RhythmClassifier.load(backend="keras")


def test_the_shipped_folder_runs_on_its_graph_and_matches_its_keras_networks(shipped, cinc2017_dir, cpsc2021_dir):
    onnx_clf, keras_clf = shipped
    assert isinstance(onnx_clf.backend_, OnnxBackend) and isinstance(keras_clf.backend_, KerasBackend)
    assert onnx_clf.model_dir_ == keras_clf.model_dir_ == default_model_dir() and not hasattr(onnx_clf, "networks_")
    members = json.loads((default_model_dir() / "config.json").read_text()).get("members", ["model.weights.h5"])
    assert onnx_clf.n_networks_ == keras_clf.n_networks_ == len(members) and onnx_clf.classes_ == keras_clf.classes_
    assert onnx_clf.temperature_ == keras_clf.temperature_ and onnx_clf.class_prior_ == keras_clf.class_prior_
    assert onnx_clf.training_split() == keras_clf.training_split()
    records = [read_record(cinc2017_dir / f"{n}.hea") for n in CINC]
    expected, got = keras_clf.predict_records(records), onnx_clf.predict_records(records)
    assert np.abs(got.probabilities - expected.probabilities).max() <= PARITY
    assert got.labels == expected.labels and "A" in got.labels
    # 30 s windows of a long record through the first network alone (a graph of several networks: its `first_probabilities`), uncalibrated,
    # as episodes run them; and the same episodes.
    long = read_record(cpsc2021_dir / f"{LONG}.hea")
    signal = onnx_clf.prepare(long)
    step = int(30 * onnx_clf.preprocess_.fs)
    windows = [signal[start : start + step] for start in range(0, len(signal) - step + 1, step // 2)]
    first = [clf.predict_prepared(windows, calibrated=False, networks=1) for clf in shipped]
    assert len(windows) > 10 and np.abs(first[0] - first[1]).max() <= PARITY
    found = [record_episodes(clf, long) for clf in shipped]
    (onnx_episodes, keras_episodes), (onnx_burden, keras_burden) = ([f.episodes for f in found], [f.af_burden for f in found])
    assert [(e.start_s, e.end_s, e.label) for e in onnx_episodes] == [(e.start_s, e.end_s, e.label) for e in keras_episodes]
    np.testing.assert_allclose([e.probability for e in onnx_episodes], [e.probability for e in keras_episodes], atol=PARITY, rtol=0)
    assert onnx_burden == keras_burden > 0 and len(onnx_episodes) > 1


def test_the_shipped_graph_records_the_weights_it_was_built_from():
    folder = default_model_dir()
    meta = read_onnx_metadata(folder / GRAPH_FILE)
    checksums = json.loads((folder / "checksums.json").read_text())
    weights_files = sorted(n for n in checksums if n.endswith(".weights.h5"))
    assert weights_files and all((folder / n).is_file() for n in weights_files)  # every network's weights, and only those
    assert meta["weights"] == folder_weights(folder, meta["config.json"]) == {n: checksums[n] for n in meta["weights"]}
    assert sorted(meta["weights"]) == weights_files and meta["networks"] == len(weights_files)
    # About the size of the weights: the networks' float32 values, not a traced copy per length.
    weights = sum((folder / n).stat().st_size for n in meta["weights"])
    assert 0.5 * weights < (folder / GRAPH_FILE).stat().st_size < 1.2 * weights


def test_sessions_use_every_core_for_one_operator(shipped, monkeypatch):
    options = shipped[0].backend_.session.get_session_options()
    assert options.intra_op_num_threads == intra_op_threads() and options.inter_op_num_threads == 1
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert intra_op_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as Ray sets it in an actor of one CPU
    assert intra_op_threads() == 1


@pytest.fixture
def folder_with_graph(tiny_model_dir, onnx_file, tmp_path):
    """A copy of the tiny model folder carrying its exported graph."""
    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    shutil.copy(onnx_file, folder / GRAPH_FILE)
    return folder


def test_a_folder_with_its_graph_keeps_a_later_calibration(folder_with_graph, cinc2017_dir):
    records = [cinc2017_dir / f"{n}.hea" for n in CINC[:3]]
    set_calibration(folder_with_graph, [0.5, 2.0, 3.0, 1.5], per_predicted_class=True)  # after the export: the weights are the same
    onnx_clf, keras_clf = RhythmClassifier.load(folder_with_graph), RhythmClassifier.load(folder_with_graph, backend="keras")
    assert isinstance(onnx_clf.backend_, OnnxBackend) and onnx_clf.temperature_ == [0.5, 2.0, 3.0, 1.5] == keras_clf.temperature_
    expected, got = keras_clf.predict_records(records), onnx_clf.predict_records(records)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=PARITY, rtol=0)
    assert got.labels == expected.labels


def test_a_graph_of_other_weights_is_refused(folder_with_graph, other_member):
    shutil.copy(other_member / "model.weights.h5", folder_with_graph / "model.weights.h5")  # retrained after the export
    sums = json.loads((folder_with_graph / "checksums.json").read_text())
    sums["model.weights.h5"] = json.loads((other_member / "checksums.json").read_text())["model.weights.h5"]
    (folder_with_graph / "checksums.json").write_text(json.dumps(sums))
    with pytest.warns(
        UserWarning, match=r"model\.onnx: not the graph of this folder's networks.*ecgrhythm export --model .* running the networks on Keras"
    ):
        clf = RhythmClassifier.load(folder_with_graph)
    assert isinstance(clf.backend_, KerasBackend)
    with pytest.raises(OnnxModelError, match=r"not the graph of this folder's networks"):
        RhythmClassifier.load(folder_with_graph, backend="onnx")


def test_a_folder_without_a_graph_runs_on_keras_unless_onnx_is_asked_for(tiny_model_dir, onnx_file, cinc2017_dir, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no graph is no reason to warn
        assert isinstance(load_backend(tiny_model_dir), KerasBackend)
    with pytest.raises(OnnxModelError, match=r"has no ONNX graph \(model\.onnx\); write one: ecgrhythm export --model"):
        load_backend(tiny_model_dir, "onnx")
    with pytest.raises(ValueError, match=r"Invalid argument `backend`: expected one of 'auto', 'onnx', 'keras'. Received: backend='jax'"):
        RhythmClassifier.load(tiny_model_dir, backend="jax")
    with pytest.raises(ValueError, match=r"an \.onnx file holds no Keras networks.*Received: backend='keras'"):
        load_backend(onnx_file, "keras")
    # The same on the command line: one line, exit status 2, nothing classified.
    for argv, message in (
        (["--model", str(tiny_model_dir), "--backend", "onnx"], "--backend onnx: "),
        (["--model", str(onnx_file), "--backend", "keras"], "--backend keras: --model "),
    ):
        assert main(["classify", str(cinc2017_dir / "A00001.hea"), *argv]) == 2
        assert message in capsys.readouterr().err


def test_the_cli_imports_neither_keras_nor_jax_nor_the_web_framework(cinc2017_dir, tmp_path):
    """`import ecgrhythm.cli` and `ecgrhythm classify RECORD` with the shipped model, in a fresh interpreter: nor the
    lab (a plugin), nor wfdb and pandas (a CinC record is decoded without them)."""
    out = tmp_path / "one.csv"
    watched = ("keras", "jax", "jaxlib", "fastapi", "onnxruntime", "matplotlib", "ecgrhythm.lab", "wfdb", "pandas")
    done, before, after = run_cli(["classify", cinc2017_dir / "A00004", "--output", out], watched)
    assert done.returncode == 0, done.stderr[-2000:]
    assert before == [] and after == ["onnxruntime"]
    rows = out.read_text().splitlines()
    assert rows[0].startswith("record,label,lead,N,A,O,~") and rows[1].startswith("A00004,A,")


def test_onnx_runs_batches_of_any_size_to_the_same_probabilities(shipped, cpsc2021_dir):
    onnx_clf, keras_clf = shipped
    assert onnx_clf.backend_.any_batch and not keras_clf.backend_.any_batch
    long = read_record(cpsc2021_dir / f"{LONG}.hea")
    signal = onnx_clf.prepare(long)
    step = int(10 * onnx_clf.preprocess_.fs)
    windows = [signal[start : start + step] for start in range(0, len(signal) - step + 1, step // 5)]  # 10 s every 2 s
    assert len(windows) > onnx_clf.batch_size * 3
    default = onnx_clf.predict_prepared(windows, calibrated=False)
    np.testing.assert_allclose(onnx_clf.predict_prepared(windows, calibrated=False, batch_size=64), default, atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="batch_size"):
        onnx_clf.predict_prepared(windows, batch_size=0)
