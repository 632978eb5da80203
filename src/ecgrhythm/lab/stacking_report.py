"""The stacked model's cross-validated estimate against the networks', written to `docs/results/crossval/stacking/`.

Run from the repository root (a few minutes on 2 CPU cores, the features cached after the first run)::

    python -m ecgrhythm.lab.stacking_report

It reads the kept runs of the 128-unit recipes (`docs/results/crossval/<recipe>/run`), computes or reads the rhythm
features of the 7,249 CinC 2017 records (`runs/features/cinc2017-rhythm.csv`), and scores on the same folds, each
fold's probabilities multiplied by the other folds' class frequencies (the prior correction of the reference):

- the reference: the two single networks' last-epoch probabilities averaged (the recipe `seed1+augment-lstm128`), and
  the three 128-unit recipes' averaged (the pair and its two members: the same probabilities);
- gradient boosting (:func:`ecgrhythm.lab.stacking.stacked_oof`) on (a) the features alone, (b) the two networks'
  probabilities alone, (c) both; and (a) and (c) with the R-R features only (no atrial activity, morphology or quality);
- the pair's probabilities and (c)'s averaged half and half (both under equal priors, then corrected; not tuned).

For each: every fold's score, the mean with its 95 % t-interval, the paired difference from the reference with the
paired t-test's p, the pooled F1 of each class, and the pooled top-class ECE as it is and after one temperature per
predicted class fitted on the other folds (the shipped calibration, cross-fitted). `stacking.json` and `README.md` (whose
text after the line :data:`NOTES`, written by hand, is kept).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import numpy as np

from ecgrhythm.lab.crossval_report import DEFAULT_RESULTS, interval_text
from ecgrhythm.lab.stacking import BOOSTING, feature_table, member_probabilities, stacked_oof
from ecgrhythm.scoring.calibration import top_class_calibration
from ecgrhythm.scoring.crossval import cross_fitted_ece, cross_fitted_prior, fold_reports, paired_difference, score_of, t_interval
from ecgrhythm.scoring.metrics import evaluate_predictions
from ecgrhythm.utils.io import atomic_write_text

__all__ = ["evaluate", "main"]

MEMBERS = ("seed1-lstm128", "seed1-augment-lstm128")
PAIR = "seed1+augment-lstm128"
COMMAND = "python -m ecgrhythm.lab.stacking_report"
NOTES = "\n<!-- written by hand below: kept when the README is written again -->\n"
RR_LAST = "regular_nrmssd"  # the R-R features are FEATURE_NAMES up to this one (no P wave, morphology or quality)


def evaluate(probabilities, targets, folds, classes, *, corrected: bool = False) -> dict:
    """Fold scores (after the cross-fitted prior correction, unless `corrected` says it was applied), their mean and
    interval, pooled F1 per class, and the top-class ECE as it is and after cross-fitted temperatures per predicted class."""
    probs = np.asarray(probabilities, dtype=float) if corrected else cross_fitted_prior(probabilities, targets, folds)
    scores = [score_of(report) for _, report in fold_reports(probs, targets, folds, classes)]
    mean, half = t_interval(scores)
    pooled = evaluate_predictions([classes[t] for t in targets], [classes[i] for i in probs.argmax(axis=1)], classes)
    return {
        "scores": scores,
        "mean": mean,
        "ci95": half,
        "f1": pooled.f1,
        "pooled_score": score_of(pooled),
        "ece": top_class_calibration(probs, targets).ece,
        "calibrated_ece": cross_fitted_ece(probs, targets, folds, per_predicted_class=True),
    }


def paired(result: dict, reference: dict) -> None:
    """Add the paired difference from `reference` (mean, p of the paired t-test or None, folds higher) to `result`."""
    a, b = np.array(result["scores"]), np.array(reference["scores"])
    result["difference"], p = paired_difference(a, b)
    result["p_value"] = None if math.isnan(p) else p
    result["folds_higher"] = int((a > b).sum())


def run(results_dir: Path, data_dir: Path, cache: Path, seed: int = 0) -> dict:
    """Every model's scores (see the module docstring) as JSON-serialisable data."""
    runs = [results_dir / name / "run" for name in MEMBERS]
    names, folds, _, targets, classes, probs = member_probabilities([*runs, results_dir / PAIR / "run"])
    features = feature_table(data_dir, names, cache)
    networks = np.hstack(probs[:2])
    from ecgrhythm.features.rhythm import FEATURE_NAMES

    rr = features[:, : FEATURE_NAMES.index(RR_LAST) + 1]
    inputs = {
        "R-R features": rr,
        "features": features,
        "probabilities": networks,
        "R-R features + probabilities": np.hstack([rr, networks]),
        "features + probabilities": np.hstack([features, networks]),
    }
    results = {
        "networks (pair)": evaluate(probs[2], targets, folds, classes),
        "networks (three recipes)": evaluate(np.mean(probs, axis=0), targets, folds, classes),
    }
    for label, x in inputs.items():
        stacked = stacked_oof(x, targets, folds, len(classes), seed=seed)
        results[f"boosting on {label}"] = evaluate(stacked, targets, folds, classes)
    results["networks and boosting on features + probabilities, averaged"] = evaluate((probs[2] + stacked) / 2, targets, folds, classes)
    reference = results["networks (pair)"]
    for result in results.values():
        if result is not reference:
            paired(result, reference)
    return {
        "command": COMMAND + (f" --seed {seed}" if seed else ""),
        "records": len(names),
        "classes": classes,
        "members": list(MEMBERS),
        "reference": "networks (pair)",
        "boosting": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", **BOOSTING, "random_state": seed},
        "features": list(FEATURE_NAMES),
        "results": results,
    }


