"""Reports of cross-validations: one recipe's folds, and the table that compares the recipes.

:func:`summarise` scores a finished cross-validation folder (see :mod:`ecgrhythm.training.crossval`)
from its out-of-fold probabilities: the score of each fold, their mean with a 95 % t-interval,
the pooled per-class F1 and confusion matrix, the pooled top-class ECE, and the temperature
fitted on the out-of-fold probabilities with the ECE it gives. Each fold's score is that of the
epoch its training kept, chosen on the fold itself; the report adds the score its training log
shows at the last trained epoch, the estimate for a model trained that long without selection, and
that score after the prior correction, the estimate for such a model calibrated as the shipped one.
With `partial=True` it reports the folds finished so far ("k of n folds"). :func:`write_report` writes
that as `report.json` and `report.md` (by default under `docs/results/crossval/<name>/`), with the
folder it reports on, less its networks, in `run/` beside them; :func:`ecgrhythm.lab.candidates.write_candidates`
compares the recipes of every recorded report.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ecgrhythm.lab.crossval_ensemble import ENSEMBLE_KEY
from ecgrhythm.networks.saving import CONFIG_FILE
from ecgrhythm.scoring.calibration import MIN_PREDICTED_ROWS, apply_temperature, fit_temperature, top_class_calibration
from ecgrhythm.scoring.crossval import cross_fitted_ece, fold_reports, prior_correction_scores, score_of, t_interval
from ecgrhythm.scoring.metrics import evaluate_predictions
from ecgrhythm.training.crossval import RECIPE_FILE, keep_run
from ecgrhythm.training.folds import fold_dir, read_folds
from ecgrhythm.training.oof import LAST_OOF_FILE, finished_oof
from ecgrhythm.utils.io import atomic_write_text

__all__ = [
    "summarise",
    "write_report",
    "interval_text",
    "DEFAULT_RESULTS",
    "REPORT_FILE",
]

DEFAULT_RESULTS = Path("docs") / "results" / "crossval"
REPORT_FILE = "report.json"
KEPT_RUN = "run"  # the cross-validation folder without its networks, beside its report


def _temperature_summary(probs, targets, folds, *, per_predicted_class: bool = False) -> dict:
    """`value` (the temperature fitted on every row: a number, or one per predicted class), `ece_after` (in-sample)
    and `ece_cross_fitted` (NaN with one fold: no other fold to fit on)."""
    temperature = fit_temperature(probs, targets, per_predicted_class=per_predicted_class)
    return {
        "value": temperature.tolist(),
        "ece_after": top_class_calibration(apply_temperature(probs, temperature, per_predicted_class=per_predicted_class), targets).ece,
        "ece_cross_fitted": cross_fitted_ece(probs, targets, folds, per_predicted_class=per_predicted_class),
    }


def _last_epoch(output: Path, folds: list[int]) -> dict | None:
    """Scores of the last-epoch out-of-fold probabilities (`oof-last.csv`) of the finished `folds`, or `None` where a
    finished fold has none (written before them, or an ensemble of cross-validations without them): each fold's score
    as they are and after the prior correction (:func:`prior_correction_scores`; `None` with one fold, which has no
    other fold to take the frequencies from), the top-class ECE as they are and after the shipped calibration (the
    prior correction and one temperature per predicted class, cross-fitted; NaN with one fold)."""
    if not all((fold_dir(output, k) / LAST_OOF_FILE).is_file() for k in folds):
        return None
    _, fold_of, truth, probs, classes = finished_oof(output, True, LAST_OOF_FILE)
    rows = np.isin(fold_of, folds)  # the finished folds' (a fold whose oof.csv was removed is not finished)
    fold_of, truth, probs = fold_of[rows], [t for t, r in zip(truth, rows) if r], probs[rows]
    targets = np.array([classes.index(t) for t in truth])
    before, after = prior_correction_scores(probs, targets, fold_of, classes)
    return {
        "scores": before,
        "prior_scores": after if len(folds) > 1 else [None] * len(folds),
        "ece": top_class_calibration(probs, targets).ece,
        "calibrated_ece": cross_fitted_ece(probs, targets, fold_of, per_predicted_class=True, class_prior=True),
    }


def _epochs(model_dir: Path, ensemble: bool) -> dict:
    """The kept (best) epoch of a fold's training, its last epoch and the validation score the log shows at the last one;
    `None` each for the fold of an `ensemble` (:mod:`ecgrhythm.lab.crossval_ensemble`), whose networks have a training log each."""
    from ecgrhythm.training.history import read_log, score_column

    if ensemble:
        return {"best_epoch": None, "last_epoch": None, "last_epoch_score": None}
    column = score_column(multilabel=False)  # cross-validation folds hold one label per record
    try:
        metadata = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8"))["metadata"]
        log = read_log(model_dir)
        return {"best_epoch": int(metadata["best_epoch"]), "last_epoch": int(log[-1]["epoch"]), "last_epoch_score": float(log[-1][column])}
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"{model_dir}: not a finished fold (its {CONFIG_FILE} or training log: {exc!r}); rerun 'ecgrhythm crossval'") from None


def summarise(output, name: str | None = None, *, partial: bool = False) -> dict:
    """The report of a finished cross-validation folder (every fold's `oof.csv` written), named `name`
    (default: the folder's name), or with `partial` of the folds finished so far.

    Each fold's score is that of the epoch its training kept, chosen on the fold itself (slightly optimistic);
    its score at the last trained epoch, read from its training log, is the estimate for a model trained that
    many epochs and kept at the last (`ecgrhythm train --val-fraction 0`). Where every finished fold has its
    last epoch's probabilities (`oof-last.csv`), the report adds their score after the prior correction (each
    fold's probabilities multiplied by the other folds' class frequencies): the estimate for such a model
    calibrated by `ecgrhythm calibrate --prior-correction`, as the shipped model is.

    Args:
        output: the cross-validation folder.
        name: the recipe's name.
        partial: report the finished folds (their `foldK/oof.csv` pooled, the folder's `oof.csv` left alone)
            when others are unfinished.

    Returns:
        JSON-serialisable data: `folds` (records, score, F1 per class, kept and last epoch, the score at the
        last and, with `oof-last.csv`, `last_epoch_prior_score`), `folds_total` (the folder's folds, finished or
        not), `mean`, `ci95` (half-width), `last_epoch_mean`, `last_epoch_ci95`, `last_epoch_prior_mean`,
        `last_epoch_prior_ci95`, `last_epoch_ece` (top-class ECE of the last epochs' probabilities) and
        `last_epoch_calibrated_ece` (after the prior correction and one temperature per predicted class, both
        fitted on the other folds; NaN with one fold), all `None` without `oof-last.csv`, `pooled` (score, F1
        per class, confusion matrix, ECE),
        `temperature` (fitted on all out-of-fold probabilities, with the ECE after it and the cross-fitted
        ECE, NaN with one fold; its `per_predicted_class` holds the same for one temperature per predicted
        class, in the order of `pooled.classes`), the recipe and the folds' digest. The folds of an ensemble of cross-validations
        (:mod:`ecgrhythm.lab.crossval_ensemble`) have no single training log: their epochs are `None`, and their
        last-epoch scores are those of the members' last epochs averaged (`oof-last.csv`), else `None`.

    Raises:
        FileNotFoundError: some fold is unfinished (has no `oof.csv`), or with `partial` no fold is finished.
        ValueError: a finished fold's folder lacks its training log or metadata.
    """
    output = Path(output)
    names, folds, truth, probs, classes = finished_oof(output, partial)
    targets = np.array([classes.index(t) for t in truth])
    predicted = [classes[i] for i in probs.argmax(axis=1)]
    recipe = json.loads((output / RECIPE_FILE).read_text(encoding="utf-8"))
    per_fold = [
        {"fold": k, "records": report.n_records, "score": score_of(report), "f1": report.f1, **_epochs(fold_dir(output, k), ENSEMBLE_KEY in recipe)}
        for k, report in fold_reports(probs, targets, folds, classes)
    ]
    mean, half = t_interval([f["score"] for f in per_fold])
    pooled = evaluate_predictions(truth, predicted, classes, probabilities=probs)
    saved = read_folds(output)
    return {
        "name": name or output.resolve().name,
        "score_name": "CinC 2017 score (mean F1 of N, A, O)" if pooled.score is not None else "macro F1",
        "records": len(names),
        "folds": per_fold,
        "folds_total": len(saved.folds),
        "mean": mean,
        "ci95": half,
        **_last_epoch_summary(output, per_fold),
        "pooled": {
            "score": score_of(pooled),
            "f1": pooled.f1,
            "classes": classes,
            "confusion": pooled.confusion.tolist(),
            "ece": pooled.ece,
        },
        "temperature": {
            **_temperature_summary(probs, targets, folds),
            "per_predicted_class": _temperature_summary(probs, targets, folds, per_predicted_class=True),
        },
        "folds_digest": saved.digest,
        "recipe": recipe,
    }


def _last_epoch_summary(output: Path, per_fold: list[dict]) -> dict:
    """The report's `last_epoch_*` entries; adds each fold's `last_epoch_prior_score` (and, for an ensemble's folds,
    `last_epoch_score`) to `per_fold` where every finished fold has its `oof-last.csv`."""
    last_epoch = _last_epoch(output, [f["fold"] for f in per_fold])
    if last_epoch is not None:
        for f, score, prior_score in zip(per_fold, last_epoch["scores"], last_epoch["prior_scores"]):
            if f["last_epoch_score"] is None:  # an ensemble's folds: no training log, their members' last epochs averaged
                f["last_epoch_score"] = score
            f["last_epoch_prior_score"] = prior_score
    last = [f["last_epoch_score"] for f in per_fold]
    last_mean, last_half = t_interval(last) if None not in last else (None, None)  # an ensemble without oof-last.csv
    prior = None if last_epoch is None else last_epoch["prior_scores"]
    prior_mean, prior_half = t_interval(prior) if prior is not None and None not in prior else (None, None)
    return {
        "last_epoch_mean": last_mean,
        "last_epoch_ci95": last_half,
        "last_epoch_prior_mean": prior_mean,
        "last_epoch_prior_ci95": prior_half,
        "last_epoch_ece": None if last_epoch is None else last_epoch["ece"],
        "last_epoch_calibrated_ece": None if last_epoch is None else last_epoch["calibrated_ece"],
    }


def interval_text(mean: float, half: float | None) -> str:
    """`mean ± half` for Markdown; one fold has no interval (NaN in memory, null in `report.json`)."""
    return f"{mean:.4f} (one fold: no interval)" if half is None or math.isnan(half) else f"{mean:.4f} ± {half:.4f}"


def _strict_json(value):
    """`value` with every NaN float replaced by None, so that `json.dumps` writes standard JSON (null)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    return value


def _epochs_paragraph(summary: dict) -> str:
    """The report's words on the kept and the last epochs: those of one network per fold, or of an ensemble's."""
    last = None if summary["last_epoch_mean"] is None else interval_text(summary["last_epoch_mean"], summary["last_epoch_ci95"])
    if any(f["best_epoch"] is not None for f in summary["folds"]):
        return (
            f"At the last trained epoch: mean {last}. Each fold's score above is that of the epoch its training kept, chosen on "
            "the fold itself (slightly optimistic); the last-epoch score is the honest estimate for a model trained that many "
            "epochs without selection (`ecgrhythm train --val-fraction 0`)."
        )
    return "Each fold's model averages several networks (an ensemble of cross-validations), each kept at the epoch its training chose on " + (
        "the fold itself (slightly optimistic); there is no single training log, so no kept or last epoch."
        if last is None
        else f"the fold itself (slightly optimistic). With the probabilities of their last epochs averaged instead: mean {last}, "
        "the honest estimate for such networks trained that many epochs without selection."
    )


def _markdown(summary: dict, command: str) -> str:
    classes = summary["pooled"]["classes"]
    done, total = len(summary["folds"]), summary["folds_total"]
    partial = done < total
    lines = [
        f"# Cross-validation: {summary['name']}" + (f" (partial: {done} of {total} folds)" if partial else ""),
        "",
        (f"{done} of {total} folds (the others unfinished)" if partial else f"{done} folds")
        + f" over {summary['records']:,} records; {summary['score_name']}.",
        "",
        f"**Mean {interval_text(summary['mean'], summary['ci95'])}** (95 % t-interval over folds); pooled out-of-fold score "
        f"{summary['pooled']['score']:.4f}.",
        "",
        _epochs_paragraph(summary),
        "",
    ]
    if summary.get("last_epoch_prior_mean") is not None:
        lines += [
            f"**At the last epoch with the prior correction: mean {interval_text(summary['last_epoch_prior_mean'], summary['last_epoch_prior_ci95'])}**: "
            "each fold's last-epoch probabilities multiplied by the class frequencies of the other folds' records, the "
            "estimate for a model trained on every record and calibrated by `ecgrhythm calibrate --prior-correction`. "
            f"Top-class ECE of the last epochs' probabilities {summary['last_epoch_ece']:.4f}; after the prior correction and "
            f"one temperature per predicted class, both fitted on the other folds, {summary['last_epoch_calibrated_ece']:.4f}.",
            "",
        ]
    teacher = summary["recipe"].get("teacher") if isinstance(summary.get("recipe"), dict) else None
    if teacher:
        lines += [
            f"A student: each training target is {1 - teacher['weight']:g} its label and {teacher['weight']:g} a teacher's "
            "out-of-fold probabilities (`--teacher`). The estimate is slightly optimistic: the teacher network that labelled "
            "a training record trained on the fold being scored.",
            "",
        ]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    lines += [
        "| fold | records | score (kept epoch) | score at last epoch | last epoch, prior-corrected | "
        + " | ".join(f"F1 {c}" for c in classes)
        + " |",
        "|" + "---|" * (5 + len(classes)),
    ]
    for f in summary["folds"]:
        kept = f"{f['score']:.4f}" + (f" (epoch {f['best_epoch']})" if f["best_epoch"] is not None else "")
        last = (
            f"{f['last_epoch_score']:.4f}" + (f" (epoch {f['last_epoch']})" if f["last_epoch"] is not None else "")
            if f["last_epoch_score"] is not None
            else ""
        )
        prior = f"{f['last_epoch_prior_score']:.4f}" if f.get("last_epoch_prior_score") is not None else ""
        lines.append(f"| {f['fold']} | {f['records']} | {kept} | {last} | {prior} | " + " | ".join(f"{f['f1'][c]:.3f}" for c in classes) + " |")
    pooled = summary["pooled"]
    lines.append(
        "| pooled | {} | {:.4f} | | | {} |".format(summary["records"], pooled["score"], " | ".join(f"{pooled['f1'][c]:.3f}" for c in classes))
    )
    lines += [
        "",
        "Pooled confusion matrix (rows: true class, columns: predicted):",
        "",
        "| | " + " | ".join(classes) + " |",
        "|" + "---|" * (1 + len(classes)),
    ]
    lines += [f"| {c} | " + " | ".join(str(v) for v in row) + " |" for c, row in zip(classes, pooled["confusion"])]
    t = summary["temperature"]
    lines += [
        "",
        f"Top-class ECE (15 bins) of the out-of-fold probabilities: {pooled['ece']:.4f}. Temperature fitted on them: "
        f"T = {t['value']:.3f}, ECE {t['ece_after']:.4f} after (in-sample); fitted on the other folds for each fold "
        f"(cross-fitted): ECE {t['ece_cross_fitted']:.4f}" + (" (one fold: nothing to fit on)." if done < 2 else "."),
        "",
    ]
    by_class = t["per_predicted_class"]
    shown = ", ".join(f"{c} {v:.3f}" for c, v in zip(classes, by_class["value"]))
    lines += [
        f"One temperature per predicted class (each row scaled by that of its argmax, so every label is kept; T = 1 for a class "
        f"predicted fewer than {MIN_PREDICTED_ROWS} times): {shown}, ECE {by_class['ece_after']:.4f} after (in-sample), "
        f"{by_class['ece_cross_fitted']:.4f} cross-fitted" + (" (one fold: nothing to fit on)." if done < 2 else "."),
        "",
    ]
    return "\n".join(lines)


def write_report(output, report_dir=None, *, command: str = "", name: str | None = None, partial: bool = False) -> dict[str, Path]:
    """Write `report.json` and `report.md` of a finished cross-validation folder, atomically, and keep beside them
    (`run/`) the folder without its networks (:func:`ecgrhythm.training.crossval.keep_run`): the report can be made again from
    it, `ecgrhythm calibrate --crossval` can fit on it, and copied back into a lost folder it lets a rerun go on.

    Args:
        output: the cross-validation folder.
        report_dir: where to write (default `docs/results/crossval/<name>`).
        command: the command that ran it, quoted in the Markdown.
        name: the recipe's name (default: the folder's name).
        partial: report the folds finished so far, marked "k of n folds" (see :func:`summarise`).

    Returns:
        `{"json": path, "markdown": path, "run": path}`.

    Raises:
        ValueError: `report_dir/run` holds the run of another recipe or other folds (nothing is written).
    """
    summary = summarise(output, name, partial=partial)
    summary["command"] = command
    report_dir = Path(report_dir) if report_dir is not None else DEFAULT_RESULTS / summary["name"]
    paths = {"json": report_dir / REPORT_FILE, "markdown": report_dir / "report.md", "run": report_dir / KEPT_RUN}
    keep_run(output, paths["run"])
    atomic_write_text(paths["json"], json.dumps(_strict_json(summary), indent=2, allow_nan=False) + "\n")
    atomic_write_text(paths["markdown"], _markdown(summary, command))
    return paths
