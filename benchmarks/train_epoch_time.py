"""Training time per epoch with the default configuration, on real records.

Runs `ecgrhythm.training.trainer.train` for `--epochs` epochs (default model,
preprocessing and training settings, so the numbers describe the shipped
model's training) into a temporary folder, then reads the run's
`training_log.csv`. The first epoch includes compiling the training step and
the validation shapes, so it is reported apart from the later epochs.

Prints one JSON line; `--output FILE.json` also writes it to a file.

Example:
    python benchmarks/train_epoch_time.py --data ../shared/data/cinc2017 --limit 1000 --epochs 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, fail, machine


def epoch_rows(model_dir: Path) -> list[dict]:
    """Per-epoch rows of the run's `training_log.csv` (fit and validation seconds as floats)."""
    from ecgrhythm.networks.saving import LOG_FILE

    with open(model_dir / LOG_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{"epoch": int(r["epoch"]), "fit_s": float(r["fit_seconds"]), "val_s": float(r["val_seconds"])} for r in rows]


def summarise(rows: list[dict], n_train: int) -> dict:
    first, later = rows[0], rows[1:]
    out = {
        "first_epoch": {"fit_s": first["fit_s"], "val_s": first["val_s"], "total_s": round(first["fit_s"] + first["val_s"], 2)},
        "later_epochs": None,
        "seconds_per_epoch": None,
    }
    if later:
        fit = statistics.mean(r["fit_s"] for r in later)
        val = statistics.mean(r["val_s"] for r in later)
        out["later_epochs"] = {
            "n": len(later),
            "fit_s": [r["fit_s"] for r in later],
            "val_s": [r["val_s"] for r in later],
            "fit_s_mean": round(fit, 2),
            "val_s_mean": round(val, 2),
            "train_records_per_s": round(n_train / fit, 2),
        }
        out["seconds_per_epoch"] = round(fit + val, 2)
        out["first_epoch_overhead_s"] = round(first["fit_s"] + first["val_s"] - fit - val, 2)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="Prints one JSON line of results.")
    parser.add_argument("--data", required=True, help="labelled folder (records + REFERENCE.csv), e.g. the CinC 2017 training set")
    parser.add_argument("--limit", type=int, help="use only the first N labelled records (default: all)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs to run, at least 2 for a steady-state time (default %(default)s)")
    parser.add_argument("--workdir", help="keep the run in this new folder (default: a temporary folder, removed afterwards)")
    parser.add_argument("--output", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    if args.epochs < 1 or (args.limit is not None and args.limit < 2):
        fail("--epochs must be at least 1 and --limit at least 2")
    data = Path(args.data)
    if not (data / "REFERENCE.csv").is_file():
        fail(f"--data {data}: no REFERENCE.csv there (pass a labelled folder)")
    if args.workdir and Path(args.workdir).exists():
        fail(f"--workdir {args.workdir} exists: pass a new folder")

    from ecgrhythm.config import PreprocessConfig, TrainConfig
    from ecgrhythm.networks.registry import default_config
    from ecgrhythm.training.trainer import train

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="ecgrhythm-bench-"))
    tc = TrainConfig(epochs=args.epochs, patience=args.epochs)  # never stop early: every epoch is timed
    try:
        t0 = time.perf_counter()
        result = train(data, work / "model", train_config=tc, limit=args.limit, verbose=0)
        wall = time.perf_counter() - t0
        rows = epoch_rows(result.model_dir)
        metadata = json.loads((result.model_dir / "config.json").read_text()).get("metadata", {})
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    n_train = int(metadata.get("n_train", 0))
    out = {
        "benchmark": "train_epoch_time",
        "data": str(data.resolve()),
        "limit": args.limit,
        "epochs": len(rows),
        "n_train": n_train,
        "n_val": metadata.get("n_val"),
        "parameters": metadata.get("parameters"),
        **summarise(rows, n_train),
        "epochs_log": rows,
        "wall_s": round(wall, 2),
        "outside_epochs_s": round(wall - sum(r["fit_s"] + r["val_s"] for r in rows), 2),
        "config": {"preprocess": PreprocessConfig().to_dict(), "model": default_config().to_dict(), "train": tc.to_dict()},
        "machine": machine(),
    }
    emit(out, args.output)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.exit(main())