def markdown(summary: dict, note: str = "") -> str:
    """The README of `docs/results/crossval/stacking/`: the command, the table, then :data:`NOTES` and `note` (the
    reading of the numbers, written by hand and kept when the README is written again)."""
    classes = summary["classes"]
    lines = [
        "# Stacking: gradient boosting on rhythm features and the networks' out-of-fold probabilities",
        "",
        f"{summary['records']:,} CinC 2017 records, the 5 folds of the cross-validations (`folds.json`); the CinC 2017 score "
        "(mean F1 of N, A, O) of each fold after the prior correction (each fold's probabilities multiplied by the other "
        "folds' class frequencies), paired by fold with the reference (the 128-unit pair's last-epoch probabilities averaged, "
        "0.8486 in the candidates table). Module docstrings: `ecgrhythm.lab.stacking` (how the booster is fitted strictly out "
        "of fold) and `ecgrhythm.features.rhythm` (the features).",
        "",
        "Command (from the repository root):",
        "",
        "```",
        summary["command"],
        "```",
        "",
        "| model | "
        + " | ".join(f"fold {k}" for k in range(len(next(iter(summary["results"].values()))["scores"])))
        + " | mean ± 95 % CI | difference (p, folds higher) | "
        + " | ".join(f"F1 {c}" for c in classes)
        + " | ECE | ECE, calibrated |",
        "|---" * (9 + len(classes)) + "|",
    ]
    for label, r in summary["results"].items():
        if "difference" in r:
            p = "" if r["p_value"] is None else f", p {r['p_value']:.3f}"
            diff = f"{r['difference']:+.4f}{p}, {r['folds_higher']} of {len(r['scores'])}"
        else:
            diff = "reference"
        lines.append(
            f"| {label} | "
            + " | ".join(f"{s:.4f}" for s in r["scores"])
            + f" | {interval_text(r['mean'], r['ci95'])} | {diff} | "
            + " | ".join(f"{r['f1'][c]:.3f}" for c in classes)
            + f" | {r['ece']:.4f} | {r['calibrated_ece']:.4f} |"
        )
    lines += [
        "",
        "ECE: pooled top-class ECE (15 bins) of the prior-corrected probabilities; calibrated: after one temperature per "
        "predicted class fitted on the other folds for each fold (the shipped calibration, cross-fitted).",
        "",
        f"Booster: scikit-learn's `HistGradientBoostingClassifier` (already a dependency), fixed settings `{json.dumps(summary['boosting'])}`.",
        "",
    ]
    return "\n".join(lines) + NOTES + note


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="the cross-validation results folder (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"), help="the CinC 2017 records (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=Path("runs/features/cinc2017-rhythm.csv"), help="the features' cache (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="where stacking.json and README.md go (default: RESULTS/stacking)")
    parser.add_argument("--seed", type=int, default=0, help="the booster's random state (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = run(args.results, args.data, args.cache, args.seed)
    out = args.out if args.out is not None else args.results / "stacking"
    readme = out / "README.md"
    note = readme.read_text(encoding="utf-8").partition(NOTES)[2] if readme.is_file() else ""
    atomic_write_text(out / "stacking.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(readme, markdown(summary, note))
    print(markdown(summary))


if __name__ == "__main__":
    main()
