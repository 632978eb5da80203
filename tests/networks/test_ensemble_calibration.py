"""Model folders with a temperature or several networks: written, verified, loaded and applied."""

from __future__ import annotations

import hashlib
import json
import re
import shutil

import numpy as np
import pytest

from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.networks.saving import MAX_MEMBERS, ModelFolderError, assemble_ensemble, load_model_dir, save_model_dir, set_calibration
from ecgrhythm.records import read_record
from ecgrhythm.scoring.calibration import apply_class_prior, apply_temperature, top_class_calibration
from ecgrhythm.scoring.crossval import cross_fitted_temperature


@pytest.fixture(scope="module")
def records(cinc2017_dir):
    return sorted(cinc2017_dir.glob("A0000*.hea"))[:6]


def test_temperature_is_saved_with_consistent_checksums_and_applied(tiny_model_dir, tmp_path, records):
    plain = RhythmClassifier.load(tiny_model_dir).predict_records(records).probabilities
    folder = tmp_path / "calibrated"
    shutil.copytree(tiny_model_dir, folder)
    set_calibration(folder, 2.5)
    clf = RhythmClassifier.load(folder)  # checksums verified
    assert clf.temperature_ == 2.5 and json.loads((folder / "config.json").read_text())["temperature"] == 2.5
    np.testing.assert_allclose(clf.predict_records(records).probabilities, apply_temperature(plain, 2.5), atol=1e-6)
    assert clf.predict_records(records).probabilities.max(axis=1).mean() < plain.max(axis=1).mean()  # softer
    per_class = [1.0, 2.0, 0.5, 3.0]
    set_calibration(folder, per_class)
    np.testing.assert_allclose(RhythmClassifier.load(folder).predict_records(records).probabilities, apply_temperature(plain, per_class), atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        set_calibration(folder, [1.0, 2.0])
    config = json.loads((folder / "config.json").read_text())
    config["temperature"] = 1.5  # edited by hand: the checksum no longer matches
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFolderError, match="checksum"):
        RhythmClassifier.load(folder)


def test_a_temperature_per_predicted_class_is_saved_applied_and_keeps_every_label(tiny_model_dir, tmp_path, records):
    plain = RhythmClassifier.load(tiny_model_dir).predict_records(records)
    folder = tmp_path / "by-predicted"
    shutil.copytree(tiny_model_dir, folder)
    by_predicted = [0.5, 2.0, 3.0, 1.0]
    set_calibration(folder, by_predicted, per_predicted_class=True)
    config = json.loads((folder / "config.json").read_text())
    assert config["temperature"] == by_predicted and config["temperature_by"] == "predicted_class"
    clf = RhythmClassifier.load(folder)  # checksums verified
    assert clf.temperature_ == by_predicted and clf.temperature_by_ == "predicted_class"
    got = clf.predict_records(records)
    np.testing.assert_allclose(got.probabilities, apply_temperature(plain.probabilities, by_predicted, per_predicted_class=True), atol=1e-6)
    assert np.abs(got.probabilities - apply_temperature(plain.probabilities, by_predicted)).max() > 1e-3  # not the per-class scaling
    assert got.labels == plain.labels
    with pytest.raises(ValueError, match="one per predicted class"):
        set_calibration(folder, 2.0, per_predicted_class=True)
    assert load_model_dir(assemble_ensemble([folder], tmp_path / "ensemble"))[1]["temperature_by"] is None  # dropped with the temperature
    set_calibration(folder, by_predicted)  # written again without the mode: one temperature per class (column)
    assert "temperature_by" not in json.loads((folder / "config.json").read_text()) and RhythmClassifier.load(folder).temperature_by_ is None
    for edit, problem in (
        ({"temperature_by": "argmax"}, '"temperature_by"'),
        ({"temperature": 2.0, "temperature_by": "predicted_class"}, '"temperature"'),
    ):
        (folder / "config.json").write_text(json.dumps({**config, **edit}))  # edited by hand, checksum updated
        sums = json.loads((folder / "checksums.json").read_text())
        (folder / "checksums.json").write_text(json.dumps({**sums, "config.json": hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()}))
        with pytest.raises(ModelFolderError, match=re.escape(f"{folder}: invalid {problem} in config.json")):
            RhythmClassifier.load(folder)


