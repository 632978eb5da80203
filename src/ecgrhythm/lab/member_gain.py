"""What one more network adds to an ensemble, on the cross-validation folds every member has finished.

Run from the repository root::

    python -m ecgrhythm.lab.member_gain runs/crossval/resnet-seed4-augment

It reads the last-epoch out-of-fold probabilities (`foldK/oof-last.csv`) of the reference networks (default: the two
128-unit networks of `docs/results/crossval`, 0.8486 together in the candidates table) and of each candidate
cross-validation, keeps the records of the folds finished in all of them, and scores with the prior correction of the
reference (each fold's probabilities multiplied by the class frequencies of the other folds' records):

- the reference networks averaged;
- each candidate alone;
- the reference networks and the candidates averaged, every network weighing the same.

Each line gives every fold's score, the mean with its 95 % t-interval, and the paired difference from the reference
(the paired t-test's p, the folds higher). Unlike `ecgrhythm ensemble --crossval`, the networks may be of other
families or sizes: the probabilities are averaged, no model folder is built. Nothing is written unless `--out` names
a JSON file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ecgrhythm.lab.crossval_report import DEFAULT_RESULTS, interval_text
from ecgrhythm.lab.stacking import member_probabilities
from ecgrhythm.lab.stacking_report import evaluate, paired
from ecgrhythm.utils.io import atomic_write_text

__all__ = ["gains", "main"]

REFERENCE = tuple(DEFAULT_RESULTS / name / "run" for name in ("seed1-lstm128", "seed1-augment-lstm128"))


def _label(path) -> str:
    """A cross-validation's name: its folder's, or for a run kept by a report (`<recipe>/run`) the recipe's."""
    path = Path(path)
    return path.parent.name if path.name == "run" else path.name


def gains(reference, candidates) -> dict:
    """The scores of the module docstring, as JSON-serialisable data."""
    _, folds, _, targets, classes, probs = member_probabilities([*reference, *candidates], partial=True)
    n_ref = len(reference)
    results = {"reference": evaluate(np.mean(probs[:n_ref], axis=0), targets, folds, classes)}
    for path, p in zip(candidates, probs[n_ref:]):
        results[f"{_label(path)} alone"] = evaluate(p, targets, folds, classes)
    results["reference + " + " + ".join(_label(c) for c in candidates)] = evaluate(np.mean(probs, axis=0), targets, folds, classes)
    for result in list(results.values())[1:]:
        paired(result, results["reference"])
    return {
        "reference": [str(r) for r in reference],
        "candidates": [str(c) for c in candidates],
        "folds": sorted(int(k) for k in np.unique(folds)),
        "records": len(targets),
        "results": results,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ecgrhythm.lab.member_gain", description=__doc__.split("\n\n")[0])
    parser.add_argument("candidates", nargs="+", type=Path, help="cross-validation folders of the networks to add")
    parser.add_argument(
        "--reference", nargs="+", type=Path, default=list(REFERENCE), help="the ensemble's cross-validations (default: the 128-unit pair)"
    )
    parser.add_argument("--out", type=Path, help="write the scores to this JSON file too")
    args = parser.parse_args(argv)
    summary = gains(args.reference, args.candidates)
    print(f"folds {summary['folds']}, {summary['records']:,} records; prior-corrected CinC 2017 score at the last epoch")
    for name, r in summary["results"].items():
        diff = (
            ""
            if "difference" not in r
            else f"  {r['difference']:+.4f} (p {float('nan') if r['p_value'] is None else r['p_value']:.3f}, {r['folds_higher']} of {len(r['scores'])} higher)"
        )
        print(f"{name:60s} {' '.join(f'{s:.4f}' for s in r['scores'])}  {interval_text(r['mean'], r['ci95'])}{diff}")
    if args.out:
        atomic_write_text(args.out, json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
