"""ONNX export: parity with Keras on real records, metadata, and classification with onnxruntime alone."""

import csv
import json
import re
import shutil

import numpy as np
import pytest
from fresh_python import run_cli

from ecgrhythm.cli import main
from ecgrhythm.export.onnx import PARITY_TOLERANCE, export_onnx, onnx_graph
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.inference.keras_backend import KerasBackend
from ecgrhythm.inference.onnx_backend import OnnxBackend, OnnxModelError, read_onnx_metadata
from ecgrhythm.inference.onnx_metadata import METADATA_KEYS
from ecgrhythm.networks.saving import ModelFolderError, set_calibration
from ecgrhythm.networks.split import load_split
from ecgrhythm.records import read_record

pytest.importorskip("onnx")  # the onnx extra: ecgrhythm's modules import onnx and onnxruntime only when used
pytest.importorskip("onnxruntime")

# Real records: 10 s (padded into the first bucket), 44 s (padded into the 45 s bucket), 60 s.
CINC = ["A00093", "A00245", "A00395"]
LONG = "data_101_9"  # CPSC 2021, 249 s: longer than the largest bucket (65 s), classified in chunks


@pytest.fixture(scope="module")
def keras_clf(tiny_model_dir):
    return RhythmClassifier.load(tiny_model_dir)


@pytest.fixture(scope="module")
def onnx_clf(onnx_file, keras_clf):
    clf = RhythmClassifier.load(onnx_file)  # one classifier class: the backend follows the path
    assert isinstance(clf.backend_, OnnxBackend) and isinstance(keras_clf.backend_, KerasBackend)
    return clf


def test_onnx_matches_keras_on_real_records_of_several_lengths(keras_clf, onnx_clf, cinc2017_dir, cpsc2021_dir):
    records = [read_record(cinc2017_dir / f"{n}.hea") for n in CINC]
    long = read_record(cpsc2021_dir / f"{LONG}.hea")
    lengths = [len(keras_clf.prepare(r)) for r in records]
    assert lengths[0] < keras_clf.buckets_[0] and keras_clf.buckets_[2] < lengths[1] < keras_clf.buckets_[3]
    assert len(long.signal) / long.fs * keras_clf.preprocess_.fs > 3 * keras_clf.buckets_[-1]

    for predict in (lambda clf: clf.predict_records(records), lambda clf: clf.predict_arrays([long.signal[:, :1]], long.fs)):
        expected, got = predict(keras_clf), predict(onnx_clf)
        np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=PARITY_TOLERANCE, rtol=0)
        assert got.labels == expected.labels and got.classes == expected.classes

    # Padding never changes an ONNX prediction: one record alone equals the same record in a padded batch.
    signals = [onnx_clf.prepare(r) for r in records]
    together = onnx_clf.predict_prepared(signals)
    alone = np.concatenate([onnx_clf.predict_prepared([s]) for s in signals])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-5)


def test_metadata_read_back(onnx_file, tiny_model_dir, keras_clf, onnx_clf):
    import onnx

    meta = read_onnx_metadata(onnx_file)
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert meta["config.json"] == config
    assert meta["classes"] == config["classes"] == keras_clf.classes_
    assert meta["fs"] == config["preprocess"]["fs"] and meta["normalization"] == config["preprocess"]["normalization"]
    assert meta["bandpass"] == config["preprocess"]["bandpass"] and meta["leads"] == config["preprocess"]["leads"]
    assert meta["buckets"] == list(keras_clf.buckets_) and meta["downsampling"] == 2 ** len(config["model"]["conv_filters"])
    assert meta["temperature"] == 1.0 and meta["decision"] == "argmax" and meta["networks"] == 1
    # The weights it was built from, by SHA-256: a folder carrying the graph runs on it only while they are its own.
    assert meta["weights"] == {"model.weights.h5": json.loads((tiny_model_dir / "checksums.json").read_text())["model.weights.h5"]}
    # The folder's split travels with the file (evaluate leaves out its training records, see test_evaluation).
    split = load_split(tiny_model_dir)
    assert meta["split"] == split and len(split["train"]) == 48 and len(split["val"]) == 16
    assert onnx_clf.training_split() == keras_clf.training_split() == split
    # The same metadata as plain ONNX metadata_props (readable from any language), every value JSON.
    props = {p.key: json.loads(p.value) for p in onnx.load(onnx_file).metadata_props}
    assert set(props) == set(METADATA_KEYS) and props == meta
    # The classifier takes its whole configuration from the file.
    assert onnx_clf.preprocess_ == keras_clf.preprocess_ and onnx_clf.architecture_ == keras_clf.architecture_
    assert onnx_clf.n_leads_ == keras_clf.n_leads_ and onnx_clf.buckets_ == keras_clf.buckets_


