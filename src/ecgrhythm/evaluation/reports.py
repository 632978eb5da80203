"""Evaluation reports for people: text tables, figures and JSON.

`write_report` writes `evaluation.json` (the report's data) and
`evaluation.png` (confusion matrix, F1 per class and a reliability diagram, or,
for a multi-label model, F1, AUROC and average precision per class). Figures
are drawn on matplotlib's Agg canvas, with no display and no global backend change.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from ecgrhythm.scoring.calibration import Calibration
from ecgrhythm.scoring.metrics import CINC2017_SCORED, MultilabelReport
from ecgrhythm.utils.io import atomic_write, atomic_write_text

__all__ = ["format_report", "write_report", "draw_reliability", "REPORT_JSON", "REPORT_FIGURE"]

REPORT_JSON = "evaluation.json"
REPORT_FIGURE = "evaluation.png"


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
    if report.calibration is not None:
        lines.append(f"top-class expected calibration error ({len(report.calibration.count)} bins): {report.calibration.ece:.4f}")
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
    lines = [
        f"macro F1 (per-class thresholds): {report.macro_f1:.4f}   macro AUROC: {fmt(report.macro_auroc).strip()}   "
        f"macro average precision: {fmt(report.macro_average_precision).strip()}   records: {report.n_records}",
        "",
    ]
    width = max(5, *(len(c) for c in report.classes))
    lines.append(f"{'class':<{width}}  {'true':>5}  {'pred':>5}  {'thresh':>6}  {'F1':>6}  {'AUROC':>6}  {'AP':>6}")
    for c in report.classes:
        lines.append(
            f"{c:<{width}}  {report.true_counts[c]:>5d}  {report.predicted_counts[c]:>5d}  {report.thresholds[c]:>6.2f}  "
            f"{report.f1[c]:>6.4f}  {fmt(report.auroc[c])}  {fmt(report.average_precision[c])}"
        )
    return "\n".join(lines)


def write_report(report, out_dir) -> dict[str, Path]:
    """Write `evaluation.json` and `evaluation.png` into `out_dir`, each atomically.

    For one label per record, the figure shows the confusion matrix as a heatmap
    with the counts in its cells, a bar chart of the per-class F1 and, when the
    report has probabilities, a reliability diagram of the top class.

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
    calibration = report.calibration
    fig = Figure(figsize=(10 if calibration is None else 14.5, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    if calibration is None:
        ax_cm, ax_f1 = fig.subplots(1, 2, width_ratios=(1.1, 1))
    else:
        ax_cm, ax_f1, ax_rel = fig.subplots(1, 3, width_ratios=(1.1, 1, 1))
        draw_reliability(ax_rel, calibration)

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
    return _png(fig)


def draw_reliability(ax, calibration: Calibration, label: str | None = None) -> None:
    """Draw a reliability diagram on a matplotlib axes: accuracy against confidence per bin.

    Bars show the accuracy of the records in each non-empty bin, at the bin's
    mean confidence; the diagonal is perfect calibration.

    Args:
        ax: a matplotlib `Axes`.
        calibration: the bins, from :func:`ecgrhythm.scoring.calibration.top_class_calibration`.
        label: legend label of the bars (default: the ECE).
    """
    edges, count = np.asarray(calibration.edges), np.asarray(calibration.count)
    filled = count > 0
    width = np.diff(edges)
    ax.plot([0, 1], [0, 1], color="tab:gray", linestyle="--", linewidth=1, label="perfect calibration")
    ax.bar(
        edges[:-1][filled],
        np.asarray(calibration.accuracy)[filled],
        width=width[filled],
        align="edge",
        color="tab:blue",
        edgecolor="white",
        alpha=0.8,
        label=label or f"accuracy (ECE {calibration.ece:.3f})",
    )
    ax.plot(
        np.asarray(calibration.confidence)[filled],
        np.asarray(calibration.accuracy)[filled],
        "o",
        color="tab:red",
        markersize=3,
        label="mean confidence of the bin",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("top-class probability (confidence)")
    ax.set_ylabel("share of records correct (accuracy)")
    ax.set_title(f"Reliability ({int(count.sum())} records, {len(count)} bins)")
    ax.legend(loc="upper left", fontsize=8)


def _png(fig) -> bytes:
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
    for offset, (name, values) in zip(
        (-0.27, 0, 0.27), (("F1", report.f1), ("AUROC", report.auroc), ("average precision", report.average_precision))
    ):
        ax.bar(x + offset, [values[c] or 0.0 for c in classes], width=0.26, label=name)
    ax.set_xticks(x, [f"{c}\n({report.true_counts[c]})" for c in classes], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.set_xlabel("class (records in which it is present)")
    ax.set_title(f"Per-class scores, {report.n_records} records: macro F1 {report.macro_f1:.3f}")
    ax.legend(loc="upper right", fontsize=8)
    return _png(fig)
