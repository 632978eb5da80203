"""A study's report: `<study>.csv` (one row per run), `<study>.md` (answer, results, method) and `<study>.png`.

With runs of more than one budget (`epochs`, `train_records`), the answer and
the results table are given per budget, the largest first, and the figure
marks each budget in its own colour.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from ecgrhythm.lab.studies.base import STUDIES, pm
from ecgrhythm.lab.studies.stats import answer, by_budget, replicate_word, summarise
from ecgrhythm.lab.studies.store import CSV_COLUMNS, DEFAULT_STORE, study_rows
from ecgrhythm.utils.io import atomic_write, atomic_write_text

__all__ = ["write_report"]

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")


def write_report(name: str, out_dir, storage=DEFAULT_STORE, *, command: str = "", notes: str = "", min_seeds: int = 3) -> dict[str, Path]:
    """Write `<name>.csv` (one row per recorded run), `<name>.md` and `<name>.png` from the store.

    Returns:
        The paths written, by suffix.
    """
    rows, setup = study_rows(name, storage)
    seeds = sorted({r["seed"] for r in rows})
    if not command:
        b = setup.get("budget", {})
        command = (
            f"ecgrhythm study {name} --epochs {b.get('epochs')} --train-records {b.get('train_records')} "
            f"--seeds {' '.join(map(str, seeds))} --margin {setup.get('margin', 0.01):g}"
        )
    if not rows:
        raise ValueError(f"study {name!r} has no recorded runs yet")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    paths = {"csv": out_dir / f"{name}.csv", "md": out_dir / f"{name}.md", "png": out_dir / f"{name}.png"}
    atomic_write_text(paths["csv"], text.getvalue())
    budgets = {b: (runs, summarise(runs, _reference(name, runs))) for b, runs in by_budget(rows).items()}
    with atomic_write(paths["png"], "wb") as f:
        f.write(_figure(name, budgets))
    atomic_write_text(paths["md"], _markdown(name, rows, budgets, setup, command, notes, min_seeds))
    return paths


def _reference(name: str, runs: list[dict]) -> str:
    """The variant the runs of one budget are compared with: the shipped recipe for full-budget (fold) runs."""
    study = STUDIES[name]
    return study.full_budget_reference() if replicate_word(runs) == "fold" else study.reference


def _budget_title(budget: tuple[int, int], runs: list[dict]) -> str:
    word = replicate_word(runs)
    lo, hi = min(r["train_records"] for r in runs), max(r["train_records"] for r in runs)
    records = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
    return f"{budget[0]} epochs, {records} training records ({len({(r.get('fold'), r['seed']) for r in runs})} {word}s)"


def _figure(name: str, budgets: dict) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(s["variant"] for _, summary in reversed(budgets.values()) for s in summary))
    fig = Figure(figsize=(8, 0.45 * len(names) + 1.4), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for k, (budget, (rows, summary)) in enumerate(reversed(budgets.items())):
        colour = _COLOURS[k % len(_COLOURS)]
        for s in summary:
            i = names.index(s["variant"])
            scores = [r["val_cinc_score"] for r in rows if r["variant"] == s["variant"]]
            label = _budget_title(budget, rows) if len(budgets) > 1 and s is summary[0] else None
            ax.scatter(scores, [i] * len(scores), color=colour, s=18, zorder=3, label=label)
            ax.plot([s["mean"]] * 2, [i - 0.3, i + 0.3], color="#d62728" if len(budgets) == 1 else colour, lw=2, zorder=4)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("validation CinC score (dots: seeds, bar: mean)" if len(budgets) == 1 else "validation CinC score (dots: runs, bar: mean)")
    if len(budgets) > 1:
        ax.legend(loc="best", fontsize="small")
    ax.set_title(f"ecgrhythm study: {name}")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _answers(name: str, budgets: dict, margin: float, min_seeds: int) -> list[str]:
    """The answer section's lines: one answer, or one per budget (the largest first) and whether the best variant changed."""
    answers = {b: answer(name, summary, margin, min_seeds, replicate_word(rows), _reference(name, rows)) for b, (rows, summary) in budgets.items()}
    if len(budgets) == 1:
        return [*answers.values(), ""]
    lines = []
    for b, (rows, _) in budgets.items():
        lines += [f"### {_budget_title(b, rows)}", "", answers[b], ""]
    study = STUDIES[name]
    (big, (_, first)), *others = budgets.items()
    for b, (_, summary) in others:  # compared among the settings run at both budgets
        shared = [s for s in summary if any(study.same_setting(s["config"], t["config"]) for t in first)]
        mine = [t for t in first if any(study.same_setting(s["config"], t["config"]) for s in summary)]
        if not shared or not mine:
            continue
        settings: list[dict] = []
        for t in mine:
            if not any(study.same_setting(t["config"], seen) for seen in settings):
                settings.append(t["config"])
        if len(settings) < 2:
            continue  # one setting run at both budgets compares nothing
        top, s = max(mine, key=lambda t: t["mean"]), max(shared, key=lambda s: s["mean"])
        verb = "the same setting as" if study.same_setting(s["config"], top["config"]) else "not the same setting as"
        among = "" if len(shared) == len(summary) else "Among the variants run at both budgets, t"
        lines += [f"{among or 'T'}he best mean at {big[0]} epochs ({top['variant']}) is {verb} at {b[0]} epochs ({s['variant']}).", ""]
    return lines