def test_a_class_prior_is_saved_applied_before_the_temperature_and_dropped_by_an_ensemble(tiny_model_dir, tmp_path, records):
    plain = RhythmClassifier.load(tiny_model_dir).predict_records(records).probabilities
    folder = tmp_path / "prior"
    shutil.copytree(tiny_model_dir, folder)
    prior = [0.59, 0.09, 0.28, 0.04]
    set_calibration(folder, [0.9, 1.4, 1.3, 1.1], per_predicted_class=True, class_prior=prior)
    config = json.loads((folder / "config.json").read_text())
    assert config["class_prior"] == prior and config["temperature_by"] == "predicted_class"
    clf = RhythmClassifier.load(folder)  # checksums verified
    assert clf.class_prior_ == prior
    expected = apply_temperature(apply_class_prior(plain, prior), [0.9, 1.4, 1.3, 1.1], per_predicted_class=True)
    np.testing.assert_allclose(clf.predict_records(records).probabilities, expected, atol=1e-6)
    assert np.abs(expected - apply_temperature(plain, [0.9, 1.4, 1.3, 1.1], per_predicted_class=True)).max() > 1e-2
    assert load_model_dir(assemble_ensemble([folder], tmp_path / "ensemble"))[1]["class_prior"] is None
    for bad in ([0.5, 0.5], [0.5, 0.5, 0.5, 0.5], ["a"] * 4, ["0.25"] * 4, {}, 0.25):
        with pytest.raises(ValueError, match="Invalid argument `class_prior`"):
            set_calibration(folder, 1.0, class_prior=bad)
    set_calibration(folder, 1.0)  # written again without a prior: none is kept
    assert "class_prior" not in json.loads((folder / "config.json").read_text()) and RhythmClassifier.load(folder).class_prior_ is None
    (folder / "config.json").write_text(json.dumps({**config, "class_prior": [0.5, 0.5, 0.5, 0.5]}))  # edited by hand, checksum updated
    sums = json.loads((folder / "checksums.json").read_text())
    (folder / "checksums.json").write_text(json.dumps({**sums, "config.json": hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()}))
    with pytest.raises(ModelFolderError, match=re.escape(f'{folder}: invalid "class_prior" in config.json')):
        RhythmClassifier.load(folder)


def test_a_folder_without_temperature_or_members_loads_as_before(tiny_model_dir):
    clf = RhythmClassifier.load(tiny_model_dir)
    assert clf.temperature_ == 1.0 and clf.temperature_by_ is None and len(clf.networks_) == 1 and clf.model_ is clf.networks_[0]


def test_cross_fitted_temperature_lowers_the_ece_of_over_confident_probabilities():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 4, 2000)
    logits = rng.normal(0, 1, (2000, 4))
    logits[np.arange(2000), targets] += 1.0
    honest = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    over = apply_temperature(honest, 0.3)  # sharpened: over-confident
    folds = np.arange(2000) % 5
    before = top_class_calibration(over, targets).ece
    after = top_class_calibration(cross_fitted_temperature(over, targets, folds), targets).ece
    assert before > 0.15 and after < before / 3


def test_an_ensemble_folder_averages_its_members(tiny_model_dir, other_member, tmp_path, records):
    out = assemble_ensemble([tiny_model_dir, other_member], tmp_path / "ensemble")
    config = json.loads((out / "config.json").read_text())
    assert config["members"] == ["model.weights.h5", "member1.weights.h5"]
    assert [m["folder"] for m in config["metadata"]["ensemble_of"]] == [tiny_model_dir.name, "scaled"]
    a = RhythmClassifier.load(tiny_model_dir).predict_records(records).probabilities
    b = RhythmClassifier.load(other_member).predict_records(records).probabilities
    assert np.abs(a - b).max() > 1e-3  # the members differ
    ensemble = RhythmClassifier.load(out)
    assert len(ensemble.networks_) == 2
    np.testing.assert_allclose(ensemble.predict_records(records).probabilities, (a + b) / 2, atol=1e-6)
    prepared = [ensemble.prepare(read_record(r)) for r in records]  # the first network, which ran both, has its own weights back
    np.testing.assert_allclose(ensemble.predict_prepared(prepared, calibrated=False, networks=1), a, atol=1e-6)
    set_calibration(out, 2.0)  # a calibrated ensemble scales the mean
    np.testing.assert_allclose(RhythmClassifier.load(out).predict_records(records).probabilities, apply_temperature((a + b) / 2, 2.0), atol=1e-6)
    (out / "member1.weights.h5").write_bytes((out / "member1.weights.h5").read_bytes()[:-8])
    with pytest.raises(ModelFolderError, match="member1.weights.h5 does not match its checksum"):
        RhythmClassifier.load(out)


