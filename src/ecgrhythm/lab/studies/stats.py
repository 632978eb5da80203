"""The statistics of a report: per-variant summaries, paired differences from the reference, and the plain answer.

Runs are replicates of a variant by `(fold, seed)`: the seeds on one fixed
split, or the folds of a cross-validation with a fixed seed. Summaries are made
for one budget at a time (see :func:`by_budget`).
"""

from __future__ import annotations

import json
import math

import numpy as np

from ecgrhythm.lab.studies.base import STUDIES, pm
from ecgrhythm.lab.studies.store import budget_key
from ecgrhythm.scoring.crossval import paired_difference

__all__ = ["by_budget", "replicate_word", "summarise", "answer"]


def by_budget(rows: list[dict]) -> dict[tuple[int, int], list[dict]]:
    """Rows grouped by budget (see :func:`~ecgrhythm.lab.studies.store.budget_key`), the most epochs first."""
    groups: dict[tuple[int, int], list[dict]] = {}
    for r in rows:
        groups.setdefault(budget_key(r["epochs"], r["train_records"], r.get("fold")), []).append(r)
    return dict(sorted(groups.items(), reverse=True))


def replicate_word(rows: list[dict]) -> str:
    """What the replicates of `rows` are: `"fold"` when they carry folds, else `"seed"`."""
    return "fold" if any(r.get("fold") is not None for r in rows) else "seed"


def _replicate(row: dict) -> tuple:
    return row.get("fold"), row["seed"]


def summarise(rows: list[dict], reference: str | None = None) -> list[dict]:
    """Per variant, in row order: runs, mean and sample standard deviation of the score, mean F1s, median times and size.

    With a `reference` variant, also the paired difference from it: the mean over
    shared replicates (fold and seed) of (score - reference's score), and the
    two-sided p-value of a paired t-test (`nan` with fewer than 2 shared replicates).
    """
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["variant"], []).append(r)
    out = []
    for name, runs in groups.items():
        scores = np.array([r["val_cinc_score"] for r in runs], dtype=float)
        row = {
            "variant": name,
            "runs": len(runs),
            "seeds": {_replicate(r) for r in runs},
            "mean": float(scores.mean()),
            "sd": float(scores.std(ddof=1)) if len(runs) > 1 else float("nan"),
        }
        for key in ("f1_N", "f1_A", "f1_O", "f1_~"):
            row[key] = float(np.mean([r[key] for r in runs]))
        for key in ("seconds_per_epoch", "inference_records_per_s"):  # medians: one run slowed by other load does not move them
            row[key] = float(np.median([r[key] for r in runs]))
        row["parameters"] = runs[0]["parameters"]
        row["config"] = json.loads(runs[0]["config"])
        out.append(row)
    base = {_replicate(r): r["val_cinc_score"] for r in groups.get(reference, [])}
    for row in out:
        pairs = [(r["val_cinc_score"], base[_replicate(r)]) for r in groups[row["variant"]] if _replicate(r) in base]
        row["delta"], row["p"] = _paired(pairs) if row["variant"] != reference else (float("nan"), float("nan"))
    return out


def _paired(pairs) -> tuple[float, float]:
    """Mean difference of `(a, b)` pairs and the p-value of a two-sided paired t-test."""
    return paired_difference(*np.array(pairs, dtype=float).reshape(-1, 2).T)


def answer(name: str, summary: list[dict], margin: float, min_seeds: int = 3, word: str = "seed", reference: str | None = None) -> str:
    """The plain answer the summary supports, by the study's stated rule.

    Only variants run with every replicate of the study (and at least `min_seeds`) take part;
    `word` names the replicates (`"seed"` or `"fold"`); `reference` is the variant the others are
    compared with (default: the study's reference).
    """
    seeds = set().union(*(s["seeds"] for s in summary)) if summary else set()
    if len(seeds) < min_seeds:
        return f"Not answered yet: the runs so far use {len(seeds)} {word}(s), the answer needs {min_seeds}."
    complete = [s for s in summary if s["seeds"] == seeds]
    if not complete:
        return f"Not answered yet: no variant has run with all {len(seeds)} {word}s."
    best = max(complete, key=lambda s: s["mean"])
    close = [s for s in complete if s["mean"] >= best["mean"] - margin]
    spread = max((s["sd"] for s in complete if not math.isnan(s["sd"])), default=float("nan"))
    close_names = "; ".join(f"`{s['variant']}`" for s in close)
    lines = [
        f"Best mean validation CinC score: **{best['variant']}**, {pm(best['mean'], best['sd'])} (mean ± SD over {len(seeds)} {word}s).",
        f"Within the margin of {margin:g} of it: {close_names}. "
        f"The largest {word}-to-{word} SD of any variant is {spread:.3f}; differences smaller than that are not evidence.",
    ]
    reference = reference or STUDIES[name].reference
    clear = [s for s in complete if not math.isnan(s.get("p", float("nan"))) and s["p"] < 0.05]
    if clear:
        lines.append(
            f"Paired {word} by {word} with `{reference}`, these differ clearly (paired t-test p < 0.05): "
            + ", ".join(f"{s['variant']} ({s['delta']:+.3f}, p {s['p']:.3f})" for s in clear)
            + "."
        )
    elif any(s["variant"] == reference for s in complete):
        lines.append(f"Paired {word} by {word} with `{reference}`, no variant differs clearly (paired t-test p < 0.05).")
    lines += STUDIES[name].answer(complete, close, margin, reference)
    if len(complete) < len(summary):
        lines.append(f"Variants not yet run with all {len(seeds)} {word}s are left out of this answer.")
    return "\n".join(lines)
