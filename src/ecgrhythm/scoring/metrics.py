"""Scores of predictions: the CinC 2017 score, per-class and multi-label metrics.

Pure functions of labels and probabilities: no files, no figures (those are in
:mod:`ecgrhythm.evaluation.reports`); the calibration of probabilities (top-class ECE,
temperature scaling) is in :mod:`ecgrhythm.scoring.calibration`.

The CinC 2017 score is the mean F1 of the classes N (normal), A (atrial
fibrillation) and O (other rhythm), where F1 of a class is
`2 * TP / (true count + predicted count)`; the noise class `~` is reported but
not scored. :func:`evaluate_predictions` also reports the top-class ECE of the
probabilities it is given.

Example:
>>> report = evaluate_predictions(["N", "N", "A", "O"], ["N", "A", "A", "O"], ["N", "A", "O", "~"])
>>> round(report.score, 4)  # F1: N 2/3, A 2/3, O 1
0.7778
>>> report.confusion.shape
(4, 4)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ecgrhythm.scoring.calibration import Calibration, top_class_calibration

__all__ = [
    "confusion_matrix",
    "f1_per_class",
    "cinc2017_score",
    "CINC2017_SCORED",
    "EvaluationReport",
    "evaluate_predictions",
    "MultilabelReport",
    "multilabel_report",
    "tune_thresholds",
    "score_probabilities",
]

CINC2017_SCORED = ("N", "A", "O")


def confusion_matrix(y_true, y_pred, classes) -> np.ndarray:
    """Counts `(n_classes, n_classes)`: row = true class, column = predicted class."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    return sk_confusion_matrix(list(y_true), list(y_pred), labels=list(classes))


def f1_per_class(cm: np.ndarray, classes) -> dict[str, float]:
    """F1 of each class from a confusion matrix: `2 TP / (true count + predicted count)`.

    A class that is neither present nor predicted gets F1 = 0.
    """
    cm = np.asarray(cm)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=1) + cm.sum(axis=0)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {c: float(v) for c, v in zip(classes, f1)}


def cinc2017_score(cm: np.ndarray, classes) -> float:
    """The official CinC 2017 score: mean F1 of classes N, A and O."""
    f1 = f1_per_class(cm, classes)
    return float(np.mean([f1[c] for c in CINC2017_SCORED]))


@dataclasses.dataclass
class EvaluationReport:
    """Scores of single-label predictions against true labels.

    Attributes:
        classes: class names, the order of every per-class field.
        confusion: int array `(n_classes, n_classes)`, row = true class,
            column = predicted class.
        score: the CinC 2017 score (mean F1 of N, A and O), or `None` when
            the classes do not include all three.
        f1, precision, recall: per-class metrics (0 where undefined).
        macro_f1: mean F1 over all classes.
        accuracy: share of records predicted correctly.
        n_records: number of records scored.
        true_counts, predicted_counts: records per class, true and predicted.
        calibration: top-class calibration of the probabilities (15 bins), or
            `None` when the report was made from labels alone.
        info: context of the evaluation (data and model folders, records
            excluded or unreadable, ...), stored as given in the JSON report.
    """

    classes: list[str]
    confusion: np.ndarray
    score: float | None
    f1: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    macro_f1: float
    accuracy: float
    n_records: int
    true_counts: dict[str, int]
    predicted_counts: dict[str, int]
    calibration: Calibration | None = None
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def ece(self) -> float | None:
        """Top-class expected calibration error, or `None` without probabilities."""
        return None if self.calibration is None else self.calibration.ece

    def to_dict(self) -> dict:
        """The report as JSON-serialisable data (the confusion matrix as nested lists)."""
        out = dataclasses.asdict(self)
        out["confusion"] = np.asarray(self.confusion).tolist()
        out["scored_classes"] = list(CINC2017_SCORED) if self.score is not None else []
        out["ece"] = self.ece
        out["calibration"] = None if self.calibration is None else self.calibration.to_dict()
        return out


