"""The rate and unit checks' share of classification time (`warn_if_implausible`, issue #34: well under 5 %).

The first `--n` records of `--data` are read and their lead chosen as `ecgrhythm classify` chooses it (not timed).
Each record's checks (:func:`ecgrhythm.preprocessing.plausibility.warn_if_implausible` on that lead, its warnings
silenced) are timed `--repeats` times and the fastest kept; then the same records are classified in this process
(:func:`ecgrhythm.inference.streaming.classify_files`, which reads, checks, prepares and runs the networks) after a
warm-up, `--repeats` times, the fastest kept. The result is the checks' total time over the classification's, from
the same process on the same records, so that other work on the machine weighs on both alike.

A second measure, what the checks add to classifying: the same records classified with the checks replaced by
nothing (`ecgrhythm.inference.streaming.warn_if_implausible` patched, in this process only), the two alternating
`--repeats` times, the fastest of each kept. A third, the checks timed where they run, among the reading of a
classification (the same function patched with a timed call of itself): `checks_in_run_ms_mean`, dearer than
checking the records back to back, whose data and code stay in the processor's caches.

Example:
    python benchmarks/plausibility_checks.py --data ../shared/data/cinc2017 --n 300 --output docs/benchmarks/plausibility_checks.json
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
from _common import emit, fail, machine

GOAL_SHARE = 0.05


def _fastest(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/cinc2017", help="a folder of records (default: %(default)s)")
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--n", type=int, default=300, help="records, the first N of --data (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes, the fastest kept (default: %(default)s)")
    parser.add_argument("--output", help="also write the result to this JSON file")
    args = parser.parse_args()
    import ecgrhythm
    from ecgrhythm.inference import streaming
    from ecgrhythm.inference.streaming import classify_files
    from ecgrhythm.preprocessing.plausibility import warn_if_implausible

    data = Path(args.data)
    if not data.is_dir():
        fail(f"--data {data}: not a folder")
    paths = sorted(data.glob("*.hea"))[: args.n]
    if not paths:
        fail(f"--data {data}: no WFDB record")
    clf = ecgrhythm.RhythmClassifier.load(args.model)
    leads = [clf.choose_lead(ecgrhythm.read_record(p))[0] for p in paths]

    per_record = []
    for one in leads:
        per_record.append(_fastest(lambda one=one: _check_one(warn_if_implausible, one), args.repeats))
    classify_files(clf, paths[:20])  # warm-up: sessions and buffers
    load_before = machine()["load_average_1m"]
    with_checks, without_checks = [], []
    for _ in range(args.repeats):  # alternating, so that a change in the machine's load hits both
        with_checks.append(_fastest(lambda: classify_files(clf, paths), 1))
        with mock.patch.object(streaming, "warn_if_implausible", lambda *args, **kwargs: None):
            without_checks.append(_fastest(lambda: classify_files(clf, paths), 1))
    classify_s, unchecked_s = min(with_checks), min(without_checks)
    in_run = []

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return warn_if_implausible(*args, **kwargs)
        finally:
            in_run.append(time.perf_counter() - started)

    with mock.patch.object(streaming, "warn_if_implausible", timed):
        classify_files(clf, paths)
    checks_s = float(np.sum(per_record))
    result = {
        "benchmark": "plausibility_checks",
        "records": len(paths),
        "repeats": args.repeats,
        "checks_ms_median": round(1000 * float(np.median(per_record)), 3),
        "checks_ms_p90": round(1000 * float(np.percentile(per_record, 90)), 3),
        "checks_s": round(checks_s, 3),
        "checks_in_run_ms_mean": round(1000 * float(np.mean(in_run)), 3),
        "classify_s": round(classify_s, 3),
        "classify_ms_per_record": round(1000 * classify_s / len(paths), 3),
        "share": round(checks_s / classify_s, 4),
        "classify_without_checks_s": round(unchecked_s, 3),
        "added_share": round((classify_s - unchecked_s) / classify_s, 4),
        "goal_share": GOAL_SHARE,
        "meets_goal": bool(checks_s / classify_s < GOAL_SHARE),
        "load_average_1m_before_classify": load_before,
        "machine": machine(),
    }
    emit(result, args.output)


def _check_one(check, one) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(one.signal, one.fs, one.record_name)


if __name__ == "__main__":
    main()
