"""Scoring AF episodes on a folder of records with rhythm annotations (`evaluate --task episodes`).

Per record and overall: the CPSC 2021 score (:mod:`ecgrhythm.scoring.episodes`),
the AF burden error, episode sensitivity and precision (a true episode is
found when a predicted one overlaps it, and the other way round) and the F1 of
episode boundaries (onsets and ends inside the record) within 3 s, and the AF F1
per second (whole seconds, :func:`~ecgrhythm.scoring.episodes.af_seconds`). Written as
JSON and a figure; :func:`format_episode_report` gives the text table.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import numpy as np

from ecgrhythm.config import portable_path
from ecgrhythm.episodes.annotations import read_rhythm_annotations
from ecgrhythm.episodes.files import iter_file_episodes
from ecgrhythm.episodes.finder import EpisodeParams
from ecgrhythm.inference.classifier import default_model_dir
from ecgrhythm.records import failure_reason, find_records
from ecgrhythm.scoring.episodes import RECORD_CLASSES, af_burden, af_seconds, boundary_hits, cpsc2021_record_score, episode_overlaps
from ecgrhythm.utils.io import atomic_write, atomic_write_text

__all__ = [
    "EpisodeReport",
    "annotated_records",
    "evaluate_episodes_folder",
    "score_record",
    "summarise_records",
    "format_episode_report",
    "write_episode_report",
    "BOUNDARY_TOLERANCE_S",
]

BOUNDARY_TOLERANCE_S = 3.0
REPORT_JSON, REPORT_FIGURE = "episodes.json", "episodes.png"


@dataclasses.dataclass
class EpisodeReport:
    """Episode scores of a folder.

    Attributes:
        records: one dict per scored record (see :func:`score_record`).
        overall: `cpsc2021_score` (mean), `burden_error` (mean absolute, share
            of time), `episode_sensitivity`, `episode_precision`,
            `boundary_f1` (within `BOUNDARY_TOLERANCE_S`), `af_f1_per_second`, `class_accuracy`, `n_records`
            (:func:`summarise_records`).
        info: data folder, model, lead and failures.
    """

    records: list[dict]
    overall: dict
    info: dict

    def to_dict(self) -> dict:
        return {"overall": self.overall, "records": self.records, "info": self.info}


def score_record(episodes, truth) -> dict:
    """Scores of one record's :class:`~ecgrhythm.episodes.finder.RecordEpisodes` against its
    :class:`~ecgrhythm.episodes.annotations.RhythmAnnotations`."""
    pred = episodes.af_endpoints()
    true = truth.af_intervals()
    cpsc = cpsc2021_record_score(pred, truth.n_samples, truth.samples, truth.af_starts, truth.af_ends, truth.record_class)
    found, matching = episode_overlaps(true, pred)
    true_points, pred_points = _inner_boundaries(true, truth.n_samples), _inner_boundaries(pred, truth.n_samples)
    true_burden, pred_burden = af_burden(true, truth.n_samples), episodes.af_burden
    tp, fp, fn = af_seconds(true, pred, truth.n_samples, truth.fs)
    return {
        "record": truth.record_name,
        "lead": episodes.lead,
        "true_class": RECORD_CLASSES[truth.record_class],
        "predicted_class": RECORD_CLASSES[cpsc["predicted_class"]],
        "cpsc2021_score": cpsc["score"],
        "class_score": cpsc["class_score"],
        "endpoint_score": cpsc["endpoint_score"],
        "true_burden": true_burden,
        "predicted_burden": pred_burden,
        "burden_error": abs(pred_burden - true_burden),
        "true_episodes": len(true),
        "predicted_episodes": len(pred),
        "found_episodes": found,
        "matching_predictions": matching,
        "true_boundaries": len(true_points),
        "predicted_boundaries": len(pred_points),
        "boundary_hits": boundary_hits(true_points, pred_points, BOUNDARY_TOLERANCE_S * truth.fs),
        "af_seconds_tp": tp,
        "af_seconds_fp": fp,
        "af_seconds_fn": fn,
    }


def _inner_boundaries(intervals, n_samples: int) -> list[int]:
    """Onsets and ends of `[onset, end]` intervals that lie inside the record (not at its first or last sample)."""
    return [int(x) for x in np.asarray(intervals).ravel() if 0 < x < n_samples - 1]


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def annotated_records(data_dir) -> list[Path]:
    """The WFDB headers of a folder's records that have a `.atr` rhythm annotation file beside them.

    Raises:
        ValueError: there is none.
    """
    paths = [p for p in find_records([Path(data_dir)]) if p.suffix.lower() == ".hea" and p.with_suffix(".atr").is_file()]
    if not paths:
        raise ValueError(f"{data_dir}: no WFDB record with a .atr rhythm annotation file; pass a folder such as the cpsc2021 sample")
    return paths


def evaluate_episodes_folder(classifier, data_dir, *, lead=None, params: EpisodeParams | None = None, on_failure=None) -> EpisodeReport:
    """Find the AF episodes of every annotated record of a folder, as `ecgrhythm episodes` gives them, and score them.

    The episodes scored are those the command writes (:func:`~ecgrhythm.episodes.files.iter_file_episodes`): the
    record-level rule's (a record as short as the networks' training records keeps their label, and its episodes
    follow it), on the lead chosen per stretch of a long multi-lead record.

    Args:
        classifier: a loaded single-lead :class:`~ecgrhythm.inference.classifier.RhythmClassifier` with an `A` class.
        data_dir: folder of WFDB records with `.atr` rhythm annotations.
        lead: lead name or index (default: lead I, else the first, unless it is unusable and another is clean).
        params: the episode finder's settings (default: `EpisodeParams()`).
        on_failure: called as `on_failure(path, reason)` for a record that cannot be scored.

    Raises:
        ValueError: the folder has no annotated record, or none could be scored.
    """
    data_dir = Path(data_dir)
    params = params if params is not None else EpisodeParams()
    paths = annotated_records(data_dir)
    rows, failures, truths = [], [], {}

    def failed(path, reason: str) -> None:
        failures.append({"path": str(path), "reason": reason})
        if on_failure is not None:
            on_failure(str(path), reason)

    for path in paths:
        try:
            truths[path] = read_rhythm_annotations(path)
        except Exception as exc:  # one bad record fails alone, whatever its kind
            failed(path, failure_reason(exc))
    # the episodes `ecgrhythm episodes` writes: the record-level rule's, on the lead chosen per stretch of a long record
    for path, found in iter_file_episodes(classifier, list(truths), lead=lead, params=params, on_failure=failed, paired=True):
        try:
            rows.append(score_record(found, truths[path]))
        except Exception as exc:
            failed(path, failure_reason(exc))
    if not rows:
        raise ValueError(f"{data_dir}: no annotated record could be scored ({len(failures)} failed)")
    overall = summarise_records(rows)
    model_dir = classifier.model_dir if classifier.model_dir is not None else default_model_dir()
    info = {
        "data": str(data_dir),
        "model": portable_path(model_dir),
        "lead": lead,
        "params": dataclasses.asdict(params),
        "failed_records": len(failures),
        "failures": failures,
    }
    return EpisodeReport(rows, overall, info)


def summarise_records(rows: list[dict]) -> dict:
    """The overall scores of :func:`score_record` rows: means over records, and ratios of counts summed over them.

    Returns:
        `n_records`, `cpsc2021_score` (mean), `burden_error` (mean absolute), `episode_sensitivity`,
        `episode_precision`, `boundary_f1`, `af_f1_per_second` (`None` where a ratio has no denominator) and `class_accuracy`.
    """
    keys = (
        "true_episodes",
        "predicted_episodes",
        "found_episodes",
        "matching_predictions",
        "true_boundaries",
        "predicted_boundaries",
        "boundary_hits",
    )
    total = {k: sum(r[k] for r in rows) for k in (*keys, "af_seconds_tp", "af_seconds_fp", "af_seconds_fn")}
    return {
        "n_records": len(rows),
        "cpsc2021_score": float(np.mean([r["cpsc2021_score"] for r in rows])),
        "burden_error": float(np.mean([r["burden_error"] for r in rows])),
        "episode_sensitivity": _ratio(total["found_episodes"], total["true_episodes"]),
        "episode_precision": _ratio(total["matching_predictions"], total["predicted_episodes"]),
        "boundary_f1": _ratio(2 * total["boundary_hits"], total["true_boundaries"] + total["predicted_boundaries"]),
        "af_f1_per_second": _ratio(2 * total["af_seconds_tp"], 2 * total["af_seconds_tp"] + total["af_seconds_fp"] + total["af_seconds_fn"]),
        "class_accuracy": float(np.mean([r["true_class"] == r["predicted_class"] for r in rows])),
    }


def format_episode_report(report: EpisodeReport) -> str:
    """The per-record table and the overall scores as text."""
    lines = [f"{'record':<14} {'true class':<11} {'predicted':<11} {'CPSC':>5} {'burden':>7} {'pred':>7} {'episodes':>9} {'found':>6}"]
    for r in report.records:
        lines.append(
            f"{r['record']:<14} {r['true_class']:<11} {r['predicted_class']:<11} {r['cpsc2021_score']:>5.2f} "
            f"{r['true_burden']:>7.1%} {r['predicted_burden']:>7.1%} {r['true_episodes']:>4}/{r['predicted_episodes']:<4} {r['found_episodes']:>6}"
        )
    o = report.overall

    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    lines += [
        "",
        f"CPSC 2021 score {o['cpsc2021_score']:.3f} over {o['n_records']} records (best possible 3 per one-episode record)",
        f"AF burden error {o['burden_error']:.1%} (mean absolute); record class accuracy {o['class_accuracy']:.1%}",
        (
            f"episode sensitivity {fmt(o['episode_sensitivity'], '.3f')}, precision {fmt(o['episode_precision'], '.3f')}; "
            f"boundary F1 within {BOUNDARY_TOLERANCE_S:g} s {fmt(o['boundary_f1'], '.3f')}; "
            f"AF F1 per second {fmt(o.get('af_f1_per_second'), '.3f')}"
        ),
    ]
    return "\n".join(lines)


def write_episode_report(report: EpisodeReport, out_dir) -> dict[str, Path]:
    """Write `episodes.json` and `episodes.png` (score per record; true against predicted burden) atomically.

    Returns:
        `{"json": path, "figure": path}`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    json_path, figure_path = out_dir / REPORT_JSON, out_dir / REPORT_FIGURE
    atomic_write_text(json_path, json.dumps(report.to_dict(), indent=2) + "\n")
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    FigureCanvasAgg(fig)
    ax_score, ax_burden = fig.subplots(1, 2, width_ratios=(1.6, 1))
    names = [r["record"] for r in report.records]
    colors = {"non-AF": "tab:gray", "persistent": "tab:red", "paroxysmal": "tab:orange"}
    ax_score.bar(range(len(names)), [r["cpsc2021_score"] for r in report.records], color=[colors[r["true_class"]] for r in report.records])
    ax_score.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax_score.axhline(
        report.overall["cpsc2021_score"], color="black", linestyle="--", linewidth=1, label=f"mean {report.overall['cpsc2021_score']:.3f}"
    )
    ax_score.set_ylabel("CPSC 2021 score")
    ax_score.set_title("Score per record (grey non-AF, red persistent, orange paroxysmal)")
    ax_score.legend(loc="lower left")
    true_b = [100 * r["true_burden"] for r in report.records]
    pred_b = [100 * r["predicted_burden"] for r in report.records]
    ax_burden.scatter(true_b, pred_b, c=[colors[r["true_class"]] for r in report.records])
    ax_burden.plot([0, 100], [0, 100], color="black", linewidth=0.8)
    ax_burden.set_xlim(-3, 103)
    ax_burden.set_ylim(-3, 103)
    ax_burden.set_xlabel("true AF burden (%)")
    ax_burden.set_ylabel("predicted AF burden (%)")
    ax_burden.set_title(f"AF burden (mean error {report.overall['burden_error']:.1%})")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    with atomic_write(figure_path, "wb") as f:
        f.write(buffer.getvalue())
    return {"json": json_path, "figure": figure_path}