def evaluate_predictions(y_true, y_pred, classes, *, probabilities=None, info: dict | None = None) -> EvaluationReport:
    """Score predicted labels against true labels.

    Args:
        y_true: true label of each record, length `n_records`.
        y_pred: predicted label of each record, length `n_records`.
        classes: class names; every label must be one of them.
        probabilities: optional predicted probabilities `(n_records, n_classes)`,
            columns in the order of `classes`; given, the report holds their
            top-class calibration (see :func:`~ecgrhythm.scoring.calibration.top_class_calibration`).
        info: context stored with the report (JSON-serialisable).

    Returns:
        An :class:`EvaluationReport`.

    Raises:
        ValueError: the label lists differ in length, are empty, or hold a
            label that is not in `classes`.
    """
    from sklearn.metrics import precision_recall_fscore_support

    y_true, y_pred, classes = [str(v) for v in y_true], [str(v) for v in y_pred], [str(c) for c in classes]
    if len(y_true) != len(y_pred):
        raise ValueError(f"Mismatch in number of records: {len(y_true)} true labels but {len(y_pred)} predictions.")
    if not y_true:
        raise ValueError("No records to evaluate: `y_true` and `y_pred` are empty.")
    for name, labels in (("y_true", y_true), ("y_pred", y_pred)):
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise ValueError(
                f"Invalid argument `{name}`: labels {unknown} are not among the classes {classes}. Drop those records or pass the full class list."
            )
    calibration = None
    if probabilities is not None:
        if np.shape(probabilities) != (len(y_true), len(classes)):
            raise ValueError(
                f"Invalid argument `probabilities`: expected shape {(len(y_true), len(classes))}, one row per record and one column "
                f"per class. Received: shape {np.shape(probabilities)}"
            )
        calibration = top_class_calibration(probabilities, [classes.index(label) for label in y_true])
    cm = confusion_matrix(y_true, y_pred, classes)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=classes, average=None, zero_division=0)
    per_class = lambda values: {c: float(v) for c, v in zip(classes, values)}  # noqa: E731
    return EvaluationReport(
        classes=classes,
        confusion=cm,
        score=cinc2017_score(cm, classes) if set(CINC2017_SCORED) <= set(classes) else None,
        f1=per_class(f1),
        precision=per_class(precision),
        recall=per_class(recall),
        macro_f1=float(np.mean(f1)),
        accuracy=float(np.trace(cm) / cm.sum()),
        n_records=int(cm.sum()),
        true_counts={c: int(v) for c, v in zip(classes, support)},
        predicted_counts={c: int(v) for c, v in zip(classes, cm.sum(axis=0))},
        calibration=calibration,
        info=dict(info or {}),
    )


@dataclasses.dataclass
class MultilabelReport:
    """Scores of multi-label predictions (several classes per record, one threshold per class).

    Attributes:
        classes: class names, the order of every per-class field.
        thresholds: decision threshold of each class (probability >= threshold means present).
        f1, precision, recall: per-class metrics (0 where undefined).
        macro_f1: mean F1 over the classes.
        n_records: number of records scored.
        true_counts, predicted_counts: records in which each class is present, truly and predicted.
        auroc, average_precision: per-class threshold-free scores (None for a
            class without both positive and negative records).
        macro_auroc, macro_average_precision: their means over the classes where defined.
        info: facts about the evaluation (data, model, excluded and failed records).
    """

    classes: list[str]
    thresholds: dict[str, float]
    f1: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    macro_f1: float
    n_records: int
    true_counts: dict[str, int]
    predicted_counts: dict[str, int]
    auroc: dict[str, float | None] = dataclasses.field(default_factory=dict)
    average_precision: dict[str, float | None] = dataclasses.field(default_factory=dict)
    macro_auroc: float | None = None
    macro_average_precision: float | None = None
    info: dict = dataclasses.field(default_factory=dict)

    @property
    def score(self) -> float:
        """The headline score: macro F1."""
        return self.macro_f1

    def to_dict(self) -> dict:
        """The report as JSON-serialisable data."""
        return dataclasses.asdict(self)


