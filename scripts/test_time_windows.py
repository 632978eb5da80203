"""Cross-validated effect of test-time windows: a record's probabilities averaged over overlapping windows as long
as the training windows, instead of one pass over the whole record.

The networks train on random 20-s windows (`train --window`) and classify whole records of 9 to 61 s (padded and
masked). This script puts each fold network's last-epoch weights back (as `last_epoch_ensemble.py` does: the
weights a training on every record keeps), classifies each fold's records three ways, and scores each fold:
- `whole`: one pass over the record (what `classify` does);
- `windows`: the mean of the probabilities of windows of `--window` seconds, `--hop` seconds apart, evenly spread
  from the record's start to its end (a record no longer than a window is one window, the whole record);
- `both`: the mean of the two.
With several members, each way averages the members, as a model folder of several networks does. Scores are
given as they are and with the prior correction (each fold's probabilities multiplied by the class frequencies of
the other finished folds' records, as `scripts/prior_correction.py` does), then the paired differences from
`whole` (t-test over the folds). About 1 minute per member and fold on a 2-core CPU. Example:

    .venv/bin/python scripts/test_time_windows.py runs/crossval/seed1-augment-lstm128 --data ../shared/data/cinc2017
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import ttest_rel

from ecgrhythm.records import read_record
from ecgrhythm.scoring.crossval import prior_correction_scores, t_interval
from ecgrhythm.training.crossval import last_epoch_network
from ecgrhythm.training.folds import fold_dir
from ecgrhythm.training.oof import finished_in_every

WAYS = ("whole", "windows", "both")


def window_starts(n: int, window: int, hop: int) -> list[int]:
    """Starts of the windows of `window` samples over `n` samples, at most `hop` apart and spread evenly from 0 to
    `n - window` (one window at 0 when `n <= window`)."""
    if n <= window:
        return [0]
    count = int(np.ceil((n - window) / hop)) + 1
    return np.linspace(0, n - window, count).round().astype(int).tolist()


def windowed_proba(clf, signals, window_s: float, hop_s: float) -> np.ndarray:
    """Each signal's mean probabilities over its windows (:func:`window_starts`), the networks' own (uncalibrated)."""
    fs = clf.preprocess_.fs
    window, hop = int(round(window_s * fs)), int(round(hop_s * fs))
    pieces, owner = [], []
    for i, signal in enumerate(signals):
        for start in window_starts(len(signal), window, hop):
            pieces.append(signal[start : start + window])
            owner.append(i)
    probs, owner = clf.predict_prepared(pieces, calibrated=False), np.asarray(owner)
    return np.stack([probs[owner == i].mean(axis=0) for i in range(len(signals))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", type=Path, help="cross-validation folders of single networks, run on the same folds")
    parser.add_argument("--data", type=Path, required=True, help="the records' folder")
    parser.add_argument("--window", type=float, default=20.0, help="window length in seconds (default 20, train's --window)")
    parser.add_argument("--hop", type=float, default=10.0, help="largest distance between window starts in seconds (default 10)")
    args = parser.parse_args()
    if not 0 < args.hop <= args.window:
        parser.error("--hop must be positive and at most --window")
    try:
        folds, done = finished_in_every(args.members)
    except ValueError as exc:
        raise SystemExit(str(exc)) from None
    classes = list(folds.classes)
    probs = {way: [] for way in WAYS}
    targets, fold_of = [], []
    for k in done:
        names = folds.folds[k]
        targets += [classes.index(folds.labels[n]) for n in names]
        fold_of += [k] * len(names)
        records = [read_record(args.data / f"{n}.hea") for n in names]
        by_way = {way: [] for way in WAYS}
        for member in args.members:
            try:
                clf = last_epoch_network(fold_dir(member, k))
            except (FileNotFoundError, ValueError) as exc:
                raise SystemExit(f"{exc}; pass the cross-validation folders of single networks ('ecgrhythm crossval'), not ensembles") from None
            signals = [clf.prepare(r) for r in records]
            whole, windows = clf.predict_prepared(signals, calibrated=False), windowed_proba(clf, signals, args.window, args.hop)
            for way, p in zip(WAYS, (whole, windows, (whole + windows) / 2)):
                by_way[way].append(p)
        for way in WAYS:
            probs[way].append(np.mean(by_way[way], axis=0))
        print(f"fold {k} classified", file=sys.stderr, flush=True)  # progress; the results go to stdout
    scores = {}
    for way in WAYS:
        plain, corrected = prior_correction_scores(np.concatenate(probs[way]), targets, fold_of, classes)
        scores[way], scores[f"{way}, prior-corrected"] = plain, corrected
    for name, values in scores.items():
        mean, half = t_interval(values)
        print(f"{name}: {', '.join(f'{v:.4f}' for v in values)}; mean {mean:.4f} ± {half:.4f} over folds {done}")
    for suffix in ("", ", prior-corrected"):
        for way in WAYS[1:]:
            diff = np.subtract(scores[way + suffix], scores["whole" + suffix])
            p = ttest_rel(scores[way + suffix], scores["whole" + suffix]).pvalue if len(done) > 1 else float("nan")
            print(f"{way} - whole{suffix}: {diff.mean():+.4f} paired (p {p:.3f}), higher on {int((diff > 0).sum())} of {len(done)} folds")


if __name__ == "__main__":
    main()
