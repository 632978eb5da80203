"""Where the episode finder goes wrong on records joined from CinC 2017: whole source records, or their edges?

For each of the joined records the episode scores use (`ecgrhythm.lab.episode_data.joined_records`, 12 of 10 min,
seed 0), the episodes at the shipped defaults (the finder's method, unless `--method`) are laid over the source
records it was joined from. It prints how many AF sources are missed entirely (no second called AF) or in part, how
many non-AF sources are called AF entirely or in part, and the seconds of AF missed and called falsely in each kind,
so that errors of whole records (what the network and the R-R evidence make of a record) stand apart from errors
at the joins (where onsets and ends are placed). The network is in-sample on these records (the shipped networks
saw every CinC 2017 record). Uses the window probabilities cached by `scripts/episode_settings_crossfit.py`. Example:

    .venv/bin/python scripts/joined_source_errors.py
"""

from __future__ import annotations

import argparse

import numpy as np

from ecgrhythm.episodes.finder import EpisodeParams, episodes_from_windows
from ecgrhythm.lab.episode_data import joined_cases, joined_records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joined", type=int, default=12, help="joined CinC 2017 records (10 min, 200 Hz, seed 0)")
    parser.add_argument("--method", default=EpisodeParams().method, help="the finder's method (default: %(default)s)")
    args = parser.parse_args()
    params = EpisodeParams(method=args.method)
    rows = []  # (label, seconds, share called AF)
    for record, case in zip(joined_records(args.joined), joined_cases(args.joined)):
        found = episodes_from_windows(case.windows, case.read, case.fs, case.n_samples, record_name=case.name, params=params)
        called = np.zeros(case.n_samples, dtype=bool)
        for a, b in found.af_endpoints():
            called[a : b + 1] = True
        for k, label in enumerate(record.labels):
            a, b = int(record.bounds[k]), int(record.bounds[k + 1])
            rows.append((label, (b - a) / case.fs, float(called[a:b].mean())))
    print(f"{args.joined} joined records, method {args.method}, shipped settings: {len(rows)} source records")
    for kind, is_af in (("AF sources", True), ("non-AF sources", False)):
        part = [(s, share) for label, s, share in rows if (label == "A") == is_af]
        wrong = [(s, (1 - share) if is_af else share) for s, share in part]
        whole = sum(1 for _, w in wrong if w > 0.99)
        some = sum(1 for _, w in wrong if 0.01 < w <= 0.99)
        total = sum(s for s, _ in part)
        lost = sum(s * w for s, w in wrong)
        lost_whole = sum(s * w for s, w in wrong if w > 0.99)
        what = "missed" if is_af else "called AF"
        print(
            f"{kind}: {len(part)}, {total:.0f} s; {what} entirely: {whole}, in part: {some}; "
            f"seconds {what}: {lost:.0f} ({100 * lost / total:.1f} %), {lost_whole:.0f} of them in sources {what} entirely"
        )


if __name__ == "__main__":
    main()