def _multilabel_inputs(targets, probabilities):
    targets = np.asarray(targets, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    if targets.ndim != 2 or targets.shape != probabilities.shape:
        raise ValueError(
            "Invalid arguments `targets` and `probabilities`: expected two arrays of the same shape (n_records, n_classes). "
            f"Received: targets.shape={targets.shape}, probabilities.shape={probabilities.shape}"
        )
    return targets > 0.5, probabilities


def tune_thresholds(targets, probabilities, grid=None) -> np.ndarray:
    """Per-class thresholds that maximise each class's F1 on the given records.

    Args:
        targets: multi-hot array `(n_records, n_classes)`.
        probabilities: predicted probabilities `(n_records, n_classes)`.
        grid: candidate thresholds (default 0.05, 0.10, ..., 0.95); the
            lowest of equally good candidates wins.

    Returns:
        float array `(n_classes,)`; 0.5 for a class with no positive record.
    """
    truth, probs = _multilabel_inputs(targets, probabilities)
    grid = np.linspace(0.05, 0.95, 19) if grid is None else np.asarray(grid, dtype=float)
    thresholds = np.full(truth.shape[1], 0.5)
    for k in range(truth.shape[1]):
        y = truth[:, k]
        if not y.any():
            continue
        predicted = probs[:, k, None] >= grid[None, :]  # (n_records, n_candidates)
        tp = (predicted & y[:, None]).sum(axis=0)
        f1 = 2 * tp / (y.sum() + predicted.sum(axis=0))
        thresholds[k] = grid[int(np.argmax(f1))]
    return thresholds


def multilabel_report(targets, probabilities, classes, thresholds=0.5, *, info: dict | None = None) -> MultilabelReport:
    """Score multi-label probabilities against multi-hot targets.

    Args:
        targets: multi-hot array `(n_records, n_classes)`.
        probabilities: predicted probabilities `(n_records, n_classes)`.
        classes: class names, the columns.
        thresholds: one threshold for all classes or one per class `(n_classes,)`.
        info: facts about the evaluation, kept in the report.

    Returns:
        A :class:`MultilabelReport`; F1 of a class is `2 TP / (true count + predicted count)`;
        AUROC and average precision come from scikit-learn.
    """
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    truth, probs = _multilabel_inputs(targets, probabilities)
    classes = [str(c) for c in classes]
    if len(classes) != truth.shape[1]:
        raise ValueError(f"Invalid argument `classes`: expected {truth.shape[1]} names, one per column. Received: {len(classes)} names")
    thresholds = np.broadcast_to(np.asarray(thresholds, dtype=float), (len(classes),))
    predicted = probs >= thresholds[None, :]
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, average=None, zero_division=0)
    per_class = lambda values: {c: float(v) for c, v in zip(classes, values)}  # noqa: E731
    defined = [k for k in range(len(classes)) if 0 < truth[:, k].sum() < len(truth)]
    auroc = {c: None for c in classes}
    ap = {c: None for c in classes}
    for k in defined:
        auroc[classes[k]] = float(roc_auc_score(truth[:, k], probs[:, k]))
        ap[classes[k]] = float(average_precision_score(truth[:, k], probs[:, k]))
    mean_defined = lambda values: float(np.mean([v for v in values.values() if v is not None])) if defined else None  # noqa: E731
    return MultilabelReport(
        classes=classes,
        thresholds=per_class(thresholds),
        f1=per_class(f1),
        precision=per_class(precision),
        recall=per_class(recall),
        macro_f1=float(np.mean(f1)) if len(classes) else 0.0,
        n_records=int(truth.shape[0]),
        true_counts={c: int(v) for c, v in zip(classes, support)},
        predicted_counts={c: int(v) for c, v in zip(classes, predicted.sum(axis=0))},
        auroc=auroc,
        average_precision=ap,
        macro_auroc=mean_defined(auroc),
        macro_average_precision=mean_defined(ap),
        info=dict(info or {}),
    )


def score_probabilities(targets, probs, classes, multilabel: bool = False):
    """`(score, F1 per class, extras)` of probabilities `(n, n_classes)` against `targets`.

    One label per record: the CinC 2017 score of the arg-max class, and the
    confusion matrix as extras. Multi-label: macro F1 with per-class thresholds
    tuned on these records, which are the extras.
    """
    if multilabel:
        thresholds = tune_thresholds(targets, probs)
        report = multilabel_report(targets, probs, classes, thresholds)
        return report.macro_f1, report.f1, {"thresholds": thresholds.tolist()}
    pred = [classes[i] for i in probs.argmax(axis=1)]
    cm = confusion_matrix([classes[i] for i in targets], pred, classes)
    return cinc2017_score(cm, classes), f1_per_class(cm, classes), {"val_confusion": cm.tolist()}