def test_episode_windows_of_an_ensemble_come_from_its_first_network_unless_all_are_asked_for(tiny_model_dir, other_member, tmp_path, records):
    from ecgrhythm.episodes.finder import EpisodeParams, collect_windows, iter_window_probabilities

    out = assemble_ensemble([tiny_model_dir, other_member], tmp_path / "ensemble")
    set_calibration(out, 2.0)
    record = read_record(records[0])
    signal = record.signal[:, 0]

    def windows(clf, params=None):
        return collect_windows(
            iter_window_probabilities(clf, [signal], record.fs, params=params or EpisodeParams()), clf.classes_, record.duration_s
        ).probabilities

    first, second, ensemble = (RhythmClassifier.load(p) for p in (tiny_model_dir, other_member, out))
    a, b = windows(first), windows(second)
    assert len(a) > 5 and np.abs(a - b).max() > 1e-3
    np.testing.assert_allclose(windows(ensemble), a, atol=1e-6)  # the default: the first network, without the temperature
    np.testing.assert_allclose(windows(ensemble, EpisodeParams(networks=None)), (a + b) / 2, atol=1e-6)
    prepared = ensemble.prepare(record)
    with pytest.raises(ValueError, match="fitted on all its networks"):
        ensemble.predict_prepared([prepared], networks=1)  # the temperature belongs to the mean of both
    for bad in (0, 3, True, 1.5):
        with pytest.raises(ValueError, match="networks"):
            ensemble.predict_prepared([prepared], calibrated=False, networks=bad)
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="networks"):
            EpisodeParams(networks=bad)


def test_a_member_failing_mid_swap_leaves_the_first_network_its_own_weights(tiny_model_dir, other_member, tmp_path, records, monkeypatch):
    import ecgrhythm.inference.classifier as inference

    ensemble = RhythmClassifier.load(assemble_ensemble([tiny_model_dir, other_member], tmp_path / "ensemble"))
    prepared = [ensemble.prepare(read_record(r)) for r in records]
    first = ensemble.predict_prepared(prepared, calibrated=False, networks=1)
    real, calls = inference.run_signals, []  # runs each network of the ensemble in turn

    def second_call_fails(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the second member fails once the first network has taken its weights
            real(*args, **kwargs)
            raise RuntimeError("member failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(inference, "run_signals", second_call_fails)
    with pytest.raises(RuntimeError, match="member failed"):
        ensemble.predict_prepared(prepared, calibrated=False)
    monkeypatch.setattr(inference, "run_signals", real)
    np.testing.assert_allclose(ensemble.predict_prepared(prepared, calibrated=False, networks=1), first, atol=1e-6)


def test_ensembles_of_other_architectures_or_too_many_members_are_refused(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match=f"1 to {MAX_MEMBERS}"):
        assemble_ensemble([tiny_model_dir] * (MAX_MEMBERS + 1), tmp_path / "big")
    different = tmp_path / "different"
    shutil.copytree(tiny_model_dir, different)
    model, config = load_model_dir(different)
    save_model_dir(model, different, classes=["N", "A", "O", "X"], preprocess=config["preprocess"], architecture=config["model"])
    with pytest.raises(ValueError, match="'classes' differs"):
        assemble_ensemble([tiny_model_dir, different], tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists() and not (tmp_path / "big").exists()


def test_calibrate_fits_on_an_evaluate_predictions_csv(tiny_model_dir, tmp_path, capsys):
    from ecgrhythm.cli import main

    rng = np.random.default_rng(1)
    classes = ["N", "A", "O", "~"]
    targets = rng.integers(0, 4, 400)
    logits = rng.normal(0, 1, (400, 4))
    logits[np.arange(400), targets] += 1.0
    over = apply_temperature(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 0.3)
    rows = ["record,label,true_label,lead," + ",".join(classes)]
    rows += [f"r{i},{classes[int(p.argmax())]},{classes[t]},ECG," + ",".join(f"{v:.6f}" for v in p) for i, (t, p) in enumerate(zip(targets, over))]
    predictions = tmp_path / "predictions.csv"
    predictions.write_text("\n".join(rows) + "\n")
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    assert main(["calibrate", str(model), "--predictions", str(predictions)]) == 0
    line = capsys.readouterr().out
    before, after = (float(v) for v in line.split("ECE ")[1].replace(" before,", "").split(" after")[0].split())
    temperature = json.loads((model / "config.json").read_text())["temperature"]
    assert temperature > 2 and after < before / 3 and "cross-fitted" in line
    RhythmClassifier.load(model)  # the checksums still hold
    (tmp_path / "bad.csv").write_text("record,label,N\nr1,N,1.0\n")
    assert main(["calibrate", str(model), "--predictions", str(tmp_path / "bad.csv")]) == 2
