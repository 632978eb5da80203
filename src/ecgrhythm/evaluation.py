"""Scores of single-label predictions: the official CinC 2017 score, per-class metrics, reports.

The CinC 2017 score is the mean F1 of the classes N (normal), A (atrial
fibrillation) and O (other rhythm), where F1 of a class is
`2 * TP / (true count + predicted count)`; the noise class `~` is reported but
not scored.

Example:
>>> report = evaluate_predictions(["N", "N", "A", "O"], ["N", "A", "A", "O"], ["N", "A", "O", "~"])
>>> round(report.score, 4)  # F1: N 2/3, A 2/3, O 1
0.7778
>>> report.confusion.shape
(4, 4)
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from pathlib import Path

import numpy as np

from ._io import atomic_write, atomic_write_text

__all__ = [
    "confusion_matrix",
    "f1_per_class",
    "cinc2017_score",
    "CINC2017_SCORED",
    "EvaluationReport",
    "evaluate_predictions",
    "format_report",
    "write_report",
    "load_split",
    "evaluate_folder",
    "MultilabelReport",
    "multilabel_report",
    "tune_thresholds",
    "REPORT_JSON",
    "REPORT_FIGURE",
]

logger = logging.getLogger(__name__)

CINC2017_SCORED = ("N", "A", "O")
REPORT_JSON = "evaluation.json"
REPORT_FIGURE = "evaluation.png"
SPLIT_FILE = "split.json"


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
    info: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        """The report as JSON-serialisable data (the confusion matrix as nested lists)."""
        out = dataclasses.asdict(self)
        out["confusion"] = np.asarray(self.confusion).tolist()
        out["scored_classes"] = list(CINC2017_SCORED) if self.score is not None else []
        return out


def evaluate_predictions(y_true, y_pred, classes, *, info: dict | None = None) -> EvaluationReport:
    """Score predicted labels against true labels.

    Args:
        y_true: true label of each record, length `n_records`.
        y_pred: predicted label of each record, length `n_records`.
        classes: class names; every label must be one of them.
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
            raise ValueError(f"Invalid argument `{name}`: labels {unknown} are not among the classes {classes}. Drop those records or pass the full class list.")
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
        info=dict(info or {}),
    )


def format_report(report) -> str:
    """The report as a plain-text table for a terminal.

    Returns:
        Lines: the headline score, a per-class table (true and predicted
        counts, precision, recall, F1) and, for one label per record, the
        confusion matrix; for several labels per record, AUROC and average
        precision per class.
    """
    if isinstance(report, MultilabelReport):
        return _format_multilabel(report)
    lines = []
    if report.score is not None:
        lines.append(f"CinC 2017 score (mean F1 of {', '.join(CINC2017_SCORED)}): {report.score:.4f}")
    lines.append(f"records: {report.n_records}   accuracy: {report.accuracy:.4f}   macro F1 (all classes): {report.macro_f1:.4f}")
    lines.append("")
    width = max(5, *(len(c) for c in report.classes))
    lines.append(f"{'class':<{width}}  {'true':>6}  {'pred':>6}  {'precision':>9}  {'recall':>6}  {'F1':>6}")
    for c in report.classes:
        lines.append(
            f"{c:<{width}}  {report.true_counts[c]:>6d}  {report.predicted_counts[c]:>6d}  "
            f"{report.precision[c]:>9.4f}  {report.recall[c]:>6.4f}  {report.f1[c]:>6.4f}"
        )
    lines.append("")
    lines.append("confusion matrix (rows: true class, columns: predicted class)")
    cell = max(6, len(str(int(np.max(report.confusion)))) + 1, *(len(c) + 1 for c in report.classes))
    lines.append(" " * width + "".join(f"{c:>{cell}}" for c in report.classes))
    for c, row in zip(report.classes, np.asarray(report.confusion)):
        lines.append(f"{c:<{width}}" + "".join(f"{int(v):>{cell}d}" for v in row))
    return "\n".join(lines)


def _format_multilabel(report: MultilabelReport) -> str:
    fmt = lambda v: "   n/a" if v is None else f"{v:>6.4f}"  # noqa: E731
    lines = [f"macro F1 (per-class thresholds): {report.macro_f1:.4f}   macro AUROC: {fmt(report.macro_auroc).strip()}   "
             f"macro average precision: {fmt(report.macro_average_precision).strip()}   records: {report.n_records}", ""]
    width = max(5, *(len(c) for c in report.classes))
    lines.append(f"{'class':<{width}}  {'true':>5}  {'pred':>5}  {'thresh':>6}  {'F1':>6}  {'AUROC':>6}  {'AP':>6}")
    for c in report.classes:
        lines.append(f"{c:<{width}}  {report.true_counts[c]:>5d}  {report.predicted_counts[c]:>5d}  {report.thresholds[c]:>6.2f}  "
                     f"{report.f1[c]:>6.4f}  {fmt(report.auroc[c])}  {fmt(report.average_precision[c])}")
    return "\n".join(lines)