def test_a_calibrated_folder_exports_its_temperature_and_files_without_the_mode_load_as_before(
    tiny_model_dir, onnx_file, onnx_clf, cinc2017_dir, tmp_path
):
    import onnx

    records = [cinc2017_dir / f"{n}.hea" for n in CINC]
    folder = tmp_path / "calibrated"
    shutil.copytree(tiny_model_dir, folder)
    set_calibration(folder, [0.5, 2.0, 3.0, 1.5], per_predicted_class=True, class_prior=[0.6, 0.1, 0.25, 0.05])
    path, _ = export_onnx(folder, tmp_path / "calibrated.onnx")
    meta = read_onnx_metadata(path)
    assert meta["temperature"] == [0.5, 2.0, 3.0, 1.5] and meta["temperature_by"] == "predicted_class"
    assert meta["class_prior"] == [0.6, 0.1, 0.25, 0.05] and RhythmClassifier.load(path).class_prior_ == meta["class_prior"]
    expected, got = RhythmClassifier.load(folder).predict_records(records), RhythmClassifier.load(path).predict_records(records)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=PARITY_TOLERANCE, rtol=0)
    assert got.labels == expected.labels and RhythmClassifier.load(path).temperature_by_ == "predicted_class"
    model = onnx.load(path)  # a hand-edited prior in the embedded config.json names the file
    for prop in model.metadata_props:
        if prop.key == "config.json":
            prop.value = json.dumps({**json.loads(prop.value), "class_prior": [0.5, 0.5, 0.5, 0.5]})
    onnx.save(model, tmp_path / "bad-prior.onnx")
    with pytest.raises(OnnxModelError, match=r'bad-prior.onnx: invalid "class_prior" in its metadata.*\(sum 2\)'):
        RhythmClassifier.load(tmp_path / "bad-prior.onnx")
    model = onnx.load(path)  # the top-level key other tools read says something else than the classifier would apply
    for prop in model.metadata_props:
        if prop.key == "class_prior":
            prop.value = json.dumps([0.25, 0.25, 0.25, 0.25])
    onnx.save(model, tmp_path / "other-prior.onnx")
    with pytest.raises(OnnxModelError, match=re.escape("other-prior.onnx: its metadata's ['class_prior'] differ from its config.json's")):
        RhythmClassifier.load(tmp_path / "other-prior.onnx")
    # A file exported before "temperature_by" and "class_prior" existed (no such metadata) loads and predicts as before.
    model = onnx.load(onnx_file)
    kept = [p for p in model.metadata_props if p.key not in ("temperature_by", "class_prior")]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    old = tmp_path / "old.onnx"
    onnx.save(model, old)
    assert read_onnx_metadata(old)["temperature_by"] is None and read_onnx_metadata(old)["class_prior"] is None
    np.testing.assert_allclose(RhythmClassifier.load(old).predict_records(records).probabilities, onnx_clf.predict_records(records).probabilities)


def test_classify_with_onnxruntime_alone(onnx_file, keras_clf, cinc2017_dir, tmp_path):
    """`ecgrhythm classify --model FILE.onnx` in a fresh interpreter: same CSV labels, no Keras and no JAX imported."""
    _classify_in_a_fresh_interpreter(onnx_file, keras_clf, [str(cinc2017_dir / f"{n}.hea") for n in CINC], tmp_path / "onnx.csv")


def _classify_in_a_fresh_interpreter(onnx_file, keras_clf, paths, out):
    """Run `ecgrhythm classify --model onnx_file` in a new Python: it imports neither Keras nor JAX and writes `keras_clf`'s results."""
    done, _, imported = run_cli(["classify", *paths, "--model", onnx_file, "--output", out], ("keras", "jax", "tensorflow", "torch"))
    assert done.returncode == 0, done.stderr
    assert imported == []
    rows = list(csv.DictReader(out.open()))
    expected = keras_clf.predict_records(paths)
    assert [r["record"] for r in rows] == expected.names and [r["label"] for r in rows] == expected.labels
    got = np.array([[float(r[c]) for c in expected.classes] for r in rows])
    np.testing.assert_allclose(got, expected.probabilities, atol=PARITY_TOLERANCE)


