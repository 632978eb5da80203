"""Cross-validated score of every combination of finished cross-validations' networks, architectures mixed.

`ecgrhythm ensemble --crossval` averages members that share preprocessing and architecture (it builds model folders).
This script asks only what their probabilities would give together: for each combination of one to `--max-size`
of the given cross-validation folders (every fold finished, the same folds), it averages their last-epoch
out-of-fold probabilities (`foldK/oof-last.csv`, each network kept at its last epoch, chosen by nothing) record by
record, as a plain mean and as a geometric mean (renormalised), applies the prior correction cross-fitted
(each fold multiplied by the other folds' class frequencies: the shipped recipe's calibration step), and prints the
mean CinC 2017 score over the folds with its 95 % interval, best first. Seconds on a CPU. Example (the members
committed under `docs/results/crossval/*/run`):

    .venv/bin/python scripts/member_combinations.py docs/results/crossval/{student-seed5-augment,resnet-seed4-augment,\\
seed1+augment-lstm128,seed3-augment-bandpass,seed1-lstm128,seed1-augment-lstm128}/run --must student-seed5-augment/run
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from ecgrhythm.scoring.crossval import prior_correction_scores, t_interval
from ecgrhythm.training.oof import LAST_OOF_FILE, finished_oof


def _read(folder: Path):
    names, folds, truth, probs, classes = finished_oof(folder, partial=False, filename=LAST_OOF_FILE)
    order = np.argsort(names)
    return [names[i] for i in order], folds[order], [truth[i] for i in order], probs[order], classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="finished cross-validation folders (the same folds)")
    parser.add_argument("--max-size", type=int, default=3, help="largest combination (default: %(default)s)")
    parser.add_argument("--must", help="only combinations with the folder whose path ends with this")
    args = parser.parse_args()
    members = {str(folder): _read(folder) for folder in args.folders}
    names, folds, truth, _, classes = next(iter(members.values()))
    for folder, (other_names, other_folds, _, _, other_classes) in members.items():
        if other_names != names or not np.array_equal(other_folds, folds) or other_classes != classes:
            parser.error(f"{folder}: not the same records, folds and classes as {args.folders[0]}")
    targets = np.array([classes.index(t) for t in truth])
    rows = []
    for size in range(1, args.max_size + 1):
        for combo in itertools.combinations(members, size):
            if args.must and not any(c.rstrip("/").endswith(args.must.rstrip("/")) for c in combo):
                continue
            probs = np.stack([members[c][3] for c in combo])
            geometric = np.exp(np.log(np.clip(probs, 1e-9, None)).mean(axis=0))
            for mean_name, p in (("plain", probs.mean(axis=0)), ("geometric", geometric / geometric.sum(axis=1, keepdims=True))):
                _, corrected = prior_correction_scores(p, targets, folds, classes)
                rows.append((*t_interval(corrected), mean_name, combo))
    print("score (mean over folds ± 95 % CI, last epoch, prior-corrected)  mean  members")
    for score, half, mean_name, combo in sorted(rows, key=lambda r: -r[0]):
        print(f"{score:.4f} ± {half:.4f}  {mean_name:<9}  {' + '.join(Path(c).parent.name or c for c in combo)}")


if __name__ == "__main__":
    main()
