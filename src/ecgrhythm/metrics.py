"""Scores of predictions: the CinC 2017 score, per-class and multi-label metrics, calibration.

Pure functions of labels and probabilities: no files, no figures (those are in
:mod:`ecgrhythm.reports`).

The CinC 2017 score is the mean F1 of the classes N (normal), A (atrial
fibrillation) and O (other rhythm), where F1 of a class is
`2 * TP / (true count + predicted count)`; the noise class `~` is reported but
not scored. The calibration of single-label probabilities is measured by the
top-class expected calibration error (ECE) and improved by temperature scaling.

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
    "Calibration",
    "top_class_calibration",
    "fit_temperature",
    "apply_temperature",
    "ECE_BINS",
    "MIN_PREDICTED_ROWS",
    "TEMPERATURE_BY_PREDICTED_CLASS",
]

CINC2017_SCORED = ("N", "A", "O")
ECE_BINS = 15
MIN_PREDICTED_ROWS = 10  # rows of a predicted class below which fit_temperature(per_predicted_class=True) keeps T = 1
TEMPERATURE_BY_PREDICTED_CLASS = "predicted_class"  # a model's "temperature_by" for apply_temperature(..., per_predicted_class=True)


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
            top-class calibration (see :func:`top_class_calibration`).
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


@dataclasses.dataclass
class Calibration:
    """Top-class calibration of single-label probabilities, by equal-width confidence bins.

    A record falls in bin `b` when its top-class probability lies in
    `(edges[b], edges[b + 1]]` (the first bin also holds 0).

    Attributes:
        ece: expected calibration error, `sum_b count[b] / n * |accuracy[b] - confidence[b]|`.
        edges: bin edges `(n_bins + 1,)`, from 0 to 1.
        confidence: mean top-class probability of the records of each bin `(n_bins,)` (NaN where empty).
        accuracy: share of those records whose top class is the true class `(n_bins,)` (NaN where empty).
        count: records in each bin `(n_bins,)`.
    """

    ece: float
    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    def to_dict(self) -> dict:
        """JSON-serialisable data; empty bins have `None` for confidence and accuracy."""
        listed = lambda values: [None if np.isnan(v) else float(v) for v in values]  # noqa: E731
        return {
            "ece": self.ece,
            "bins": len(self.count),
            "edges": np.asarray(self.edges).tolist(),
            "confidence": listed(self.confidence),
            "accuracy": listed(self.accuracy),
            "count": np.asarray(self.count).tolist(),
        }


def _single_label_inputs(probabilities, targets) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probabilities, dtype=float)
    targets = np.asarray(targets)
    if probs.ndim != 2 or targets.shape != (len(probs),) or not len(probs):
        raise ValueError(
            "Invalid arguments `probabilities` and `targets`: expected probabilities (n_records, n_classes) and one class index "
            f"per record (n_records,), n_records > 0. Received: probabilities.shape={probs.shape}, targets.shape={targets.shape}"
        )
    if not np.issubdtype(targets.dtype, np.integer) or targets.min() < 0 or targets.max() >= probs.shape[1]:
        received = np.unique(targets)[:10].tolist()
        raise ValueError(f"Invalid argument `targets`: expected class indices 0 to {probs.shape[1] - 1}. Received: {received}")
    return probs, targets


def top_class_calibration(probabilities, targets, n_bins: int = ECE_BINS) -> Calibration:
    """Expected calibration error of the top class, with the per-bin values of a reliability diagram.

    Args:
        probabilities: predicted probabilities `(n_records, n_classes)`.
        targets: true class index of each record `(n_records,)`.
        n_bins: number of equal-width confidence bins over [0, 1].

    Returns:
        A :class:`Calibration`.

    Example:
    >>> calibration = top_class_calibration([[0.9, 0.1], [0.25, 0.75]], [0, 0])
    >>> round(calibration.ece, 3)  # (|1 - 0.9| + |0 - 0.75|) / 2
    0.425
    """
    probs, targets = _single_label_inputs(probabilities, targets)
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"Invalid argument `n_bins`: expected a positive integer. Received: n_bins={n_bins!r}")
    n_bins = int(n_bins)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == targets).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    gaps = np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_confidence))
    return Calibration(float(np.sum(count / len(probs) * gaps)), edges, mean_confidence, accuracy, count)


def _scaled_log_probabilities(log_probs: np.ndarray, temperature) -> np.ndarray:
    scaled = log_probs / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    return scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))


def _log_probabilities(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, 1e-12, None))


def apply_temperature(probabilities, temperature, *, per_predicted_class: bool = False) -> np.ndarray:
    """Probabilities scaled by a temperature: `softmax(log(p) / T)`.

    Args:
        probabilities: probabilities `(n_records, n_classes)`.
        temperature: one positive temperature, or one per class `(n_classes,)`;
            T > 1 softens the probabilities, T < 1 sharpens them, T = 1 keeps them.
        per_predicted_class: `temperature` has one entry per class and each row is scaled as a whole
            by the entry of its predicted class (its argmax), which therefore stays the argmax;
            otherwise a per-class temperature scales each column by its own entry.

    Returns:
        float array `(n_records, n_classes)` whose rows sum to 1.
    """
    probs = np.asarray(probabilities, dtype=float)
    temperature = np.asarray(temperature, dtype=float)
    if probs.ndim != 2:
        raise ValueError(f"Invalid argument `probabilities`: expected an array (n_records, n_classes). Received: shape {probs.shape}")
    shapes = ((probs.shape[1],),) if per_predicted_class else ((), (probs.shape[1],))
    if temperature.shape not in shapes or not np.all(temperature > 0):
        expected = (
            f"{probs.shape[1]} positive numbers (one per predicted class)" if per_predicted_class else f"one positive number or {probs.shape[1]}"
        )
        raise ValueError(f"Invalid argument `temperature`: expected {expected}. Received: {temperature.tolist()}")
    if per_predicted_class:
        temperature = temperature[probs.argmax(axis=1)][:, None]
    return np.exp(_scaled_log_probabilities(_log_probabilities(probs), temperature))


def _nll_temperature(log_probs: np.ndarray, targets: np.ndarray, size: int) -> np.ndarray:
    """The `size` temperatures (one, or one per class) that minimise the NLL of `softmax(log_probs / T)`."""
    from scipy.optimize import minimize

    rows = np.arange(len(targets))

    def nll(log_t):
        return -_scaled_log_probabilities(log_probs, np.exp(log_t))[rows, targets].mean()

    limit = np.log(50.0)
    return np.exp(minimize(nll, np.zeros(size), method="L-BFGS-B", bounds=[(-limit, limit)] * size).x)


def fit_temperature(probabilities, targets, *, per_class: bool = False, per_predicted_class: bool = False) -> np.ndarray:
    """The temperature that minimises the negative log-likelihood of `apply_temperature(probabilities, T)`.

    Fitted on log T (so T stays positive) by L-BFGS-B, within 0.02 <= T <= 50.
    Fit it on records the network was not trained on (validation or out-of-fold).

    With `per_predicted_class` (top-label calibration conditioned on the predicted class, Gupta & Ramdas,
    ICLR 2022), entry k is the single temperature fitted on the rows whose argmax is k; a class predicted
    for fewer than :data:`MIN_PREDICTED_ROWS` rows (or never) gets 1.0, its rows left unscaled.

    Args:
        probabilities: predicted probabilities `(n_records, n_classes)`.
        targets: true class index of each record `(n_records,)`.
        per_class: fit one temperature per class (column) instead of one for all.
        per_predicted_class: fit one temperature per predicted class, for
            `apply_temperature(..., per_predicted_class=True)`; exclusive with `per_class`.

    Returns:
        float array: shape `()` (one temperature) or `(n_classes,)`.
    """
    if per_class and per_predicted_class:
        raise ValueError("Invalid arguments: `per_class` and `per_predicted_class` are exclusive; pass at most one")
    probs, targets = _single_label_inputs(probabilities, targets)
    log_probs = _log_probabilities(probs)
    if per_predicted_class:
        predicted = probs.argmax(axis=1)
        return np.array(
            [
                _nll_temperature(log_probs[predicted == k], targets[predicted == k], 1)[0]
                if np.count_nonzero(predicted == k) >= MIN_PREDICTED_ROWS
                else 1.0
                for k in range(probs.shape[1])
            ]
        )
    temperature = _nll_temperature(log_probs, targets, probs.shape[1] if per_class else 1)
    return temperature if per_class else temperature.reshape(())
