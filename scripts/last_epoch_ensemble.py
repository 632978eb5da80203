"""Cross-validated score of networks, alone and averaged, at their last trained epoch instead of the kept one.

A cross-validation keeps each fold's best epoch by its score on the fold's own records, so the fold's
out-of-fold score (and an ensemble's, from `ecgrhythm ensemble --crossval`) is slightly optimistic. Each
fold's `checkpoint/` holds the network's weights after its last epoch, chosen by nothing. This script puts
those weights into each member's fold network, classifies the fold's records, and prints per fold the score
of each member and of their average, with the means and 95 % intervals over the folds finished in every
member: an estimate of what the recipe scores on new records. Last, the average's paired difference from
each member (t-test over the folds). With `--oof DIR` it writes the average's out-of-fold probabilities to
`DIR/oof.csv` in the cross-validation format, so that `ecgrhythm calibrate MODEL --crossval DIR` fits a
temperature for networks kept at their last epoch (those trained on every record); with `--partial` too, it writes
the folds finished in every member to `DIR/oof-partial.csv` instead (a candidate run on folds 0-2, for
`scripts/prior_correction.py`; a name `calibrate` does not read). A member's last-epoch score equals the one
its training log shows for that epoch (the script checks that the kept weights are those of the fold's folder
first, so the weights go where they belong).

`ecgrhythm crossval` now writes each fold's last-epoch probabilities itself (`foldK/oof-last.csv`, also for folds
finished before, when rerun), `ecgrhythm ensemble --crossval` averages them, and their reports give the last-epoch
scores with and without the prior correction; this script gives the same numbers, member by member, and was
used for the outputs in `docs/results/crossval/last-epoch/`.

About 10 s per member and fold on a 2-core CPU. Example:

    .venv/bin/python scripts/last_epoch_ensemble.py runs/crossval/seed1 runs/crossval/seed1-augment --data ../shared/data/cinc2017 \
        --oof runs/crossval/seed1+augment-last
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel

from ecgrhythm.records import read_record
from ecgrhythm.scoring.crossval import t_interval
from ecgrhythm.scoring.metrics import cinc2017_score, confusion_matrix
from ecgrhythm.training.crossval import last_epoch_network
from ecgrhythm.training.folds import fold_dir
from ecgrhythm.training.oof import OOF_FILE, finished_in_every, oof_text, pooled_oof_text
from ecgrhythm.utils.io import atomic_write_text

PARTIAL_OOF_FILE = "oof-partial.csv"  # --oof --partial: some folds only


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", type=Path, help="cross-validation folders run on the same folds")
    parser.add_argument("--data", type=Path, required=True, help="the records' folder")
    parser.add_argument("--oof", type=Path, metavar="DIR", help="write the average's out-of-fold probabilities to DIR/oof.csv (a new file)")
    parser.add_argument(
        "--partial",
        action="store_true",
        help=f"with --oof: write the folds finished in every member to DIR/{PARTIAL_OOF_FILE} (a candidate's folds 0-2, for "
        "scripts/prior_correction.py), a file 'ecgrhythm calibrate' does not read: a shipped model's calibration needs every fold",
    )
    args = parser.parse_args()
    if args.partial and args.oof is None:
        parser.error("--partial applies to --oof only")
    written = PARTIAL_OOF_FILE if args.partial else OOF_FILE
    if args.oof is not None and (args.oof.exists() and not args.oof.is_dir() or (args.oof / written).exists()):
        raise SystemExit(f"--oof {args.oof}: a file, or a folder that already holds {written}; choose another folder")
    try:
        folds, done = finished_in_every(args.members)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    classes = list(folds.classes)
    if args.oof is not None and len(done) < len(folds.folds) and not args.partial:
        raise SystemExit(f"--oof needs every fold finished in every member (or --partial); finished in all: {done}")
    scores = {name: [] for name in [m.name for m in args.members] + ["average"]}
    texts = []  # each fold's out-of-fold CSV of the average
    for k in done:
        names = folds.folds[k]
        truth = [folds.labels[n] for n in names]
        records = [read_record(args.data / f"{n}.hea") for n in names]
        probs = []
        for member in args.members:
            try:
                clf = last_epoch_network(fold_dir(member, k))
            except FileNotFoundError as exc:
                raise SystemExit(f"{exc}; pass the cross-validation folders of single networks ('ecgrhythm crossval'), not ensembles") from None
            except ValueError as exc:
                raise SystemExit(str(exc)) from None
            probs.append(clf.predict_prepared([clf.prepare(r) for r in records], calibrated=False))
            scores[member.name].append(_score(truth, probs[-1], classes))
        average = np.mean(probs, axis=0)
        scores["average"].append(_score(truth, average, classes))
        texts.append(oof_text(names, k, truth, average, classes))
        print(f"fold {k}: " + ", ".join(f"{name} {values[-1]:.4f}" for name, values in scores.items()), flush=True)
    for name, values in scores.items():
        mean, half = t_interval(values)
        print(f"{name}: last-epoch mean {mean:.4f} ± {half:.4f} over folds {done}")
    if args.oof is not None:
        args.oof.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.oof / written, pooled_oof_text(texts))
        print(f"wrote the average's out-of-fold probabilities of folds {done} to {args.oof / written}")
    for member in args.members if len(args.members) > 1 else []:  # one member is its own average: nothing to pair
        diff = np.subtract(scores["average"], scores[member.name])
        p = ttest_rel(scores["average"], scores[member.name]).pvalue if len(done) > 1 else float("nan")
        print(f"average - {member.name}: {diff.mean():+.4f} paired (p {p:.3f}), higher on {int((diff > 0).sum())} of {len(done)} folds")


def _score(truth, probabilities, classes) -> float:
    predicted = [classes[i] for i in np.argmax(probabilities, axis=1)]
    return cinc2017_score(confusion_matrix(truth, predicted, classes), classes)


if __name__ == "__main__":
    main()