def _table(budget, rows, summary, reference: str, several: bool) -> list[str]:
    lines = [f"### {_budget_title(budget, rows)}", ""] if several else []
    lines += [
        f"| variant | runs | CinC score | vs {reference} | F1 N | F1 A | F1 O | F1 ~ | parameters | s/epoch | inference records/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        vs = "" if math.isnan(s["delta"]) else f"{s['delta']:+.3f}" + ("" if math.isnan(s["p"]) else f" (p {s['p']:.2f})")
        lines.append(
            f"| {s['variant']} | {s['runs']} | {pm(s['mean'], s['sd'])} | {vs} | {s['f1_N']:.3f} | {s['f1_A']:.3f} | {s['f1_O']:.3f} | {s['f1_~']:.3f} "
            f"| {s['parameters']:,} | {s['seconds_per_epoch']:.1f} | {s['inference_records_per_s']:.0f} |"
        )
    return lines + ([""] if several else [])


def _full_budget_lines(name: str, runs: list[dict]) -> str:
    folds = sorted({r["fold"] for r in runs})
    return (
        f"- Full budget ({_budget_title((runs[0]['epochs'], 0), runs)}): each run is one fold of `ecgrhythm crossval` "
        f"(folds {', '.join(map(str, folds))} of its seeded stratified folds), trained with the shipped model's recipe and the variant's "
        f"one change (`{STUDIES[name].full_budget_reference()}` is the shipped recipe itself) on every record of the other folds, "
        "for the epochs shown, with the fold as its validation records: the best epoch is chosen on the fold, as `ecgrhythm train` "
        "chooses it on its validation records, so every full-budget score is slightly optimistic, for every variant alike. "
        f"Training seed {', '.join(str(s) for s in sorted({r['seed'] for r in runs}))}; the runs are paired fold by fold. Their s/epoch is the "
        "median fit time of an epoch and their records/s the fold's records over the median validation pass, both from the fold's "
        "training log; their final_loss is the best epoch's and train_seconds includes the validation passes. "
        "Commands: `scripts/full_budget_runs.sh`, then `scripts/full_budget_import.sh`."
    )


def _markdown(name, rows, budgets, setup, command, notes, min_seeds) -> str:
    study = STUDIES[name]
    budget = setup.get("budget", {})
    margin = setup.get("margin", 0.01)
    machines = sorted({r["machine"] for r in rows})
    epochs = budget.get("epochs", 0)
    several = len(budgets) > 1
    lines = [
        f"# Study: {name}",
        "",
        f"**Question.** {study.question}",
        "",
        f"**What changes between runs:** the {study.factor}, and the seed (or, at full budget, the fold). Everything else is fixed.",
        "",
        "## Answer",
        "",
        *_answers(name, budgets, margin, min_seeds),
    ]
    notes = [notes.strip()] if notes else []
    notes += setup.get("notes", [])
    if notes:
        lines += ["## Notes", "", *(f"- {n}" for n in notes), ""]
    lines += [
        "## Results",
        "",
        f"Mean (± sample SD) over seeds (or folds) of the validation CinC score (mean F1 of N, A and O); F1 per class are means; s/epoch and inference records/s are medians over seeds (or folds), so one run slowed by other load on the machine does not move them. "
        f"One row per run is in [`{name}.csv`]({name}.csv).",
        "",
        "The column *vs ...* is the mean difference from the budget's reference with the same seed (or fold), and the p-value of a "
        "paired t-test over them (rough with 3 replicates, and not corrected for the number of variants).",
        "",
    ]
    for b, (runs, summary) in budgets.items():
        lines += _table(b, runs, summary, _reference(name, runs), several)
    if several:
        lines.pop()
    lines += [
        "",
        f"![{name}]({name}.png)",
        "",
        "## What was compared",
        "",
        *study.compared(setup),
        "",
        "## How it was measured",
        "",
        f"- Reduced budget, data: `{Path(setup.get('data', '?')).name}`, one split (seed {budget.get('split_seed')}): every run trains on the same "
        f"{setup.get('n_train')} records (a stratified subset of the training part) and is scored on the same {setup.get('n_val')} validation records.",
        f"- Reduced budget: {budget.get('epochs')} epochs of random {budget.get('window_s'):g} s windows, batch {budget.get('batch_size')}, "
        f"Adam {budget.get('learning_rate'):g} on a cosine decay, balanced class weights; scored after the last epoch. "
        "The budget is reduced so that a study fits in hours on a 2-core CPU: scores are below those of a full training, "
        "and the study compares settings, not final models.",
        *(
            f"- Also run: {_budget_title(b, runs)}."
            for b, (runs, _) in budgets.items()
            if b != (epochs, setup.get("n_train")) and replicate_word(runs) == "seed"
        ),
        *(_full_budget_lines(name, runs) for b, (runs, _) in budgets.items() if replicate_word(runs) == "fold"),
        f"- Seeds of the reduced budget: {', '.join(str(s) for s in sorted({r['seed'] for r in rows if r.get('fold') is None}))} "
        "(weights and windows; the split stays fixed).",
        f"- Margin: {margin:g} in mean CinC score.",
        ("- s/epoch leaves out the first epoch (it includes compiling). " if epochs > 1 else "- s/epoch includes compiling (one epoch per run). ")
        + "Inference records/s is a second, warm pass over the validation records: the strategy's input transform and the network, not reading the files.",
        f"- Machine: {'; '.join(machines)}." + (" The runs come from several machines: compare times only within one." if len(machines) > 1 else ""),
    ]
    if command:
        lines += [f"- Command: `{command}`"]
    return "\n".join(lines) + "\n"
