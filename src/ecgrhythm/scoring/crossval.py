"""Scores of out-of-fold probabilities: each fold's score, the t-interval of their mean, and the class prior and
temperatures fitted on the other folds for each fold (cross-fitted), so that no fold's labels calibrate its own rows.

:mod:`ecgrhythm.lab.crossval_report` reports cross-validations with these; `ecgrhythm calibrate` and
`scripts/prior_correction.py` print them.
"""

from __future__ import annotations

import math

import numpy as np

from ecgrhythm.scoring.calibration import apply_class_prior, apply_temperature, class_frequencies, fit_temperature, top_class_calibration
from ecgrhythm.scoring.metrics import evaluate_predictions

__all__ = [
    "t_interval",
    "paired_difference",
    "cross_fitted_temperature",
    "cross_fitted_ece",
    "cross_fitted_prior",
    "prior_correction_scores",
    "fold_reports",
    "score_of",
]


def t_interval(values, level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the two-sided `level` t-interval of the mean of `values` (half-width NaN for one value)."""
    from scipy.stats import t

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), math.nan
    return float(values.mean()), float(t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def paired_difference(a, b) -> tuple[float, float]:
    """Mean of `a - b` (fold scores of two recipes on the same folds) and the p-value of the two-sided paired t-test.

    The mean is NaN when there are no pairs, the p-value NaN with fewer than two. Differences that are all equal have
    no spread to test: the p-value is then 0 (the same non-zero difference on every fold) or 1 (no difference).
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not len(a):
        return math.nan, math.nan
    diff = a - b
    if len(diff) < 2:
        return float(diff.mean()), math.nan
    if np.allclose(diff, diff[0]):
        return float(diff.mean()), 0.0 if diff[0] != 0 else 1.0
    from scipy.stats import ttest_rel

    return float(diff.mean()), float(ttest_rel(a, b).pvalue)


def cross_fitted_temperature(
    probabilities, targets, folds, *, per_class: bool = False, per_predicted_class: bool = False, class_prior: bool = False
) -> np.ndarray:
    """Probabilities `(n, n_classes)` with each fold's rows scaled by a temperature fitted on the other folds' rows.

    The ECE of these is an honest estimate of the ECE after scaling (the temperature never saw the records it scales).
    `per_class` and `per_predicted_class` choose the kind of temperature, as in :func:`ecgrhythm.scoring.calibration.fit_temperature`.
    With `class_prior`, every row is first multiplied by the class frequencies of the other folds' records
    (:func:`ecgrhythm.scoring.calibration.apply_class_prior`), and the temperature is fitted on those corrected rows:
    `ecgrhythm calibrate --prior-correction`, with no fold's labels used for its own rows.
    """
    probabilities, targets, folds = np.asarray(probabilities, dtype=float), np.asarray(targets), np.asarray(folds)
    out = np.empty_like(probabilities)
    for k in np.unique(folds):
        held = folds == k
        fitted = _with_prior_of(probabilities, targets, ~held) if class_prior else probabilities
        temperature = fit_temperature(fitted[~held], targets[~held], per_class=per_class, per_predicted_class=per_predicted_class)
        out[held] = apply_temperature(fitted[held], temperature, per_predicted_class=per_predicted_class)
    return out


def cross_fitted_ece(
    probabilities, targets, folds, *, per_class: bool = False, per_predicted_class: bool = False, class_prior: bool = False
) -> float:
    """Top-class ECE of :func:`cross_fitted_temperature`'s probabilities: NaN with one fold (no other fold to fit on)."""
    if len(np.unique(folds)) < 2:
        return math.nan
    scaled = cross_fitted_temperature(
        probabilities, targets, folds, per_class=per_class, per_predicted_class=per_predicted_class, class_prior=class_prior
    )
    return top_class_calibration(scaled, targets).ece


def _with_prior_of(probabilities: np.ndarray, targets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Every row of `probabilities` multiplied by the class frequencies of `targets[rows]`, renormalised."""
    return apply_class_prior(probabilities, class_frequencies(targets[rows], probabilities.shape[1]))


def cross_fitted_prior(probabilities, targets, folds) -> np.ndarray:
    """Probabilities `(n, n_classes)` with each fold's rows multiplied by the class frequencies of the other folds'
    records (:func:`ecgrhythm.scoring.calibration.apply_class_prior`): its score and ECE are honest estimates of the prior
    correction's (the prior never counted the records it corrects). With one fold, that fold's own frequencies."""
    probabilities, targets, folds = np.asarray(probabilities, dtype=float), np.asarray(targets), np.asarray(folds)
    out = np.empty_like(probabilities)
    for k in np.unique(folds):
        held = folds == k
        out[held] = _with_prior_of(probabilities, targets, ~held if (~held).any() else held)[held]
    return out


def prior_correction_scores(probabilities, targets, folds, classes) -> tuple[list[float], list[float]]:
    """Each fold's score (:func:`score_of`) of the argmax labels before and after :func:`cross_fitted_prior`, in fold order."""
    corrected = cross_fitted_prior(probabilities, targets, folds)
    return tuple([score_of(report) for _, report in fold_reports(probs, targets, folds, classes)] for probs in (probabilities, corrected))


def fold_reports(probabilities, targets, folds, classes) -> list:
    """`(fold, EvaluationReport)` of each fold's argmax labels, in fold order (a report's score: :func:`score_of`)."""
    probabilities, targets, folds = np.asarray(probabilities), np.asarray(targets), np.asarray(folds)
    reports = []
    for k in sorted(set(folds.tolist())):
        rows = folds == k
        truth = [classes[i] for i in targets[rows]]
        reports.append((int(k), evaluate_predictions(truth, [classes[i] for i in probabilities[rows].argmax(axis=1)], classes)))
    return reports


def score_of(report) -> float:
    """The CinC 2017 score of an evaluation, or its macro F1 where the classes lack N, A or O."""
    return report.score if report.score is not None else report.macro_f1