def test_ensemble_graph_averages_its_networks(tiny_model_dir, keras_clf, cinc2017_dir):
    """Several networks of one folder become one graph whose output is their mean."""
    import keras
    import onnxruntime as ort

    from ecgrhythm.networks.cnn_lstm import build_lstm_classifier
    from ecgrhythm.preprocessing.batching import pad_batch

    config = json.loads((tiny_model_dir / "config.json").read_text())
    keras.utils.set_random_seed(1)
    other = build_lstm_classifier(keras_clf.n_leads_, len(keras_clf.classes_), keras_clf.architecture_)  # untrained: different weights
    networks = [keras_clf.model_, other]
    graph = onnx_graph(networks, config)
    assert json.loads({p.key: p.value for p in graph.metadata_props}["networks"]) == 2
    signals = [keras_clf.prepare(read_record(cinc2017_dir / f"{n}.hea")) for n in CINC[:2]]
    x, mask = pad_batch(signals, keras_clf.buckets_[3])
    each = [np.asarray(n.predict_on_batch({"signal": x, "mask": mask})) for n in networks]
    assert np.abs(each[0] - each[1]).max() > 1e-2
    got = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"signal": x, "mask": mask})[0]
    np.testing.assert_allclose(got, (each[0] + each[1]) / 2, atol=PARITY_TOLERANCE)


