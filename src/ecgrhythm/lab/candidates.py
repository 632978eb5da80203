"""The table that compares the cross-validated recipes: `candidates.md` and `candidates.csv`, regenerated from every `*/report.json`.

One row per recipe (see :func:`write_candidates`), with its paired difference per fold from a reference recipe
run on the same folds; the reports themselves are written by :mod:`ecgrhythm.lab.crossval_report`.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from ecgrhythm.lab.crossval_report import DEFAULT_RESULTS, REPORT_FILE, interval_text
from ecgrhythm.scoring.crossval import paired_difference
from ecgrhythm.utils.io import atomic_write_text, csv_writer

__all__ = ["write_candidates", "CANDIDATES"]

CANDIDATES = "candidates"


def _paired(rows: dict, reference: dict, key: str = "score") -> tuple[float, float, int]:
    """`(mean difference, p of the paired t-test, folds)` of a recipe's fold scores `key` minus the reference's, over the
    folds where both have it."""
    ours = {f["fold"]: f[key] for f in rows["folds"] if f.get(key) is not None}
    theirs = {f["fold"]: f[key] for f in reference["folds"] if f.get(key) is not None}
    common = sorted(set(ours) & set(theirs))
    return *paired_difference([ours[k] for k in common], [theirs[k] for k in common]), len(common)


def _difference_cell(row: dict, reference: str, prefix: str) -> str:
    """The table's cell of a row's paired difference `prefix + "difference"` from the reference (blank in the prior-corrected
    column of a reference that has no prior-corrected scores)."""
    if row["recipe"] == reference:
        return "reference" if not prefix or row["last_epoch_prior_mean"] != "" else ""
    if row[f"{prefix}difference"] == "":
        return "not paired" if not prefix else ""
    n = row[f"{prefix}paired_folds"]
    return f"{row[f'{prefix}difference']:+.4f} ({n} fold{'s' if n > 1 else ''})"


def write_candidates(results_dir=None, reference: str = "baseline") -> dict[str, Path]:
    """Regenerate `candidates.md` and `candidates.csv` from every `*/report.json` under `results_dir`.

    One row per recipe: its name, folds (finished and in all: a partial report shows "3 of 5"), mean ±
    95 % half-width, mean at the last trained epoch (blank for reports written before it was recorded, and for
    ensembles of cross-validations whose members had no last-epoch probabilities),
    mean at the last epoch with the prior correction (blank for reports written before it), and its paired
    differences per fold from the recipe named `reference` over the folds both finished, of the scores and of the
    prior-corrected last-epoch scores, with the paired t-test's p-values (blank where the reference is missing,
    was run on other folds or lacks those scores).

    Returns:
        `{"csv": path, "markdown": path}`.
    """
    results_dir = Path(results_dir) if results_dir is not None else DEFAULT_RESULTS
    reports = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results_dir.glob(f"*/{REPORT_FILE}"))]
    by_name = {r["name"]: r for r in reports}
    ref = by_name.get(reference)
    rows = []
    for r in reports:
        row = {
            "recipe": r["name"],
            "folds": len(r["folds"]),
            "folds_total": r.get("folds_total", len(r["folds"])),  # reports before partial ones: every fold
            "mean": round(r["mean"], 4),
            "ci95": round(r["ci95"], 4) if r["ci95"] is not None else "",  # null: one fold
            "last_epoch_mean": round(r["last_epoch_mean"], 4) if r.get("last_epoch_mean") is not None else "",
            "last_epoch_prior_mean": round(r["last_epoch_prior_mean"], 4) if r.get("last_epoch_prior_mean") is not None else "",
            "pooled": round(r["pooled"]["score"], 4),
            "ece": round(r["pooled"]["ece"], 4),
            "reference": reference,
            "difference": "",
            "p_value": "",
            "paired_folds": "",
            "prior_difference": "",
            "prior_p_value": "",
            "prior_paired_folds": "",
            "taught": "yes" if isinstance(r.get("recipe"), dict) and "teacher" in r["recipe"] else "",
        }
        if ref is not None and r["name"] != reference and r["folds_digest"] == ref["folds_digest"]:
            for key, prefix in (("score", ""), ("last_epoch_prior_score", "prior_")):
                diff, p, n = _paired(r, ref, key)
                if n:  # no fold in common: not paired
                    row.update(
                        {f"{prefix}difference": round(diff, 4), f"{prefix}p_value": "" if math.isnan(p) else round(p, 4), f"{prefix}paired_folds": n}
                    )
        rows.append(row)
    out = io.StringIO()
    fields = list(rows[0]) if rows else ["recipe"]
    writer = csv_writer(out)
    writer.writerow(fields)
    writer.writerows([row.get(k, "") for k in fields] for row in rows)
    lines = _markdown(rows, reference)
    paths = {"csv": results_dir / f"{CANDIDATES}.csv", "markdown": results_dir / f"{CANDIDATES}.md"}
    atomic_write_text(paths["csv"], out.getvalue())
    atomic_write_text(paths["markdown"], "\n".join(lines) + "\n")
    return paths


def _markdown(rows: list[dict], reference: str) -> list[str]:
    """The lines of `candidates.md`: its preamble and one table row per recipe of `rows`."""
    lines = [
        "# Cross-validated recipes",
        "",
        f"One row per recipe run by `ecgrhythm crossval` (regenerated from `*/report.json`); differences are paired by fold "
        f"against `{reference}` on the folds both finished (paired t-test). The mean is that of the epochs kept on each "
        "fold's own records (slightly optimistic); the last-epoch mean is that of models trained the same epochs and kept "
        "at the last, and the prior-corrected one that of those models with the prior correction (each fold's probabilities "
        "multiplied by the other folds' class frequencies), the shipped model's recipe, paired with the reference where both "
        'have it (reports written before it was recorded leave it blank). A partial report shows its finished folds as "3 of 5".',
        "",
        "| recipe | folds | mean ± 95 % CI | last-epoch mean | last epoch, prior-corrected | pooled | ECE | difference from reference | p "
        "| difference, last epoch prior-corrected | p |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        diff, prior_diff = (_difference_cell(row, reference, prefix) for prefix in ("", "prior_"))
        p, prior_p = (f"{row[key]:.3f}" if row[key] != "" else "" for key in ("p_value", "prior_p_value"))
        folds = f"{row['folds']} of {row['folds_total']}" if row["folds"] < row["folds_total"] else str(row["folds"])
        last, prior = (f"{row[key]:.4f}" if row[key] != "" else "" for key in ("last_epoch_mean", "last_epoch_prior_mean"))
        half = row["ci95"] if row["ci95"] != "" else None
        name = row["recipe"] + (" †" if row["taught"] else "")
        lines.append(
            f"| {name} | {folds} | {interval_text(row['mean'], half)} | {last} | {prior} | {row['pooled']:.4f} | {row['ece']:.4f} "
            f"| {diff} | {p} | {prior_diff} | {prior_p} |"
        )
    if any(row["taught"] for row in rows):
        lines += [
            "",
            "† A student: trained on a teacher's out-of-fold probabilities beside the labels (`--teacher`). Its estimate is "
            "slightly optimistic: the teacher network that labelled a training record trained on the fold being scored.",
        ]
    return lines
