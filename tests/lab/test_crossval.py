"""Cross-validation on real CinC 2017 records: folds, resumable fold trainings, out-of-fold probabilities, reports."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import shutil

import numpy as np
import pytest
from conftest import TINY_CLI, TINY_MODEL, TINY_PREPROCESS, TINY_TRAIN

from ecgrhythm.lab.candidates import write_candidates
from ecgrhythm.lab.crossval_report import summarise, write_report
from ecgrhythm.scoring.calibration import apply_class_prior, fit_temperature
from ecgrhythm.scoring.crossval import score_of, t_interval
from ecgrhythm.scoring.metrics import evaluate_predictions
from ecgrhythm.training.crossval import run_crossval
from ecgrhythm.training.data import load_labelled
from ecgrhythm.training.folds import FOLDS_FILE, fold_dir, make_folds, read_folds
from ecgrhythm.training.oof import LAST_OOF_FILE, OOF_FILE, finished_in_every, finished_oof, read_oof

LIMIT = 48  # first 48 records: N 28, A 6, O 11, ~ 3
FOLDS = 2
RECIPE = {"preprocess_config": TINY_PREPROCESS, "model_config": TINY_MODEL, "train_config": TINY_TRAIN, "limit": LIMIT, "n_folds": FOLDS}


class Stop(Exception):
    """Raised from `on_epoch` to interrupt a fold as a kill would."""


@pytest.fixture(scope="module")
def crossval_dir(tmp_path_factory, cinc2017_dir):
    """An uninterrupted 2-fold cross-validation of the tiny recipe on 48 records."""
    out = tmp_path_factory.mktemp("crossval") / "baseline"
    result = run_crossval(cinc2017_dir, out, **RECIPE)
    assert result.trained == [0, 1] and result.oof_path == out / OOF_FILE
    return out


def test_folds_are_stratified_disjoint_covering_and_fixed_by_the_seed(cinc2017_dir):
    data = load_labelled(cinc2017_dir, TINY_PREPROCESS, limit=300)
    folds = make_folds(data, 5, seed=3)
    names = [n for fold in folds.folds for n in fold]
    assert sorted(names) == sorted(data.names) and len(set(names)) == len(names)  # covering and disjoint
    for c in data.classes:
        total = sum(folds.labels[n] == c for n in data.names)
        per_fold = [sum(folds.labels[n] == c for n in fold) for fold in folds.folds]
        assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == total, (c, per_fold)
    assert make_folds(data, 5, seed=3).folds == folds.folds
    assert make_folds(data, 5, seed=4).folds != folds.folds
    with pytest.raises(
        ValueError, match=r"Invalid argument `n_folds`: expected 2 to 10 \(records of the rarest class present\)\. Received: n_folds=11"
    ):
        make_folds(data, 11, seed=3)  # only 10 noise records


def test_every_record_gets_one_out_of_fold_probability_row(crossval_dir, cinc2017_dir):
    names, folds, truth, probs, classes = read_oof(crossval_dir / OOF_FILE)
    saved = read_folds(crossval_dir)
    assert sorted(names) == sorted(n for fold in saved.folds for n in fold) and len(names) == LIMIT
    assert all(names[i] in saved.folds[k] for i, k in enumerate(folds))
    assert [saved.labels[n] for n in names] == truth and classes == ["N", "A", "O", "~"]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    # each fold's rows are its own model's probabilities, the score its training chose the best epoch by
    for k in range(FOLDS):
        config = json.loads((fold_dir(crossval_dir, k) / "config.json").read_text())
        rows = folds == k
        report = evaluate_predictions(np.array(truth)[rows], [classes[i] for i in probs[rows].argmax(axis=1)], classes)
        assert report.score == pytest.approx(config["metadata"]["val_cinc_score"], abs=1e-6)
        assert config["metadata"]["n_val"] == rows.sum()


def _log(model_dir):
    with open(model_dir / "training_log.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_each_fold_also_gives_the_probabilities_of_its_last_epoch(crossval_dir):
    names, folds, truth, probs, classes = read_oof(crossval_dir / OOF_FILE)
    last_names, last_folds, last_truth, last, last_classes = read_oof(crossval_dir / LAST_OOF_FILE)
    assert (last_names, last_folds.tolist(), last_truth, last_classes) == (names, folds.tolist(), truth, classes)
    for k in range(FOLDS):
        rows = folds == k
        report = evaluate_predictions(np.array(truth)[rows], [classes[i] for i in last[rows].argmax(axis=1)], classes)
        log = _log(fold_dir(crossval_dir, k))
        assert score_of(report) == pytest.approx(float(log[-1]["val_cinc_score"]), abs=1e-6)  # the score the log shows at the last epoch
        kept_last = json.loads((fold_dir(crossval_dir, k) / "config.json").read_text())["metadata"]["best_epoch"] == int(log[-1]["epoch"])
        assert np.allclose(last[rows], probs[rows], atol=1e-6) == kept_last, "the last epoch's weights, not the kept ones"


def test_a_half_done_crossval_trains_only_what_is_missing_and_matches(crossval_dir, tmp_path, cinc2017_dir):
    out = tmp_path / "resumed"
    first = run_crossval(cinc2017_dir, out, only=[0], **RECIPE)
    assert first.trained == [0] and first.oof_path is None
    weights = fold_dir(out, 0) / "model.weights.h5"
    stamp = weights.stat().st_mtime_ns

    def stop(fold, row):
        raise Stop

    with pytest.raises(Stop):
        run_crossval(cinc2017_dir, out, on_epoch=stop, **RECIPE)  # fold 1 dies after its first epoch
    assert (fold_dir(out, 1) / "checkpoint").is_dir() and not (fold_dir(out, 1) / OOF_FILE).exists()
    epochs = []
    result = run_crossval(cinc2017_dir, out, on_epoch=lambda fold, row: epochs.append((fold, row["epoch"])), **RECIPE)
    assert result.trained == [1] and epochs == [(1, 2)]  # fold 0 untouched, fold 1 resumed at its second epoch
    assert weights.stat().st_mtime_ns == stamp
    assert (out / FOLDS_FILE).read_text() == (crossval_dir / FOLDS_FILE).read_text()
    np.testing.assert_allclose(read_oof(out / OOF_FILE)[3], read_oof(crossval_dir / OOF_FILE)[3], atol=1e-5)
    assert run_crossval(cinc2017_dir, out, **RECIPE).trained == []
    np.testing.assert_allclose(read_oof(out / LAST_OOF_FILE)[3], read_oof(crossval_dir / LAST_OOF_FILE)[3], atol=1e-5)
    # folds finished before the last epoch's probabilities were written get them on a rerun, without training
    expected = read_oof(fold_dir(out, 1) / LAST_OOF_FILE)[3]
    for path in (fold_dir(out, 1) / LAST_OOF_FILE, out / LAST_OOF_FILE):
        path.unlink()
    assert run_crossval(cinc2017_dir, out, **RECIPE).trained == [] and weights.stat().st_mtime_ns == stamp
    np.testing.assert_allclose(read_oof(fold_dir(out, 1) / LAST_OOF_FILE)[3], expected, atol=1e-6)
    assert (out / LAST_OOF_FILE).is_file()
    # a fold whose checkpoint is another run's, or gone, gets none, and the rest goes on: the report leaves out the
    # prior-corrected last epoch (not the log's) and says how to get it
    state = fold_dir(out, 1) / "checkpoint" / "state.npz"
    for broken in ("another run's", "gone"):
        if broken == "gone":
            shutil.rmtree(fold_dir(out, 1) / "checkpoint")
        else:
            shutil.copy(fold_dir(out, 0) / "checkpoint" / "state.npz", state)
        (fold_dir(out, 1) / LAST_OOF_FILE).unlink(missing_ok=True)
        (out / OOF_FILE).unlink()
        result = run_crossval(cinc2017_dir, out, **RECIPE)
        assert result.trained == [] and result.oof_path == out / OOF_FILE and (out / OOF_FILE).is_file(), broken
        assert not (fold_dir(out, 1) / LAST_OOF_FILE).exists(), broken
        assert not (out / LAST_OOF_FILE).exists(), f"{broken}: no pooled last-epoch file holds fold 1's old rows"
        report = summarise(out)
        assert report["last_epoch_prior_mean"] is None and all(f["last_epoch_score"] is not None for f in report["folds"])
    with pytest.raises(FileNotFoundError, match=r"fold\(s\) \[1\] are finished but have no oof-last.csv"):
        finished_oof(out, False, LAST_OOF_FILE)
    # a fold put aside to be trained again leaves no pooled file holding its old rows
    (fold_dir(out, 1) / OOF_FILE).rename(tmp_path / "fold1-oof.csv")
    assert run_crossval(cinc2017_dir, out, only=[0], **RECIPE).oof_path is None and not (out / OOF_FILE).exists()
    with pytest.raises(ValueError, match="other settings"):
        run_crossval(cinc2017_dir, out, **{**RECIPE, "train_config": dataclasses.replace(TINY_TRAIN, epochs=3)})


def test_report_gives_fold_scores_their_interval_and_the_pooled_matrix(crossval_dir, tmp_path):
    paths = write_report(crossval_dir, tmp_path / "baseline", command="ecgrhythm crossval ...")
    report = json.loads(paths["json"].read_text())
    scores = [f["score"] for f in report["folds"]]
    assert len(scores) == FOLDS and report["mean"] == pytest.approx(np.mean(scores))
    assert report["ci95"] == pytest.approx(12.706 * np.std(scores, ddof=1) / np.sqrt(FOLDS), rel=1e-3)  # t(0.975, 1 df)
    assert np.sum(report["pooled"]["confusion"]) == LIMIT and report["records"] == LIMIT
    assert 0 <= report["pooled"]["ece"] <= 1 and report["temperature"]["value"] > 0
    assert "| pooled |" in paths["markdown"].read_text()
    # a second recipe on the same folds is paired with the reference in the candidates table
    shutil.copytree(tmp_path / "baseline", tmp_path / "same")
    other = json.loads((tmp_path / "same" / "report.json").read_text())
    other["name"] = "same"
    other["folds"] = [
        {**f, "score": f["score"] + 0.01 * (i + 1), "last_epoch_prior_score": f["last_epoch_prior_score"] - 0.02 * (i + 1)}
        for i, f in enumerate(other["folds"])
    ]
    (tmp_path / "same" / "report.json").write_text(json.dumps(other))
    table = write_candidates(tmp_path, reference="baseline")
    rows = {r["recipe"]: r for r in csv.DictReader(table["csv"].open())}
    assert set(rows) == {"baseline", "same"} and rows["baseline"]["difference"] == ""
    assert float(rows["same"]["difference"]) == pytest.approx(0.015, abs=1e-4) and rows["same"]["p_value"] != ""
    assert float(rows["same"]["prior_difference"]) == pytest.approx(-0.03, abs=1e-4) and rows["same"]["prior_paired_folds"] == "2"
    assert rows["baseline"]["last_epoch_prior_mean"] != "" and rows["baseline"]["prior_difference"] == ""
    assert "| same | 2 |" in table["markdown"].read_text()


def test_report_gives_each_folds_last_epoch_score_and_kept_epoch(crossval_dir, tmp_path):
    paths = write_report(crossval_dir, tmp_path / "baseline")
    report = json.loads(paths["json"].read_text())
    for f in report["folds"]:
        with open(fold_dir(crossval_dir, f["fold"]) / "training_log.csv", newline="") as log_file:
            log = list(csv.DictReader(log_file))
        meta = json.loads((fold_dir(crossval_dir, f["fold"]) / "config.json").read_text())["metadata"]
        assert f["last_epoch"] == int(log[-1]["epoch"]) == meta["epochs_run"]
        assert f["last_epoch_score"] == pytest.approx(float(log[-1]["val_cinc_score"]))
        assert f["best_epoch"] == meta["best_epoch"]
        kept = next(row for row in log if int(row["epoch"]) == f["best_epoch"])
        assert f["score"] == pytest.approx(float(kept["val_cinc_score"]), abs=1e-5)  # the out-of-fold score is the kept epoch's
    last = [f["last_epoch_score"] for f in report["folds"]]
    assert (report["last_epoch_mean"], report["last_epoch_ci95"]) == pytest.approx(t_interval(last))
    assert report["folds_total"] == FOLDS
    text = paths["markdown"].read_text()
    assert f"| {last[0]:.4f} (epoch {report['folds'][0]['last_epoch']}) |" in text and "slightly optimistic" in text
    # with the prior correction: each fold's last-epoch probabilities times the other fold's class frequencies
    _, folds, truth, probs, classes = read_oof(crossval_dir / LAST_OOF_FILE)
    for f in report["folds"]:
        rows = folds == f["fold"]
        other = [t for t, own in zip(truth, rows) if not own]
        corrected = apply_class_prior(probs[rows], [other.count(c) / len(other) for c in classes])
        expected = evaluate_predictions(np.array(truth)[rows], [classes[i] for i in corrected.argmax(axis=1)], classes)
        assert f["last_epoch_prior_score"] == pytest.approx(score_of(expected))
    prior = [f["last_epoch_prior_score"] for f in report["folds"]]
    assert (report["last_epoch_prior_mean"], report["last_epoch_prior_ci95"]) == pytest.approx(t_interval(prior))
    assert 0 <= report["last_epoch_ece"] <= 1 and 0 <= report["last_epoch_calibrated_ece"] <= 1
    first = report["folds"][0]
    assert f"| {first['last_epoch_score']:.4f} (epoch {first['last_epoch']}) | {prior[0]:.4f} |" in text
    assert "At the last epoch with the prior correction" in text


def _partial_copy(crossval_dir, out, folds):
    """A cross-validation folder holding the recipe, the folds and only the finished folds `folds` of `crossval_dir`."""
    out.mkdir(parents=True)
    for name in (FOLDS_FILE, "crossval.json"):
        shutil.copy(crossval_dir / name, out / name)
    for k in folds:
        shutil.copytree(fold_dir(crossval_dir, k), fold_dir(out, k))
    return out


def test_the_folds_finished_in_every_member_of_the_same_folds(crossval_dir, tmp_path):
    half = _partial_copy(crossval_dir, tmp_path / "half", [1])
    folds, finished = finished_in_every([crossval_dir, half])
    assert folds.digest == read_folds(crossval_dir).digest and finished == [1]
    with pytest.raises(ValueError, match="no fold is finished in every one"):
        finished_in_every([crossval_dir, _partial_copy(crossval_dir, tmp_path / "none", [])])
    other = _partial_copy(crossval_dir, tmp_path / "other", [0, 1])
    raw = json.loads((other / FOLDS_FILE).read_text())
    raw["folds"][0][0], raw["folds"][1][0] = raw["folds"][1][0], raw["folds"][0][0]  # one record in each fold swapped
    (other / FOLDS_FILE).write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="other folds than"):
        finished_in_every([crossval_dir, other])


def test_a_partial_report_covers_the_finished_folds_and_the_table_shows_it(crossval_dir, tmp_path):
    full = summarise(crossval_dir)
    partial = _partial_copy(crossval_dir, tmp_path / "cv" / "half", [0])
    # the tiny network may score 0 at every epoch: give the copy's last logged epoch its own score to follow
    log_path = fold_dir(partial, 0) / "training_log.csv"
    log = list(csv.DictReader(log_path.open(newline="")))
    log[-1]["val_cinc_score"] = str(float(log[-1]["val_cinc_score"]) + 0.125)
    with log_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(log[0]))
        writer.writeheader()
        writer.writerows(log)
    with pytest.raises(FileNotFoundError, match="unfinished"):
        summarise(partial)  # without partial=True an unfinished folder is still refused
    results = tmp_path / "results"
    paths = write_report(partial, results / "half", partial=True)
    report = json.loads(paths["json"].read_text())
    assert report["folds_total"] == FOLDS and [f["fold"] for f in report["folds"]] == [0]
    # one fold has no other fold's frequencies to correct it by: no prior-corrected score
    assert report["folds"][0] == {
        **full["folds"][0],
        "last_epoch_score": full["folds"][0]["last_epoch_score"] + 0.125,
        "last_epoch_prior_score": None,
    }
    assert report["last_epoch_prior_mean"] is None and full["last_epoch_prior_mean"] is not None
    assert report["last_epoch_mean"] == report["folds"][0]["last_epoch_score"] and report["records"] == full["folds"][0]["records"]
    assert np.sum(report["pooled"]["confusion"]) == full["folds"][0]["records"]
    assert not (partial / OOF_FILE).exists(), "the pooled oof.csv means every fold is finished"
    assert "1 of 2 folds" in paths["markdown"].read_text().splitlines()[0]
    with pytest.raises(FileNotFoundError, match="no fold is finished"):
        summarise(_partial_copy(crossval_dir, tmp_path / "cv" / "none", []), partial=True)

    # the candidates table pairs the partial recipe on its finished fold and shows it as 1 of 2
    write_report(crossval_dir, results / "baseline")
    table = write_candidates(results, reference="baseline")
    rows = {r["recipe"]: r for r in csv.DictReader(table["csv"].open())}
    assert rows["half"]["folds"] == "1" and rows["half"]["folds_total"] == "2" and rows["half"]["paired_folds"] == "1"
    assert float(rows["half"]["difference"]) == pytest.approx(0.0, abs=1e-4)
    assert float(rows["baseline"]["last_epoch_mean"]) == pytest.approx(full["last_epoch_mean"], abs=1e-4)
    assert float(rows["half"]["last_epoch_mean"]) == pytest.approx(report["last_epoch_mean"], abs=1e-4)
    text = table["markdown"].read_text()
    assert "| half | 1 of 2 |" in text and "| baseline | 2 |" in text and "(1 fold)" in text


def test_the_report_keeps_the_run_without_networks_and_a_lost_folder_goes_on_from_it(crossval_dir, tmp_path, cinc2017_dir):
    half = _partial_copy(crossval_dir, tmp_path / "cv" / "baseline", [0])
    report_dir = tmp_path / "results" / "baseline"
    kept = write_report(half, report_dir, partial=True)["run"]
    fold0 = ["fold0/config.json", "fold0/training_log.csv", f"fold0/{OOF_FILE}", f"fold0/{LAST_OOF_FILE}"]
    assert sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file()) == sorted(["crossval.json", FOLDS_FILE, *fold0])
    for name in ["crossval.json", FOLDS_FILE, *fold0]:
        assert (kept / name).read_bytes() == (half / name).read_bytes(), name
    # the report made again from the kept files is the same
    again = write_report(kept, tmp_path / "again" / "baseline", name="baseline", partial=True)
    assert again["json"].read_text() == (report_dir / "report.json").read_text()

    # the run folder is lost: the kept files copied back, a rerun trains only the unfinished fold, as the uninterrupted run did
    shutil.rmtree(half)
    restored = shutil.copytree(kept, tmp_path / "cv" / "restored")
    assert run_crossval(cinc2017_dir, restored, **RECIPE).trained == [1]
    for name in (OOF_FILE, LAST_OOF_FILE):
        np.testing.assert_allclose(read_oof(restored / name)[3], read_oof(crossval_dir / name)[3], atol=1e-5)
    # its report keeps the new fold beside the kept one
    write_report(restored, report_dir)
    assert (kept / "fold1" / LAST_OOF_FILE).is_file() and json.loads((report_dir / "report.json").read_text())["folds_total"] == 2
    assert not list(kept.rglob("*.h5")) and not (kept / "fold1" / "checkpoint").exists()

    # another recipe under the same name is refused before anything is written
    other = _partial_copy(crossval_dir, tmp_path / "cv" / "other", [0])
    recipe = json.loads((other / "crossval.json").read_text())
    recipe["fold_seed"] = 7
    (other / "crossval.json").write_text(json.dumps(recipe))
    before = {p: p.read_bytes() for p in report_dir.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="another recipe or other folds"):
        write_report(other, report_dir, partial=True)
    assert {p: p.read_bytes() for p in report_dir.rglob("*") if p.is_file()} == before


def test_candidates_table_reads_reports_written_before_the_last_epoch_score(crossval_dir, tmp_path):
    write_report(crossval_dir, tmp_path / "baseline")
    old = json.loads((tmp_path / "baseline" / "report.json").read_text())
    for key in ("folds_total", "last_epoch_mean", "last_epoch_ci95", "last_epoch_prior_mean", "last_epoch_prior_ci95"):
        del old[key]
    del old["temperature"]["per_predicted_class"]
    dropped = ("best_epoch", "last_epoch", "last_epoch_score", "last_epoch_prior_score")
    old["folds"] = [{k: v for k, v in f.items() if k not in dropped} for f in old["folds"]]
    old["name"] = "old"
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(json.dumps(old))
    table = write_candidates(tmp_path, reference="baseline")
    rows = {r["recipe"]: r for r in csv.DictReader(table["csv"].open())}
    assert rows["old"]["last_epoch_mean"] == "" and rows["old"]["folds_total"] == str(FOLDS) and rows["old"]["paired_folds"] == str(FOLDS)
    assert rows["old"]["last_epoch_prior_mean"] == "" and rows["old"]["prior_difference"] == ""
    assert rows["baseline"]["last_epoch_mean"] != ""
    assert f"| old | 2 | {old['mean']:.4f} ± {old['ci95']:.4f} |  |" in table["markdown"].read_text()
    # as the reference, such a report is one in the scores' column only: it has no prior-corrected scores to pair with
    lines = write_candidates(tmp_path, reference="old")["markdown"].read_text().splitlines()
    old_row, baseline_row = (next(line for line in lines if line.startswith(f"| {name} |")) for name in ("old", "baseline"))
    assert old_row.endswith("| reference |  |  |  |") and baseline_row.endswith("|  |  |")


def test_t_interval_half_width():
    mean, half = t_interval([0.80, 0.82, 0.84, 0.86, 0.88])
    assert mean == pytest.approx(0.84) and half == pytest.approx(2.776 * np.std([0.80, 0.82, 0.84, 0.86, 0.88], ddof=1) / np.sqrt(5), rel=1e-3)


def test_summary_refuses_an_unfinished_crossval(tmp_path, cinc2017_dir):
    run_crossval(cinc2017_dir, tmp_path / "cv", folds_only=True, **RECIPE)
    assert len(read_folds(tmp_path / "cv").folds) == FOLDS and not fold_dir(tmp_path / "cv", 0).exists()
    with pytest.raises(FileNotFoundError, match=r"fold\(s\) \[0, 1\] have no oof.csv: the cross-validation is unfinished; .*\(`partial=True`\)"):
        summarise(tmp_path / "cv")
    with pytest.raises(
        FileNotFoundError, match=r"no fold is finished \(no fold\*/oof.csv\); run at least one fold of the cross-validation \(`only`\)"
    ):
        summarise(tmp_path / "cv", partial=True)
    with pytest.raises(ValueError, match=r"Invalid argument `only` \(the folds to run\): expected fold numbers 0 to 1\. Received: only=\[2\]"):
        run_crossval(cinc2017_dir, tmp_path / "other", only=[2], **RECIPE)
    assert not (tmp_path / "other").exists()
    with pytest.raises(FileNotFoundError, match=r"other.folds.json not found: .*other is not a cross-validation folder"):
        read_folds(tmp_path / "other")


def _reject_nan(constant):
    raise AssertionError(f"report.json holds {constant}, which is not standard JSON")


def test_crossval_calibrate_and_ensemble_commands(tmp_path, cinc2017_dir, capsys):
    from ecgrhythm.cli import main
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.networks.split import load_split

    out, results = tmp_path / "tiny-recipe", tmp_path / "results"
    recipe = [
        "--data",
        str(cinc2017_dir),
        "--output",
        str(out),
        "--folds",
        "2",
        "--limit",
        str(LIMIT),
        *TINY_CLI,
        "--epochs",
        "1",
        "--results",
        str(results),
        "--quiet",
    ]
    assert main(["crossval", *recipe, "--folds-only"]) == 0
    shown = capsys.readouterr().out
    assert "fold 0: 24 records (N 14, A 3, O " in shown and "fold 1: 24 records (N 14, A 3, O " in shown and (out / FOLDS_FILE).is_file()
    assert main(["crossval", *recipe, "--fold", "1"]) == 0
    assert "still to run: [0]" in capsys.readouterr().out and not (results / "tiny-recipe").exists()
    assert main(["crossval", *recipe, "--fold", "1", "--partial-report"]) == 0  # fold 1 finished: nothing to train
    assert "partial report (1 of 2 folds)" in capsys.readouterr().out and not (out / OOF_FILE).exists()
    one_fold = json.loads((results / "tiny-recipe" / "report.json").read_text(), parse_constant=_reject_nan)
    assert [f["fold"] for f in one_fold["folds"]] == [1] and one_fold["ci95"] is None  # strict JSON: no interval is null
    assert "| tiny-recipe | 1 of 2 | " in (results / "candidates.md").read_text()
    assert "(one fold: no interval)" in (results / "candidates.md").read_text()
    assert main(["crossval", *recipe, "--fold", "0"]) == 0
    assert "cross-validation finished" in capsys.readouterr().out
    report = json.loads((results / "tiny-recipe" / "report.json").read_text())
    assert len(report["folds"]) == 2 and "--fold 0" not in report["command"]
    assert (results / "candidates.md").is_file() and "| tiny-recipe | 2 |" in (results / "candidates.md").read_text()
    assert main(["crossval", *recipe, "--epochs", "2"]) == 2
    assert "other settings (train differ)" in capsys.readouterr().err

    model = tmp_path / "model"
    shutil.copytree(fold_dir(out, 0), model)
    assert main(["calibrate", str(model), "--crossval", str(out)]) == 0
    assert "temperature" in capsys.readouterr().out
    assert RhythmClassifier.load(model).temperature_ == pytest.approx(report["temperature"]["value"])
    assert main(["calibrate", str(model), "--crossval", str(out), "--per-predicted-class"]) == 0
    shown = capsys.readouterr().out
    assert "temperature (by predicted class)" in shown and "cross-fitted" in shown
    calibrated = RhythmClassifier.load(model)
    assert calibrated.temperature_by_ == "predicted_class"
    assert calibrated.temperature_ == pytest.approx(report["temperature"]["per_predicted_class"]["value"])
    assert "One temperature per predicted class" in (results / "tiny-recipe" / "report.md").read_text()
    assert main(["calibrate", str(model), "--crossval", str(out), "--per-predicted-class", "--prior-correction"]) == 0
    shown = capsys.readouterr().out
    assert "before -> after the prior correction" in shown and "class prior [" in shown
    labels = list(read_folds(out).labels.values())
    frequencies = [labels.count(c) / len(labels) for c in ["N", "A", "O", "~"]]
    assert RhythmClassifier.load(model).class_prior_ == pytest.approx(frequencies)
    _, _, truth, probs, classes = read_oof(out / OOF_FILE)  # the temperatures are fitted on the corrected probabilities
    targets = np.array([classes.index(t) for t in truth])
    fitted = fit_temperature(apply_class_prior(probs, frequencies), targets, per_predicted_class=True)
    assert RhythmClassifier.load(model).temperature_ == pytest.approx(fitted.tolist())
    config = json.loads((model / "config.json").read_text())
    config["metadata"]["train_config"]["class_weighting"] = "none"  # a network that learnt the prior itself
    (model / "config.json").write_text(json.dumps(config))
    sums = json.loads((model / "checksums.json").read_text())
    (model / "checksums.json").write_text(json.dumps({**sums, "config.json": hashlib.sha256((model / "config.json").read_bytes()).hexdigest()}))
    assert main(["calibrate", str(model), "--crossval", str(out), "--prior-correction"]) == 2
    assert "balanced class weights" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["calibrate", str(model), "--crossval", str(out), "--per-class", "--per-predicted-class"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert main(["ensemble", str(fold_dir(out, 0)), str(fold_dir(out, 1)), "--output", str(tmp_path / "ensemble")]) == 0
    assert len(RhythmClassifier.load(tmp_path / "ensemble").networks_) == 2
    split = load_split(tmp_path / "ensemble")  # every record trained some member: none is held out
    assert sorted(split["train"]) == sorted(read_folds(out).labels) and split["val"] == []


def test_a_fixed_length_is_part_of_the_crossval_recipe(tmp_path, cinc2017_dir, capsys):
    from ecgrhythm.cli import main

    out = tmp_path / "fixed"
    recipe = ["--data", str(cinc2017_dir), "--output", str(out), "--folds", "2", "--limit", str(LIMIT), "--fs", "100", "--quiet", "--folds-only"]
    assert main(["crossval", *recipe, "--fixed-length", "30"]) == 0
    assert json.loads((out / "crossval.json").read_text())["preprocess"]["fixed_length_s"] == 30
    assert main(["crossval", *recipe, "--fixed-length", "30"]) == 0
    capsys.readouterr()
    for other in (["--fixed-length", "20"], []):
        assert main(["crossval", *recipe, *other]) == 2
        assert "other settings (preprocess differ)" in capsys.readouterr().err
    whole = tmp_path / "whole"
    run_crossval(cinc2017_dir, whole, folds_only=True, **RECIPE)
    assert "fixed_length_s" not in json.loads((whole / "crossval.json").read_text())["preprocess"], "recipes without one are written as before"


def test_a_teacher_is_part_of_the_crossval_recipe(tmp_path, cinc2017_dir, capsys):
    from pathlib import Path

    from ecgrhythm.cli import main
    from ecgrhythm.training.teacher import read_teacher

    teacher = Path(__file__).resolve().parents[2] / "docs" / "results" / "crossval" / "seed1-lstm128" / "run"
    out = tmp_path / "taught"
    recipe = ["--data", str(cinc2017_dir), "--output", str(out), "--folds", "2", "--limit", str(LIMIT), "--fs", "100", "--quiet", "--folds-only"]
    taught = [*recipe, "--teacher", str(teacher), "--teacher-weight", "0.4"]
    assert main(["crossval", *taught]) == 0 and main(["crossval", *taught]) == 0
    assert json.loads((out / "crossval.json").read_text())["teacher"] == read_teacher([teacher], 0.4).settings()
    capsys.readouterr()
    for other in (["--teacher", str(teacher), "--teacher-weight", "0.5"], []):
        assert main(["crossval", *recipe, *other]) == 2
        assert "other settings (teacher differ)" in capsys.readouterr().err
    unweighted = [*recipe, "--class-weighting", "none", "--teacher", str(teacher)]
    unweighted[unweighted.index(str(out))] = str(tmp_path / "unweighted")
    assert main(["crossval", *unweighted]) == 2
    assert "trained with class_weighting 'balanced', the student with 'none'" in capsys.readouterr().err
    assert not (tmp_path / "unweighted").exists(), "a teacher that cannot teach is refused before the folder is claimed"


def test_a_students_report_and_row_say_it_was_taught(crossval_dir, tmp_path):
    student = tmp_path / "student"
    shutil.copytree(crossval_dir, student)
    recipe = json.loads((student / "crossval.json").read_text())
    (student / "crossval.json").write_text(json.dumps({**recipe, "teacher": {"weight": 0.5, "records": 48, "sha256": "0" * 64}}))
    write_report(crossval_dir, tmp_path / "results" / "baseline")
    write_report(student, tmp_path / "results" / "student")
    assert "A student: each training target is 0.5 its label and 0.5 a teacher's" in (tmp_path / "results" / "student" / "report.md").read_text()
    assert "A student" not in (tmp_path / "results" / "baseline" / "report.md").read_text()
    table = write_candidates(tmp_path / "results", reference="baseline")
    rows = {r["recipe"]: r for r in csv.DictReader(table["csv"].open())}
    assert rows["student"]["taught"] == "yes" and rows["baseline"]["taught"] == ""
    text = table["markdown"].read_text()
    assert "| student † | 2 |" in text and "| baseline | 2 |" in text and "† A student: trained on a teacher's" in text