def test_export_and_load_errors_name_the_file_and_the_fix(tmp_path, capsys, tiny_model_dir, cinc2017_dir):
    import onnx
    from onnx import TensorProto, helper

    assert main(["export", "--model", str(tmp_path / "nowhere"), "--output", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert f"--model {tmp_path / 'nowhere'}: no such model folder or .onnx file" in err  # checked before anything loads
    assert main(["export", "--model", str(tiny_model_dir), "--output", str(tmp_path / "m.txt")]) == 2
    assert "ending in .onnx" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing half-written

    with pytest.raises(OnnxModelError, match=r"missing.onnx: ONNX model file not found; write one by exporting a model folder \(`export_onnx`\)"):
        RhythmClassifier.load(tmp_path / "missing.onnx")
    with pytest.raises(ModelFolderError, match=r"nowhere: model folder not found; `model_dir` takes a model folder \(written by training\)"):
        export_onnx(tmp_path / "nowhere", tmp_path / "m.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(OnnxModelError, match="garbage.onnx: cannot load the ONNX model"):
        RhythmClassifier.load(garbage)
    assert main(["classify", str(cinc2017_dir / "A00001.hea"), "--model", str(garbage), "--output", str(tmp_path / "out.csv")]) == 2
    assert "garbage.onnx: cannot load the ONNX model" in capsys.readouterr().err
    foreign = tmp_path / "foreign.onnx"  # a valid ONNX model that ecgrhythm did not write
    value = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    onnx.save(
        helper.make_model(
            helper.make_graph(
                [helper.make_node("Identity", ["x"], ["y"])], "g", [value], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]
            )
        ),
        foreign,
    )
    with pytest.raises(OnnxModelError, match="foreign.onnx: not an ecgrhythm ONNX model .*export one with 'ecgrhythm export'"):
        RhythmClassifier.load(foreign)


def test_a_model_with_the_rr_channel_exports_and_classifies_as_its_folder(tiny_rr_model_dir, onnx_file, cinc2017_dir, tmp_path):
    import onnx

    path, difference = export_onnx(tiny_rr_model_dir, tmp_path / "rr.onnx")
    assert difference <= PARITY_TOLERANCE
    meta = read_onnx_metadata(path)
    assert meta["rr_channel"] is True and meta["n_leads"] == 1 and meta["config.json"]["preprocess"]["rr_channel"] is True
    assert onnx.load(path).graph.input[0].type.tensor_type.shape.dim[2].dim_value == 2  # the lead, then the RR channel
    keras_rr, onnx_rr = RhythmClassifier.load(tiny_rr_model_dir), RhythmClassifier.load(path)
    assert onnx_rr.preprocess_ == keras_rr.preprocess_ and onnx_rr.n_channels_ == 2
    records = [read_record(cinc2017_dir / f"{n}.hea") for n in CINC]
    expected, got = keras_rr.predict_records(records), onnx_rr.predict_records(records)
    np.testing.assert_allclose(got.probabilities, expected.probabilities, atol=PARITY_TOLERANCE, rtol=0)
    assert got.labels == expected.labels
    _classify_in_a_fresh_interpreter(path, keras_rr, [str(cinc2017_dir / f"{n}.hea") for n in CINC], tmp_path / "rr.csv")
    # Files exported before the key existed have no rr_channel metadata: read as false.
    assert read_onnx_metadata(onnx_file)["rr_channel"] is False
    model = onnx.load(onnx_file)
    kept = [p for p in model.metadata_props if p.key != "rr_channel"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, tmp_path / "old.onnx")
    assert read_onnx_metadata(tmp_path / "old.onnx")["rr_channel"] is False


@pytest.fixture(scope="module")
def ensemble_dir(tiny_model_dir, other_member, tmp_path_factory):
    """A folder of two networks: the tiny model, then the copy whose output layer's weights are scaled by 3."""
    from ecgrhythm.networks.saving import assemble_ensemble

    return assemble_ensemble([tiny_model_dir, other_member], tmp_path_factory.mktemp("ensemble") / "ensemble")


def test_an_exported_ensemble_finds_episodes_with_its_first_network_as_its_folder(ensemble_dir, tmp_path, cinc2017_dir):
    from ecgrhythm.episodes.finder import EpisodeParams, collect_windows, iter_window_probabilities

    path, difference = export_onnx(ensemble_dir, tmp_path / "ensemble.onnx")  # parity checked on both outputs
    assert difference <= PARITY_TOLERANCE
    assert read_onnx_metadata(path)["networks"] == 2
    assert load_split(ensemble_dir) is None and read_onnx_metadata(path)["split"] is None  # its second network has no split
    assert RhythmClassifier.load(path).training_split() is None
    assert read_onnx_metadata(path)["outputs"] == {"probabilities": 2, "first_probabilities": 1}
    keras_ens, onnx_ens = RhythmClassifier.load(ensemble_dir), RhythmClassifier.load(path)
    assert onnx_ens.n_networks_ == keras_ens.n_networks_ == 2 and not hasattr(onnx_ens, "networks_")  # no Keras networks in the file
    record = read_record(cinc2017_dir / f"{CINC[2]}.hea")
    signals = [onnx_ens.prepare(read_record(cinc2017_dir / f"{n}.hea")) for n in CINC]
    first = keras_ens.predict_prepared(signals, calibrated=False, networks=1)
    mean = keras_ens.predict_prepared(signals, calibrated=False)
    assert np.abs(first - mean).max() > 1e-2  # the networks differ
    np.testing.assert_allclose(onnx_ens.predict_prepared(signals, calibrated=False, networks=1), first, atol=PARITY_TOLERANCE)
    np.testing.assert_allclose(onnx_ens.predict_prepared(signals, calibrated=False), mean, atol=PARITY_TOLERANCE)
    with pytest.raises(ValueError, match="fitted on all its networks"):
        onnx_ens.predict_prepared(signals, networks=1)
    with pytest.raises(ValueError, match="the model has 2 network"):
        onnx_ens.predict_prepared(signals, calibrated=False, networks=3)

    def windows(clf, params=None):
        pieces = iter_window_probabilities(clf, [record.signal[:, 0]], record.fs, params=params or EpisodeParams())
        return collect_windows(pieces, clf.classes_, record.duration_s).probabilities

    expected = windows(keras_ens)
    assert len(expected) > 10  # windows every 4 s over the record
    np.testing.assert_allclose(windows(onnx_ens), expected, atol=PARITY_TOLERANCE)
    assert np.abs(windows(onnx_ens, EpisodeParams(networks=None)) - expected).max() > 1e-2  # all networks: another answer


def test_an_ensemble_file_exported_before_the_first_network_output_refuses_to_run_it_alone(ensemble_dir, tmp_path, cinc2017_dir):
    import onnx

    path, _ = export_onnx(ensemble_dir, tmp_path / "new.onnx")
    model = onnx.load(path)
    # As exported before: the mean as the only output, and no "outputs" metadata.
    kept_nodes = [n for n in model.graph.node if "first_probabilities" not in n.output]
    del model.graph.node[:]
    model.graph.node.extend(kept_nodes)
    kept_outputs = [o for o in model.graph.output if o.name != "first_probabilities"]
    del model.graph.output[:]
    model.graph.output.extend(kept_outputs)
    kept_props = [p for p in model.metadata_props if p.key != "outputs"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept_props)
    old = tmp_path / "old.onnx"
    onnx.save(model, old)
    assert read_onnx_metadata(old)["outputs"] is None and [o.name for o in onnx.load(old).graph.output] == ["probabilities"]

    clf, new = RhythmClassifier.load(old), RhythmClassifier.load(path)
    signals = [clf.prepare(read_record(cinc2017_dir / f"{n}.hea")) for n in CINC]
    np.testing.assert_allclose(clf.predict_prepared(signals), new.predict_prepared(signals), atol=1e-6)  # the mean, as before
    with pytest.raises(ValueError, match=r"old\.onnx: this ONNX file's graph gives the mean of its 2 networks only.*export it again"):
        clf.predict_prepared(signals, calibrated=False, networks=1)


def test_a_folder_runs_its_first_network_graph_alone_for_the_first_network(ensemble_dir, tmp_path, cinc2017_dir):
    from ecgrhythm.inference.onnx_backend import FIRST_GRAPH_FILE, GRAPH_FILE

    folder = tmp_path / "ensemble"
    shutil.copytree(ensemble_dir, folder)
    export_onnx(folder, folder / GRAPH_FILE)
    whole_only = RhythmClassifier.load(folder)
    assert whole_only.backend_.first_network is None
    path, difference = export_onnx(folder, folder / FIRST_GRAPH_FILE, networks=1)
    assert difference <= PARITY_TOLERANCE
    meta, whole = read_onnx_metadata(path), read_onnx_metadata(folder / GRAPH_FILE)
    assert meta["networks"] == 1 and meta["outputs"] == {"probabilities": 1} and meta["weights"] == dict(list(whole["weights"].items())[:1])
    clf = RhythmClassifier.load(folder)
    assert clf.backend_.first_network is not None and clf.n_networks_ == 2  # loaded and checked here
    signals = [clf.prepare(read_record(cinc2017_dir / f"{n}.hea")) for n in CINC]
    alone = clf.predict_prepared(signals, calibrated=False, networks=1)
    np.testing.assert_allclose(alone, whole_only.predict_prepared(signals, calibrated=False, networks=1), atol=1e-6, rtol=0)
    np.testing.assert_allclose(clf.predict_prepared(signals), whole_only.predict_prepared(signals), atol=1e-6, rtol=0)  # all: the whole graph
    assert np.abs(alone - clf.predict_prepared(signals, calibrated=False)).max() > 1e-2
    with pytest.raises(ValueError, match=r"`networks`: the folder has 2 network\(s\)"):
        export_onnx(folder, tmp_path / "three.onnx", networks=3)

    shutil.copy(folder / GRAPH_FILE, folder / FIRST_GRAPH_FILE)  # the whole graph is not the first network's
    altered = RhythmClassifier.load(folder, backend="onnx")  # checked when first needed: classifying records never is
    np.testing.assert_allclose(altered.predict_prepared(signals), whole_only.predict_prepared(signals), atol=1e-6, rtol=0)
    with pytest.raises(OnnxModelError, match=r"first_network\.onnx: not the graph of this folder's first network.*--networks 1"):
        altered.predict_prepared(signals, calibrated=False, networks=1)


def test_the_shipped_folder_runs_its_first_network_alone_for_episodes(cinc2017_dir):
    """Episode windows run the folder's first network alone: a folder of several networks carries that network's own
    graph; a folder of one network runs its whole graph, which is that network."""
    from ecgrhythm.inference.backend import default_model_dir
    from ecgrhythm.inference.onnx_backend import FIRST_GRAPH_FILE, GRAPH_FILE

    folder = default_model_dir()
    whole = read_onnx_metadata(folder / GRAPH_FILE)
    clf = RhythmClassifier.load()
    if whole["networks"] > 1:
        first = read_onnx_metadata(folder / FIRST_GRAPH_FILE)
        assert first["networks"] == 1 and first["weights"] == {"model.weights.h5": whole["weights"]["model.weights.h5"]}
        assert clf.backend_.first_network is not None
    else:
        assert not (folder / FIRST_GRAPH_FILE).exists() and clf.backend_.first_network is None
        signals = [clf.prepare(read_record(cinc2017_dir / f"{n}.hea")) for n in ("A00004", "A00022")]
        np.testing.assert_allclose(
            clf.predict_prepared(signals, calibrated=False, networks=1), clf.predict_prepared(signals, calibrated=False), atol=1e-6, rtol=0
        )