def write_report(report, out_dir) -> dict[str, Path]:
    """Write `evaluation.json` and `evaluation.png` into `out_dir`, each atomically.

    The figure shows the confusion matrix as a heatmap with the counts in its
    cells, beside a bar chart of the per-class F1.

    Args:
        report: the report to write.
        out_dir: folder, created if missing.

    Returns:
        `{"json": path, "figure": path}`.
    """
    out_dir = Path(out_dir)
    json_path, figure_path = out_dir / REPORT_JSON, out_dir / REPORT_FIGURE
    atomic_write_text(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
    with atomic_write(figure_path, "wb") as f:
        f.write(_figure_png(report))
    return {"json": json_path, "figure": figure_path}


def _figure_png(report) -> bytes:
    """PNG bytes of the report figure, drawn with matplotlib's Agg canvas (no display, no global backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(report, MultilabelReport):
        return _multilabel_figure_png(report, Figure, FigureCanvasAgg)
    cm = np.asarray(report.confusion)
    classes = report.classes
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_cm, ax_f1 = fig.subplots(1, 2, width_ratios=(1.1, 1))

    image = ax_cm.imshow(cm, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax_cm, shrink=0.8, label="records")
    threshold = cm.max() / 2 if cm.max() > 0 else 1
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax_cm.text(j, i, str(int(cm[i, j])), ha="center", va="center", color="white" if cm[i, j] > threshold else "black")
    ax_cm.set_xticks(range(len(classes)), classes)
    ax_cm.set_yticks(range(len(classes)), classes)
    ax_cm.set_xlabel("predicted class")
    ax_cm.set_ylabel("true class")
    ax_cm.set_title(f"Confusion matrix ({report.n_records} records)")

    f1 = [report.f1[c] for c in classes]
    colors = ["tab:blue" if c in CINC2017_SCORED else "tab:gray" for c in classes]
    bars = ax_f1.bar(classes, f1, color=colors)
    ax_f1.bar_label(bars, labels=[f"{v:.3f}" for v in f1], padding=2)
    ax_f1.set_ylim(0, 1.2)
    ax_f1.set_yticks(np.linspace(0, 1, 6))
    ax_f1.set_ylabel("F1")
    ax_f1.set_xlabel("class")
    if report.score is not None:
        ax_f1.axhline(report.score, color="tab:red", linestyle="--", linewidth=1, label=f"CinC 2017 score {report.score:.3f}")
        ax_f1.legend(loc="upper right")
    ax_f1.set_title("F1 per class (blue: scored classes)")

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _multilabel_figure_png(report, Figure, FigureCanvasAgg) -> bytes:
    """Grouped bars of F1, AUROC and average precision per class."""
    classes = report.classes
    fig = Figure(figsize=(max(6, 0.55 * len(classes) + 2), 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    x = np.arange(len(classes))
    for offset, (name, values) in zip((-0.27, 0, 0.27), (("F1", report.f1), ("AUROC", report.auroc), ("average precision", report.average_precision))):
        ax.bar(x + offset, [values[c] or 0.0 for c in classes], width=0.26, label=name)
    ax.set_xticks(x, [f"{c}\n({report.true_counts[c]})" for c in classes], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_xlabel("class (records in which it is present)")
    ax.set_title(f"Per-class scores, {report.n_records} records: macro F1 {report.macro_f1:.3f}")
    ax.legend(loc="upper right", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


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


def load_split(model_dir) -> dict[str, list[str]] | None:
    """The train/validation split a model folder records (`split.json`, written by training).

    Returns:
        `{"train": [names], "val": [names]}`, or `None` when the folder has no `split.json`.

    Raises:
        ValueError: `split.json` exists but is not such a mapping.
    """
    path = Path(model_dir) / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        split = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(split, dict) or not all(isinstance(split.get(k, []), list) for k in ("train", "val")):
            raise ValueError("expected {'train': [names], 'val': [names]}")
        return {k: [str(v) for v in split.get(k, [])] for k in ("train", "val")}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: invalid split file ({exc}); repair it, or score every record with --all-records") from None


def evaluate_folder(classifier, data_dir, *, exclude_training: bool = True, fs: float | None = None, on_failure=None):
    """Classify the labelled records of a folder and score them.

    By default the records the model was trained on (`split.json["train"]` in
    its folder) are left out, so the score is a held-out score.

    Args:
        classifier: a loaded :class:`~ecgrhythm.inference.RhythmClassifier`.
        data_dir: folder with records and `REFERENCE.csv` (`record,label` rows).
        exclude_training: leave out the model's training records.
        fs: sampling rate (Hz) of record files without a header.
        on_failure: called as `on_failure(path, reason)` for each record that
            cannot be scored, as it happens (for progress output).

    Returns:
        `(report, prediction, truth)`: the :class:`EvaluationReport` (its
        `info` says how many records were labelled, excluded, unreadable and
        scored, and whether the score is held out), the
        :class:`~ecgrhythm.inference.Prediction` of the scored records and
        their true labels, in the same order.

    Raises:
        RecordError: the folder or its `REFERENCE.csv` cannot be read.
        ValueError: no labelled record could be scored, or `split.json` is invalid.
    """
    from .inference import Prediction, default_model_dir
    from .records import find_records, read_reference
    from .streaming import iter_classify_files

    data_dir = Path(data_dir)
    multilabel = classifier.architecture_.multilabel
    if multilabel:
        reference = _header_labels(data_dir, classifier.classes_)
        if not reference:
            raise ValueError(f"{data_dir}: no record header carries a 'Dx:' line; a multi-label model is scored on records with SNOMED-CT codes")
    else:
        reference = read_reference(data_dir / "REFERENCE.csv")
    paths = [p for p in find_records([data_dir]) if p.stem in reference]
    if not paths:
        raise ValueError(f"{data_dir}: none of its records is labelled (REFERENCE.csv or header 'Dx:' codes); pass a folder of labelled records")
    model_dir = Path(classifier.model_dir) if classifier.model_dir is not None else default_model_dir()
    split = load_split(model_dir)
    excluded = 0
    if exclude_training and split is not None:
        trained = set(split["train"])
        kept = [p for p in paths if p.stem not in trained]
        excluded, paths = len(paths) - len(kept), kept
    elif split is None:
        logger.warning("%s has no %s: the records the model was trained on are unknown, so the score may not be a held-out score", model_dir, SPLIT_FILE)
    failures = []

    def fail(path, reason):
        failures.append({"path": str(path), "reason": reason})
        if on_failure is not None:
            on_failure(str(path), reason)

    usable = []
    for p in paths:
        if multilabel or reference[p.stem] in classifier.classes_:
            usable.append(p)
        else:
            fail(p, f"label {reference[p.stem]!r} in REFERENCE.csv is not one of the model's classes {classifier.classes_}")
    names, labels, probs = [], [], []
    for prediction, bad in iter_classify_files(classifier, usable, fs=fs):
        for path, reason in bad:
            fail(path, reason)
        names += prediction.names
        labels += prediction.labels
        probs.append(prediction.probabilities)
    if not names:
        raise ValueError(f"{data_dir}: no labelled record could be scored ({len(failures)} failed, {excluded} excluded as training records)")
    info = {
        "data": str(data_dir),
        "model": str(model_dir),
        "held_out": bool(split is not None and exclude_training),
        "labelled_records": len(paths) + excluded,
        "excluded_training_records": excluded,
        "failed_records": len(failures),
        "failures": failures,
    }
    failed = {f["path"] for f in failures}
    truth = [reference[p.stem] for p in usable if str(p) not in failed]  # predictions keep input order
    probs = np.concatenate(probs)
    if multilabel:
        targets = np.array([[c in present for c in classifier.classes_] for present in truth], dtype=float)
        report = multilabel_report(targets, probs, classifier.classes_, classifier.thresholds_, info=info)
        truth = [" ".join(c for c in classifier.classes_ if c in present) or "-" for present in truth]
    else:
        report = evaluate_predictions(truth, labels, classifier.classes_, info=info)
    return report, Prediction(names, labels, probs, list(classifier.classes_)), truth


def _header_labels(data_dir: Path, classes) -> dict[str, set[str]]:
    """Class names present in each record of a folder, from its headers' `Dx:` codes (named by the folder's mapping)."""
    from .labels import class_names_of, dx_codes, dx_mapping
    from .records import find_records

    names, _ = dx_mapping(data_dir)
    labels = {}
    for header in (p for p in find_records([data_dir]) if p.suffix.lower() == ".hea"):
        try:
            if header.stat().st_size > 1 << 20:  # no WFDB header is this large
                continue
            comments = [line.lstrip("#").strip() for line in header.read_text(encoding="utf-8", errors="replace").splitlines() if line.startswith("#")]
        except OSError:
            continue
        codes = dx_codes(comments)
        if codes:
            labels[header.stem] = class_names_of(codes, names) & set(classes)
    return labels
