"""Calibrating a model folder (the library behind `ecgrhythm calibrate`), on the tiny model trained on real CinC 2017 records."""

import json
import shutil

import numpy as np
import pytest

from ecgrhythm.evaluation.calibration import CROSS_FIT_FOLDS, HeldOut, open_model, read_predictions
from ecgrhythm.networks.split import load_split
from ecgrhythm.scoring.calibration import apply_temperature

CLASSES = ["N", "A", "O", "~"]


def _overconfident(n=400, seed=1):
    """`(targets, probabilities)`: right more often than chance, and far too sure of it (T = 0.3)."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 4, n)
    logits = rng.normal(0, 1, (n, 4))
    logits[np.arange(n), targets] += 1.0
    return targets, apply_temperature(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 0.3)


def _predictions_csv(path, names, targets, probs):
    rows = ["record,label,true_label,lead," + ",".join(CLASSES)]
    rows += [f"{n},{CLASSES[int(p.argmax())]},{CLASSES[t]},ECG," + ",".join(f"{v:.6f}" for v in p) for n, t, p in zip(names, targets, probs)]
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture()
def model(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def test_read_predictions_gives_seeded_folds_and_refuses_other_files(tmp_path):
    targets, probs = _overconfident(50)
    held = read_predictions(_predictions_csv(tmp_path / "p.csv", [f"r{i}" for i in range(50)], targets, probs))
    assert held.classes == CLASSES and held.truth == [CLASSES[t] for t in targets] and held.names[:2] == ["r0", "r1"]
    np.testing.assert_allclose(held.probabilities, probs, atol=1e-6)
    np.testing.assert_array_equal(held.targets, targets)
    assert sorted(set(held.folds)) == list(range(CROSS_FIT_FOLDS))
    np.testing.assert_array_equal(read_predictions(tmp_path / "p.csv").folds, held.folds)  # seeded
    (tmp_path / "other.csv").write_text("record,label,N\nr1,N,1.0\n")
    with pytest.raises(ValueError, match="other.csv: not a predictions.csv"):
        read_predictions(tmp_path / "other.csv")
    (tmp_path / "nan.csv").write_text("record,label,true_label,N\nr1,N,N,x\n")
    with pytest.raises(ValueError, match="nan.csv: a probability is not a number"):
        read_predictions(tmp_path / "nan.csv")
    with pytest.raises(ValueError, match="missing.csv: cannot read it"):
        read_predictions(tmp_path / "missing.csv")


def test_a_fit_is_written_into_the_folder_and_scaled_records_are_better_calibrated(model, tmp_path):
    targets, probs = _overconfident()
    held = read_predictions(_predictions_csv(tmp_path / "p.csv", [f"r{i}" for i in range(len(targets))], targets, probs))
    plan = open_model(model).prepare(held, prior_correction=True)
    np.testing.assert_allclose(plan.class_prior, np.bincount(targets, minlength=4) / len(targets))
    before, after = plan.prior_scores()
    assert len(before) == len(after) == CROSS_FIT_FOLDS
    result = plan.fit()
    config = json.loads(result.config_file.read_text())
    assert config["temperature"] == pytest.approx(float(result.temperature)) and result.temperature > 2
    assert config["class_prior"] == pytest.approx(plan.class_prior.tolist())
    assert result.ece_after < result.ece_before / 3 and 0 <= result.ece_cross_fitted < result.ece_before


def test_the_model_must_match_and_validation_records_can_be_left_out(model, tmp_path):
    split = load_split(model)
    names = split["val"] + split["train"][:10]
    targets, probs = _overconfident(len(names))
    held = HeldOut(tmp_path / "oof.csv", names, np.arange(len(names)) % 2, [CLASSES[t] for t in targets], probs, CLASSES, origin="cv")
    target = open_model(model)
    kept, left_out = target.leave_out_validation(held)
    assert left_out == len(split["val"]) and kept.names == split["train"][:10] and kept.probabilities.shape == (10, 4)
    np.testing.assert_array_equal(kept.folds, held.folds[left_out:])
    only_validation = HeldOut(held.path, split["val"], held.folds[:left_out], held.truth[:left_out], probs[:left_out], CLASSES, origin="cv")
    with pytest.raises(ValueError, match=f"every row of cv is a validation record of {model}"):
        target.leave_out_validation(only_validation)
    other = HeldOut(held.path, names, held.folds, held.truth, probs[:, :3], CLASSES[:3])
    with pytest.raises(ValueError, match=r"has the classes \['N', 'A', 'O', '~'\], .*oof.csv has \['N', 'A', 'O'\]"):
        target.prepare(other)
    missing_class = HeldOut(held.path, names[:3], held.folds[:3], ["N", "N", "A"], probs[:3], CLASSES)
    with pytest.raises(ValueError, match="`prior_correction`: no class prior from .*oof.csv"):
        target.prepare(missing_class, prior_correction=True)
