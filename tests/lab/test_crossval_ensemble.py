"""Cross-validation of an ensemble: two tiny cross-validations (training seeds 0 and 1) on the same CinC 2017 folds, averaged."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil

import numpy as np
import pytest
from conftest import TINY_PREPROCESS, TINY_TRAIN
from test_crossval import LIMIT, RECIPE, _partial_copy

from ecgrhythm.lab.candidates import write_candidates
from ecgrhythm.lab.crossval_ensemble import average_crossvals
from ecgrhythm.lab.crossval_report import summarise, write_report
from ecgrhythm.scoring.crossval import prior_correction_scores
from ecgrhythm.training.crossval import RECIPE_FILE, run_crossval
from ecgrhythm.training.data import load_labelled
from ecgrhythm.training.folds import FOLDS_FILE, fold_dir, read_folds
from ecgrhythm.training.oof import LAST_OOF_FILE, OOF_FILE, read_oof


@pytest.fixture(scope="module")
def members(tmp_path_factory, cinc2017_dir):
    """The tiny recipe cross-validated twice on the same folds: training seed 0 (`baseline`) and seed 1 (`seed1`)."""
    root = tmp_path_factory.mktemp("members")
    run_crossval(cinc2017_dir, root / "baseline", **RECIPE)
    run_crossval(cinc2017_dir, root / "seed1", **{**RECIPE, "train_config": dataclasses.replace(TINY_TRAIN, seed=1)})
    return [root / "baseline", root / "seed1"]


@pytest.fixture(scope="module")
def ensemble(members, tmp_path_factory):
    out = tmp_path_factory.mktemp("ensembles") / "ensemble"
    result = average_crossvals(members, out)
    assert result.finished == result.trained == [0, 1] and result.oof_path == out / OOF_FILE
    return out


def _rows(path):
    names, folds, truth, probs, classes = read_oof(path)
    return {n: (int(k), t, p) for n, k, t, p in zip(names, folds, truth, probs)}, classes


def test_averaged_oof_is_the_members_mean_and_what_each_fold_ensemble_predicts(members, ensemble, cinc2017_dir):
    from ecgrhythm.inference.classifier import RhythmClassifier

    ours, classes = _rows(ensemble / OOF_FILE)
    (a, _), (b, _) = (_rows(m / OOF_FILE) for m in members)
    assert len(ours) == LIMIT and set(ours) == set(a) == set(b) and classes == ["N", "A", "O", "~"]
    assert not np.allclose([a[n][2] for n in a], [b[n][2] for n in a], atol=1e-3), "the two seeds' networks should differ"
    for name, (k, truth, probs) in ours.items():
        assert (k, truth) == a[name][:2] == b[name][:2]
        np.testing.assert_allclose(probs, (a[name][2] + b[name][2]) / 2, atol=1e-6)
    assert (ensemble / FOLDS_FILE).read_text() == (members[0] / FOLDS_FILE).read_text()
    recipe = json.loads((ensemble / RECIPE_FILE).read_text())
    assert recipe == {"ensemble_of": [{"folder": m.name, "recipe": json.loads((m / RECIPE_FILE).read_text())} for m in members]}
    # each fold's model folder predicts on its fold's records the probabilities the estimate is made of
    data = load_labelled(cinc2017_dir, TINY_PREPROCESS, limit=LIMIT)
    index = {n: i for i, n in enumerate(data.names)}
    for k, names in enumerate(read_folds(ensemble).folds):
        clf = RhythmClassifier.load(fold_dir(ensemble, k))
        assert len(clf.networks_) == 2
        predicted = clf.predict_prepared([data.signals[index[n]] for n in names])
        np.testing.assert_allclose(predicted, [ours[n][2] for n in names], atol=1e-5)


def test_members_that_cannot_be_averaged_and_outputs_that_are_not_ours_are_refused(members, ensemble, tmp_path, cinc2017_dir):
    other_folds = tmp_path / "other-folds"
    run_crossval(cinc2017_dir, other_folds, folds_only=True, **{**RECIPE, "fold_seed": 1})
    with pytest.raises(ValueError, match=r"other-folds: its folds .* differ from those of .*baseline"):
        average_crossvals([members[0], other_folds], tmp_path / "out")
    other_classes = _partial_copy(members[1], tmp_path / "other-classes", [])
    folds = json.loads((other_classes / FOLDS_FILE).read_text())
    folds["classes"] = ["N", "A", "O", "X"]
    (other_classes / FOLDS_FILE).write_text(json.dumps(folds))
    with pytest.raises(ValueError, match=r"other-classes: its classes \['N', 'A', 'O', 'X'\] differ"):
        average_crossvals([members[0], other_classes], tmp_path / "out")
    with pytest.raises(ValueError, match="expected 2 to 5"):
        average_crossvals(members[:1], tmp_path / "out")
    with pytest.raises(ValueError, match="is given twice"):
        average_crossvals([members[0], members[0]], tmp_path / "out")
    with pytest.raises(ValueError, match="is the member"):
        average_crossvals(members, members[1])
    with pytest.raises(ValueError, match="itself an ensemble"):
        average_crossvals([members[0], ensemble], tmp_path / "out")
    altered = _partial_copy(members[1], tmp_path / "altered", [0])
    rows = (fold_dir(altered, 0) / OOF_FILE).read_text().splitlines(keepends=True)
    (fold_dir(altered, 0) / OOF_FILE).write_text("".join(rows[:-1]))  # a record's row lost
    dropped = rows[-1].split(",")[0]
    with pytest.raises(ValueError, match=rf"altered/fold0/oof.csv: its records differ from those of .* \(such as {dropped}\)"):
        average_crossvals([members[0], altered], tmp_path / "altered-ensemble")
    assert not fold_dir(tmp_path / "altered-ensemble", 0).exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        average_crossvals(members, tmp_path / "busy")
    with pytest.raises(ValueError, match="other settings"):
        average_crossvals(members, other_folds)  # the folder of another cross-validation
    assert sorted(p.name for p in other_folds.iterdir()) == sorted([FOLDS_FILE, RECIPE_FILE])
    assert not (tmp_path / "out").exists() and sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["notes.txt"]


def test_a_rerun_adds_the_folds_finished_since_and_is_then_idempotent(members, ensemble, tmp_path):
    seed1 = _partial_copy(members[1], tmp_path / "members" / "seed1", [1])  # fold 0 of the second member unfinished
    out = tmp_path / "ensemble"
    first = average_crossvals([members[0], seed1], out)
    assert first.finished == first.trained == [1] and first.oof_path is None
    assert not fold_dir(out, 0).exists() and not (out / OOF_FILE).exists()
    shutil.copytree(fold_dir(members[1], 0), fold_dir(seed1, 0))  # the member's fold 0 finishes
    second = average_crossvals([members[0], seed1], out)
    assert second.trained == [0] and second.finished == [0, 1] and second.oof_path == out / OOF_FILE
    assert (out / OOF_FILE).read_text() == (ensemble / OOF_FILE).read_text()
    assert (out / LAST_OOF_FILE).read_text() == (ensemble / LAST_OOF_FILE).read_text()
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    stamps = {p: p.stat().st_mtime_ns for p in files if p not in (out / OOF_FILE, out / LAST_OOF_FILE)}  # the pooled files are rewritten
    assert average_crossvals([members[0], seed1], out).trained == []
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "a finished fold is not written again"
    with pytest.raises(ValueError, match="other settings"):
        average_crossvals([seed1, members[0]], out)  # other members (here: in another order) are refused


def test_report_and_candidates_table_pair_the_ensemble_with_a_member(members, ensemble, tmp_path):
    results = tmp_path / "results"
    write_report(members[0], results / "baseline")
    paths = write_report(ensemble, results / "ensemble", command="ecgrhythm ensemble --crossval ...")
    report = json.loads(paths["json"].read_text())
    base = summarise(members[0])
    assert [f["fold"] for f in report["folds"]] == [0, 1] and report["records"] == LIMIT
    assert (
        all(f["best_epoch"] is None and f["last_epoch"] is None for f in report["folds"]) and report["recipe"]["ensemble_of"][1]["folder"] == "seed1"
    )
    # the last epochs: the members' last-epoch probabilities averaged, scored as they are and prior-corrected
    last, _ = _rows(ensemble / LAST_OOF_FILE)
    (a, _), (b, _) = (_rows(m / LAST_OOF_FILE) for m in members)
    assert set(last) == set(a) == set(b) and len(last) == LIMIT
    for name, (_, _, probs) in last.items():
        np.testing.assert_allclose(probs, (a[name][2] + b[name][2]) / 2, atol=1e-6)
    names, folds, truth, probs, classes = read_oof(ensemble / LAST_OOF_FILE)
    targets = np.array([classes.index(t) for t in truth])
    for f, before, after in zip(report["folds"], *prior_correction_scores(probs, targets, folds, classes)):
        assert (f["last_epoch_score"], f["last_epoch_prior_score"]) == pytest.approx((before, after))
    assert report["last_epoch_mean"] == pytest.approx(np.mean([f["last_epoch_score"] for f in report["folds"]]))
    text = paths["markdown"].read_text()
    row = f"| 0 | {report['folds'][0]['records']} | {report['folds'][0]['score']:.4f} | {report['folds'][0]['last_epoch_score']:.4f} |"
    assert row in text and "no single training log" not in text
    table = write_candidates(results, reference="baseline")
    rows = {r["recipe"]: r for r in csv.DictReader(table["csv"].open())}
    expected = np.mean([f["score"] - g["score"] for f, g in zip(report["folds"], base["folds"])])
    assert float(rows["ensemble"]["difference"]) == pytest.approx(expected, abs=1e-4) and rows["ensemble"]["paired_folds"] == "2"
    expected = np.mean([f["last_epoch_prior_score"] - g["last_epoch_prior_score"] for f, g in zip(report["folds"], base["folds"])])
    assert float(rows["ensemble"]["prior_difference"]) == pytest.approx(expected, abs=1e-4) and rows["ensemble"]["prior_paired_folds"] == "2"
    assert float(rows["ensemble"]["last_epoch_prior_mean"]) == pytest.approx(report["last_epoch_prior_mean"], abs=1e-4)
    assert f"| ensemble | 2 | {report['mean']:.4f} ± {report['ci95']:.4f} | {report['last_epoch_mean']:.4f} |" in table["markdown"].read_text()

    # an ensemble of cross-validations without last-epoch probabilities (run before them) has no last epoch
    old = [_partial_copy(m, tmp_path / "old" / m.name, [0, 1]) for m in members]
    for member in old:
        for k in (0, 1):
            (fold_dir(member, k) / LAST_OOF_FILE).unlink()
    average_crossvals(old, tmp_path / "old-ensemble")
    report = summarise(tmp_path / "old-ensemble")
    assert all(f["last_epoch_score"] is None and "last_epoch_prior_score" not in f for f in report["folds"])
    assert report["last_epoch_mean"] is None and report["last_epoch_prior_mean"] is None
    assert not (tmp_path / "old-ensemble" / LAST_OOF_FILE).exists()
    assert "no single training log" in write_report(tmp_path / "old-ensemble", results / "old")["markdown"].read_text()
    for member, new in zip(old, members):  # the members' last epochs come later (their crossval rerun): a rerun adds them
        for k in (0, 1):
            shutil.copy(fold_dir(new, k) / LAST_OOF_FILE, fold_dir(member, k) / LAST_OOF_FILE)
    assert average_crossvals(old, tmp_path / "old-ensemble").trained == []
    np.testing.assert_allclose(read_oof(tmp_path / "old-ensemble" / LAST_OOF_FILE)[3], read_oof(ensemble / LAST_OOF_FILE)[3], atol=1e-6)


def test_ensemble_command_with_crossval_reports_partially_then_fully_and_calibrates(members, tmp_path, capsys):
    from ecgrhythm.cli import main
    from ecgrhythm.inference.classifier import RhythmClassifier

    seed1 = _partial_copy(members[1], tmp_path / "members" / "seed1", [0])
    out, results = tmp_path / "seeds", tmp_path / "results"
    command = ["ensemble", "--crossval", str(members[0]), str(seed1), "--output", str(out), "--results", str(results)]
    assert main(command) == 0
    shown = capsys.readouterr().out
    assert "folds averaged: [0]" in shown and f"fold 1: unfinished in {seed1}" in shown and not (results / "seeds").exists()
    assert main([*command, "--partial-report", "--name", "two-seeds"]) == 0
    assert "partial report (1 of 2 folds)" in capsys.readouterr().out
    assert [f["fold"] for f in json.loads((results / "two-seeds" / "report.json").read_text())["folds"]] == [0]
    assert "| two-seeds | 1 of 2 |" in (results / "candidates.md").read_text()
    shutil.copytree(fold_dir(members[1], 1), fold_dir(seed1, 1))
    assert main(command) == 0
    assert "report written to" in capsys.readouterr().out
    report = json.loads((results / "seeds" / "report.json").read_text())
    assert len(report["folds"]) == 2 and report["command"] == "" and (out / OOF_FILE).is_file()

    model = tmp_path / "model"
    shutil.copytree(fold_dir(out, 0), model)
    assert main(["calibrate", str(model), "--crossval", str(out)]) == 0
    assert "temperature" in capsys.readouterr().out
    assert RhythmClassifier.load(model).temperature_ == pytest.approx(report["temperature"]["value"])

    assert main(["ensemble", str(fold_dir(members[0], 0)), str(fold_dir(members[1], 0)), "--output", str(tmp_path / "m"), "--name", "x"]) == 2
    assert "--name apply to --crossval only" in capsys.readouterr().err and not (tmp_path / "m").exists()
    assert main(["ensemble", "--crossval", str(members[0]), "--output", str(tmp_path / "one")]) == 2
    assert "expected 2 to 5 cross-validation folders" in capsys.readouterr().err


def test_calibrate_fits_on_finished_folds_and_leaves_out_the_models_validation_records(members, tmp_path, capsys):
    from ecgrhythm.cli import main
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.scoring.calibration import fit_temperature

    names, folds, truth, probs, classes = read_oof(members[0] / OOF_FILE)
    fold0 = folds == 0
    expected = fit_temperature(probs[fold0], np.array([classes.index(t) for t in np.array(truth)[fold0]]), per_predicted_class=True)
    model = tmp_path / "fold1-model"  # fold 1's network: it validated on fold 1, so only fold 0's rows may calibrate it
    shutil.copytree(fold_dir(members[0], 1), model)
    assert main(["calibrate", str(model), "--crossval", str(members[0]), "--per-predicted-class", "--leave-out-validation"]) == 0
    shown = capsys.readouterr().out
    assert f"left out {int((~fold0).sum())} rows" in shown and "one fold: no cross-fitted ECE" in shown
    np.testing.assert_allclose(RhythmClassifier.load(model).temperature_, expected, rtol=1e-6)

    half = _partial_copy(members[0], tmp_path / "half", [0])  # fold 1 unfinished: no pooled oof.csv
    assert main(["calibrate", str(model), "--crossval", str(half)]) == 2
    assert "--partial" in capsys.readouterr().err
    assert main(["calibrate", str(model), "--crossval", str(half), "--partial", "--per-predicted-class"]) == 0
    np.testing.assert_allclose(RhythmClassifier.load(model).temperature_, expected, rtol=1e-6)
    only_fold1 = _partial_copy(members[0], tmp_path / "other-half", [1])
    assert main(["calibrate", str(model), "--crossval", str(only_fold1), "--partial", "--leave-out-validation"]) == 2
    assert "nothing is left to fit on" in capsys.readouterr().err
    assert main(["calibrate", str(model), "--predictions", str(members[0] / OOF_FILE), "--partial"]) == 2
    assert "--partial applies to --crossval only" in capsys.readouterr().err

    # --last-epoch: fitted on the fold networks' last epochs (a model trained on every record keeps its last)
    _, _, last_truth, last, _ = read_oof(members[0] / LAST_OOF_FILE)
    assert last_truth == truth and not np.allclose(last, probs, atol=1e-4), "the tiny networks' kept epoch is the first of two"
    assert main(["calibrate", str(model), "--crossval", str(members[0]), "--last-epoch", "--per-predicted-class"]) == 0
    expected = fit_temperature(last, np.array([classes.index(t) for t in truth]), per_predicted_class=True)
    np.testing.assert_allclose(RhythmClassifier.load(model).temperature_, expected, rtol=1e-6)
    assert main(["calibrate", str(model), "--crossval", str(half), "--last-epoch"]) == 2
    assert "fold(s) [1] have no oof-last.csv" in capsys.readouterr().err
    assert main(["calibrate", str(model), "--predictions", str(members[0] / OOF_FILE), "--last-epoch"]) == 2
    assert "--last-epoch applies to --crossval only" in capsys.readouterr().err


def test_runs_kept_by_reports_average_into_the_same_estimate_without_networks(members, ensemble, tmp_path):
    from ecgrhythm.networks.saving import CHECKSUM_FILE

    kept = [write_report(m, tmp_path / "results" / m.name)["run"] for m in members]
    assert not list(kept[0].rglob(CHECKSUM_FILE)), "a kept run holds no network"
    for kind, runs in (("kept", kept), ("mixed", [members[0], kept[1]])):
        out = tmp_path / kind
        result = average_crossvals(runs, out)
        assert result.finished == result.trained == [0, 1] and result.oof_path == out / OOF_FILE
        for name in (OOF_FILE, LAST_OOF_FILE):
            assert (out / name).read_text() == (ensemble / name).read_text()
        assert not list(out.rglob(CHECKSUM_FILE)), "without every member's network a fold holds the probabilities only"
        report, expected = summarise(out), summarise(ensemble)
        assert [f["score"] for f in report["folds"]] == [f["score"] for f in expected["folds"]]
        assert report["last_epoch_prior_mean"] == expected["last_epoch_prior_mean"] and report["temperature"] == expected["temperature"]
        assert all(f["best_epoch"] is None for f in report["folds"])
