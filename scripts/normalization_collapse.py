"""Why did min-max and unscaled input collapse at validation in the reduced-budget normalisation study?

Hypothesis: the BatchNormalization layers' moving statistics start at mean 0 and variance 1 and move
1 % a step (Keras' momentum 0.99). After the 250 steps of a reduced-budget run, about 8 % of the
starting values remain. That is harmless when the first convolution sees z-scored input of unit
scale, but not when it sees [-1, 1] or millivolts, whose convolution outputs are far from unit
variance: at validation the network then normalises with statistics that its training batches never had.

Test, without retraining anything else:
1. Reproduce the reduced-budget runs of `zscore/raw`, `minmax/raw` and `none/raw` (seed 0, the study's
   split and budget) and score each on the validation records as trained (this should equal the
   published study CSV).
2. Re-estimate only the BatchNormalization moving statistics from the training records (the cumulative
   mean of the batch statistics over one pass of training windows; every weight unchanged) and score again.
   If the collapse is the moving statistics, this recovers it; if it is the weights, it does not.
3. Beside them, the per-epoch validation scores of the full-budget runs (the `crossval` folders of
   `scripts/full_budget_runs.sh`), to see whether and when the collapse happens with the full data.

Writes docs/studies/normalization-collapse.json and .png. Run from the checkout:

    .venv/bin/python scripts/normalization_collapse.py [--data DIR] [--full-budget runs/full-budget] [--curves-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

VARIANTS = ("zscore/raw", "minmax/raw", "none/raw")
FULL_BUDGET = {"zscore/raw": "shipped", "minmax/raw": "minmax", "none/raw": "none"}
COLOURS = {"zscore/raw": "#1f77b4", "minmax/raw": "#d62728", "none/raw": "#7f7f7f"}


def reestimate_batchnorm(model, sequence) -> int:
    """Replace every BatchNormalization layer's moving mean and variance by the mean of its batch statistics
    over one pass of `sequence` (training-mode forward passes; no weight changes). Returns the batches used."""
    import keras

    layers = [la for la in model._flatten_layers(include_self=False, recursive=True) if isinstance(la, keras.layers.BatchNormalization)]
    saved = [la.momentum for la in layers]
    for k in range(len(sequence)):
        for la in layers:
            la.momentum = k / (k + 1)  # moving = cumulative mean of the batch statistics
        inputs = sequence[k][0]
        model(inputs, training=True)
    for la, momentum in zip(layers, saved):
        la.momentum = momentum
    return len(sequence)


def published(name: str, seed: int):
    """The score of that run in the published study CSV (`docs/studies/normalization.csv`), if listed."""
    with open(Path(__file__).resolve().parents[1] / "docs" / "studies" / "normalization.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["variant"] == name and int(row["seed"]) == seed and not row.get("fold") and row["epochs"] == "4":
                return float(row["val_cinc_score"])
    return None


def reduced_budget(data_dir, seed: int) -> dict:
    import numpy as np

    from ecgrhythm.lab.studies import STUDIES, Budget, load_study_data
    from ecgrhythm.lab.studies.runner import fit_variant
    from ecgrhythm.preprocessing.batching import WindowSequence
    from ecgrhythm.scoring.metrics import score_probabilities

    budget = Budget()
    data = load_study_data(data_dir, budget)
    variants = {v.name: v for v in STUDIES["normalization"].variants()}
    y_val = data.records.targets[data.val_idx]
    out = {}
    for name in VARIANTS:
        t0 = time.perf_counter()
        model, strategy, signals, _, loss = fit_variant(data, variants[name], seed, budget)
        val = [signals[i] for i in data.val_idx]
        before, f1_before, _ = score_probabilities(y_val, strategy.predict(model, val), data.records.classes)
        train_signals, window = strategy.training([signals[i] for i in data.train_idx])
        y_train = data.records.targets[data.train_idx]
        sequence = WindowSequence(train_signals, y_train, window=window, batch_size=budget.batch_size, seed=seed + 1)
        batches = reestimate_batchnorm(model, sequence)
        after, f1_after, _ = score_probabilities(y_val, strategy.predict(model, val), data.records.classes)
        first = np.concatenate([s[:, 0] for s in (signals[i] for i in data.train_idx[:200])])
        out[name] = {
            "val_cinc_score": round(before, 5),
            "published_val_cinc_score": published(name, seed),
            "f1": {k: round(v, 4) for k, v in f1_before.items()},
            "val_cinc_score_after_batchnorm_reestimated": round(after, 5),
            "f1_after": {k: round(v, 4) for k, v in f1_after.items()},
            "final_loss": round(loss, 5),
            "reestimation_batches": batches,
            "input_sd_first_200_training_records": round(float(first.std()), 4),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(name, out[name], flush=True)
    return out


def full_budget_curves(folder: Path) -> dict:
    curves = {}
    for name, run in FULL_BUDGET.items():
        for log in sorted((folder / run).glob("fold*/training_log.csv")):
            with open(log, newline="") as f:
                rows = list(csv.DictReader(f))
            curves.setdefault(name, {})[log.parent.name] = [float(r["val_cinc_score"]) for r in rows]
    return curves


def figure(reduced: dict, curves: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ecgrhythm.utils.io import atomic_write

    fig = Figure(figsize=(11, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    names = list(reduced)
    x = range(len(names))
    ax1.bar([i - 0.2 for i in x], [reduced[n]["val_cinc_score"] for n in names], 0.4, label="as trained", color="#bbbbbb")
    ax1.bar(
        [i + 0.2 for i in x],
        [reduced[n]["val_cinc_score_after_batchnorm_reestimated"] for n in names],
        0.4,
        label="BatchNorm statistics re-estimated",
        color=[COLOURS[n] for n in names],
    )
    ax1.set_xticks(list(x), names)
    ax1.set_ylabel("validation CinC score")
    ax1.set_ylim(0, 1)
    ax1.set_title("reduced budget (4 epochs, 2,000 records, seed 0)", fontsize=10)
    ax1.legend(fontsize="small", loc="upper left")
    for name, folds in curves.items():
        for k, (_fold, scores) in enumerate(sorted(folds.items())):
            ax2.plot(range(1, len(scores) + 1), scores, color=COLOURS[name], alpha=0.8, lw=1.3, label=name if k == 0 else None)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("validation CinC score (fold)")
    ax2.set_ylim(0, 1)
    ax2.set_title("full budget: every epoch of each fold (15 epochs, ~5,800 records)", fontsize=10)
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")


def main(argv=None) -> int:
    from ecgrhythm.config import default_data_dir
    from ecgrhythm.utils.io import atomic_write_text
    from ecgrhythm.utils.machine import describe

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=None, help="CinC 2017 folder (default: the shared data)")
    p.add_argument("--full-budget", default="runs/full-budget", help="folder of the full-budget crossval runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="docs/studies/normalization-collapse", help="path of the .json and .png, without suffix")
    p.add_argument("--curves-only", action="store_true", help="reuse the reduced-budget results of the existing JSON; only reread the curves")
    args = p.parse_args(argv)
    data = Path(args.data) if args.data else default_data_dir() / "cinc2017"
    out = Path(args.output)
    if args.curves_only:  # keep the reduced-budget part of the last run, redraw with the full-budget runs finished since
        reduced = json.loads(out.with_suffix(".json").read_text())["reduced_budget"]
    else:
        reduced = reduced_budget(data, args.seed)
    curves = full_budget_curves(Path(args.full_budget))
    result = {"seed": args.seed, "machine": describe(), "reduced_budget": reduced, "full_budget_val_cinc_per_epoch": curves}
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    figure(reduced, curves, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
