"""Milliseconds per record of the rhythm features (`ecgrhythm.features.rhythm.rhythm_features`) on 30-s records.

The first `--n` records of `--data` that are exactly 30 s long are read once (not timed), then each record's
features are computed `--repeats` times; the result gives the median and the 90th percentile over the records of
each record's fastest time (the least disturbed by other work on the machine), and the median of all times. The
goal is under 10 ms a 30-s 300 Hz record. CPU time of this one process (`time.process_time`) is given beside the
wall time, since helpers share the cores.

Example:
    python benchmarks/rhythm_features.py --data ../shared/data/cinc2017 --n 200 --output docs/benchmarks/rhythm_features.json
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _common import emit, fail, machine

GOAL_MS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/cinc2017", help="a folder of CinC 2017 records (default: %(default)s)")
    parser.add_argument("--n", type=int, default=200, help="records to time (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="times each record's features are computed (default: %(default)s)")
    parser.add_argument("--output", help="also write the result to this JSON file")
    args = parser.parse_args()
    import ecgrhythm
    from ecgrhythm.features.rhythm import rhythm_features

    data = Path(args.data)
    if not data.is_dir():
        fail(f"--data {data}: not a folder")
    signals = []
    for header in sorted(data.glob("*.hea")):
        record = ecgrhythm.read_record(header)
        if record.n_samples == 30 * record.fs:
            signals.append((record.signal[:, 0], record.fs))
        if len(signals) == args.n:
            break
    if not signals:
        fail(f"--data {data}: no 30-s record")
    rhythm_features(*signals[0])  # the filter design, once per rate
    wall, cpu = [], []
    for signal, fs in signals:
        times, cpus = [], []
        for _ in range(args.repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            rhythm_features(signal, fs)
            times.append(time.perf_counter() - started)
            cpus.append(time.process_time() - started_cpu)
        wall.append(times)
        cpu.append(cpus)
    wall_ms, cpu_ms = np.array(wall) * 1000, np.array(cpu) * 1000
    best = wall_ms.min(axis=1)
    result = {
        "benchmark": "rhythm_features",
        "records": len(signals),
        "repeats": args.repeats,
        "fs": signals[0][1],
        "best_ms_median": round(float(np.median(best)), 3),
        "best_ms_p90": round(float(np.percentile(best, 90)), 3),
        "all_ms_median": round(float(np.median(wall_ms)), 3),
        "cpu_ms_median": round(float(np.median(cpu_ms)), 3),
        "goal_ms": GOAL_MS,
        "meets_goal": bool(np.median(best) < GOAL_MS),
        "machine": machine(),
    }
    emit(result, args.output)


if __name__ == "__main__":
    main()
