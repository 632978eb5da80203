"""How much of a record the rate and unit checks (`ecgrhythm.preprocessing.plausibility`) need to measure.

Every real record of `../shared/data` (the 7,249 CinC 2017 records at 300 Hz, the 18 cpsc2021 records at 200 Hz and
the 50 cinc2021 records at 500 Hz; the lead `ecgrhythm classify` takes) is checked at its true rate and at every
common rate (:data:`~ecgrhythm.preprocessing.plausibility.COMMON_RATES`) at least 1.6 times off it, with each
`--stages` setting: the first that many seconds of the lead are measured, and with several lengths (`15,180`) a longer
stretch only when the one before found the rate implausible or could not tell. For each setting it prints:

- at the true rate: the share of records warned about (false alarms) and of records left undetermined (the beats
  could not be trusted, so nothing is said);
- at the wrong rates: the share warned about (caught) and the share whose warning names the true rate;
- the checks' time per record (the fastest of `--repeats` passes over the CinC 2017 records, process time).

Example (about 3 minutes on a 2-core machine):

    .venv/bin/python scripts/plausibility_settings.py --data ../shared/data --stages 10 15 20 30 180 10,180 15,180 \
        > docs/results/plausibility/settings.txt
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

import ecgrhythm
from ecgrhythm.preprocessing.plausibility import COMMON_RATES, check_signal

CORPORA = ("cinc2017", "cpsc2021-sample", "cinc2021-sample")
OFF_BY = 1.6  # a wrong rate is at least this many times off the true one


def _leads(data: Path, clf) -> dict[str, list[tuple[np.ndarray, float]]]:
    """`{corpus: [(lead, fs)]}`: the lead classify takes of every record, as float64."""
    found = {}
    for corpus in CORPORA:
        leads = []
        for header in sorted((data / corpus).glob("*.hea")):
            one, _ = clf.choose_lead(ecgrhythm.read_record(header))
            leads.append((np.asarray(one.signal[:, 0], dtype=np.float64), float(one.fs)))
        found[corpus] = leads
    return found


def _wrong_rates(fs: float) -> list[float]:
    return [rate for rate in COMMON_RATES if max(rate / fs, fs / rate) >= OFF_BY]


def _row(leads, stages: tuple[float, ...]) -> dict[str, float]:
    n = false_alarms = undetermined = wrong = caught = named = 0
    for x, fs in leads:
        found = check_signal(x, fs, stages=stages)
        n += 1
        false_alarms += not found.ok
        undetermined += found.heart_rate_bpm is None
        for rate in _wrong_rates(fs):
            off = check_signal(x, rate, stages=stages)
            wrong += 1
            caught += not off.ok
            named += off.plausible_fs == fs
    return {
        "records": n,
        "false_alarm_pct": 100 * false_alarms / n,
        "undetermined_pct": 100 * undetermined / n,
        "caught_pct": 100 * caught / wrong,
        "true_rate_named_pct": 100 * named / wrong,
    }


def _ms_per_record(leads, stages: tuple[float, ...], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for x, fs in leads:
            check_signal(x, fs, stages=stages)
        best = min(best, time.process_time() - started)
    return 1000 * best / len(leads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data", help=f"folder holding {', '.join(CORPORA)} (default: %(default)s)")
    parser.add_argument(
        "--stages",
        nargs="+",
        default=["10", "15", "20", "30", "180", "10,180", "15,180"],
        help="settings to compare: seconds, comma-separated for several stages (default: %(default)s)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed passes, the fastest kept (default: %(default)s)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    clf = ecgrhythm.RhythmClassifier.load()
    leads = _leads(Path(args.data), clf)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; records: " + ", ".join(f"{c} {len(v)}" for c, v in leads.items()))
    settings = [tuple(float(v) for v in setting.split(",")) for setting in args.stages]
    print("| seconds | corpus | records | false alarms % | undetermined % | wrong rates caught % | true rate named % |")
    print("|---|---|---|---|---|---|---|")
    for stages in settings:
        for corpus, some in leads.items():
            row = _row(some, stages)
            print(
                f"| {_name(stages)} | {corpus} | {row['records']} | {row['false_alarm_pct']:.2f} | {row['undetermined_pct']:.2f} "
                f"| {row['caught_pct']:.1f} | {row['true_rate_named_pct']:.1f} |",
                flush=True,
            )
    print(f"\n| seconds | checks, ms per CinC 2017 record (process time; load average {os.getloadavg()[0]:.1f} before) |\n|---|---|")
    for stages in settings:
        print(f"| {_name(stages)} | {_ms_per_record(leads['cinc2017'], stages, args.repeats):.3f} |", flush=True)


def _name(stages: tuple[float, ...]) -> str:
    return " then ".join(f"{seconds:g}" for seconds in stages)


if __name__ == "__main__":
    main()
