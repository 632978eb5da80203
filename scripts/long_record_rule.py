"""What record-level rules joining labels and AF episodes (`ecgrhythm.episodes.answers`) would do to CinC 2017 labels.

For every CinC 2017 record this script gathers, once, the shipped model's whole-record probabilities (calibrated, as
`ecgrhythm classify` gives them) and its AF episodes (`ecgrhythm episodes`), into a cache CSV under `runs/`; then it
prints, for the networks' own labels and for candidate rules, how many labels change and the CinC 2017 score
(mean F1 of N, A, O) against `REFERENCE.csv`. The shipped model was trained on these records, so the scores are
in-sample: indicative of what a rule changes, not of how well it would do on new records. Classifying the windows
of every record takes several minutes on a CPU (the networks' call is made for many records at once; the windows,
their preprocessing and the episodes are the finder's own code). Example:

    .venv/bin/python scripts/long_record_rule.py --cache runs/long-record-rule/cinc2017.csv

The rule shipped (the networks decide records as short as their training records, the episodes follow) is the row
"networks' labels (<= 65 s), episodes follow them"; the module docstring of `ecgrhythm.episodes.answers` quotes the
numbers and says why.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

import ecgrhythm
from ecgrhythm.episodes.answers import record_answer
from ecgrhythm.episodes.finder import Episode, RecordEpisodes, episodes_from_windows
from ecgrhythm.episodes.params import DEFAULT_PARAMS
from ecgrhythm.episodes.windows import collect_windows, iter_window_probabilities
from ecgrhythm.inference.streaming import classify_files
from ecgrhythm.scoring.metrics import evaluate_predictions
from ecgrhythm.utils.io import atomic_write, csv_writer

COLUMNS = ("record", "reference", "duration_s", "probabilities", "episodes")
BLOCK = 200  # records whose windows go through the networks in one call


class _Deferred:
    """A stand-in classifier for :func:`iter_window_probabilities` that keeps the prepared windows and answers zeros:
    the real probabilities of many records' windows are then computed in one call."""

    def __init__(self, classifier):
        self.classifier, self.kept = classifier, []

    def __getattr__(self, name):  # what the windows' preparation reads of a classifier (its leads, its preprocessing)
        return getattr(self.classifier, name)

    def predict_prepared(self, signals, **kwargs):
        self.kept += list(signals)
        self.kwargs = kwargs
        return np.zeros((len(signals), len(self.classifier.classes_)))


def _block_episodes(clf, records) -> list[RecordEpisodes]:
    """The episodes of `records` (read whole, one lead), as `record_episodes` finds them, their windows classified at once."""
    deferred, spans = _Deferred(clf), []
    for record in records:
        one, lead = clf.choose_lead(record)
        before = len(deferred.kept)
        rows = list(iter_window_probabilities(deferred, [one.signal[:, 0]], one.fs, lead=lead, params=DEFAULT_PARAMS))
        spans.append((one, lead, rows, before, len(deferred.kept)))
    probs = clf.predict_prepared(deferred.kept, calibrated=False, networks=DEFAULT_PARAMS.networks)
    found = []
    for one, lead, rows, a, b in spans:
        rows = [(s, e, p) for (s, e, _), p in zip(rows, probs[a:b], strict=True)]
        windows = collect_windows(rows, clf.classes_, one.duration_s)
        signal = one.signal[:, 0]
        found.append(episodes_from_windows(windows, lambda a, b, s=signal: s[a:b], one.fs, one.n_samples, record_name=one.record_name, lead=lead))
    return found


def _episodes_text(found: RecordEpisodes) -> str:
    return ";".join(f"{e.start_s:.3f}:{e.end_s:.3f}:{e.label}:{e.probability:.4f}" for e in found.episodes)


def _parse_episodes(text: str, name: str, duration_s: float, fs: float = 300.0) -> RecordEpisodes:
    episodes = []
    for item in text.split(";"):
        a, b, label, p = item.split(":")
        episodes.append(Episode(float(a), float(b), label, float(p)))
    return RecordEpisodes(name, None, fs, round(duration_s * fs), episodes)


def build_cache(data: Path, cache: Path, limit: int | None) -> None:
    clf = ecgrhythm.RhythmClassifier.load()
    reference = dict(csv.reader(open(data / "REFERENCE.csv")))
    names = sorted(reference)[:limit]
    start = time.perf_counter()
    prediction, failures = classify_files(clf, [data / f"{n}.hea" for n in names])
    if failures:
        raise SystemExit(f"{len(failures)} records failed: {failures[:3]}")
    print(f"classified {len(names)} records in {time.perf_counter() - start:.1f} s", flush=True)
    probs = dict(zip(prediction.names, prediction.probabilities))
    rows = []
    for i in range(0, len(names), BLOCK):
        records = [ecgrhythm.read_record(data / f"{n}.hea") for n in names[i : i + BLOCK]]
        for record, found in zip(records, _block_episodes(clf, records)):
            p = probs[record.record_name]
            rows.append(
                [
                    record.record_name,
                    reference[record.record_name],
                    f"{record.duration_s:.3f}",
                    " ".join(f"{v:.6f}" for v in p),
                    _episodes_text(found),
                ]
            )
        print(f"episodes of {len(rows)} records, {time.perf_counter() - start:.0f} s", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(cache, "w", newline="") as f:
        csv_writer(f).writerows([COLUMNS, *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/cinc2017"))
    parser.add_argument("--cache", type=Path, default=Path("runs/long-record-rule/cinc2017.csv"))
    parser.add_argument("--limit", type=int, help="only the first N records (a quick check)")
    args = parser.parse_args()
    if not args.cache.is_file():
        build_cache(args.data, args.cache, args.limit)
    with open(args.cache, newline="") as f:
        rows = list(csv.DictReader(f))
    classes = ecgrhythm.RhythmClassifier.load().classes_
    truth = [r["reference"] for r in rows]
    probs = np.array([[float(v) for v in r["probabilities"].split()] for r in rows])
    found = [_parse_episodes(r["episodes"], r["record"], float(r["duration_s"])) for r in rows]
    networks = [classes[i] for i in probs.argmax(axis=1)]
    print(
        f"{len(rows)} CinC 2017 records of {min(f.duration_s for f in found):.0f}-{max(f.duration_s for f in found):.0f} s "
        "(in-sample: the shipped model was trained on them; the cross-validation of its recipe is the estimate)"
    )
    af_found = np.array([f.record_class != "non-AF" for f in found])
    said_a = np.array([n == "A" for n in networks])
    is_a = np.array([t == "A" for t in truth])
    for name, mask in (("AF found, networks' label not A", af_found & ~said_a), ("networks' label A, no AF found", ~af_found & said_a)):
        longest = np.array([f.longest_af_s for f in found])[mask]
        print(
            f"{name}: {int(mask.sum())} records, {int((mask & is_a).sum())} of them A in REFERENCE.csv"
            + (f"; longest AF episode median {np.median(longest):.1f} s" if longest.any() else "")
        )
    for n_s in (10, 15, 20, 25, 30, 40):
        mask = af_found & ~said_a & (np.array([f.longest_af_s for f in found]) >= n_s)
        print(f"  AF found (longest >= {n_s} s), networks' label not A: {int(mask.sum())} records, {int((mask & is_a).sum())} of them A")
    print(f"{'rule':<66} {'changed':>8} {'score':>7}  F1 " + " / ".join(classes))

    def show(name, labels):
        report = evaluate_predictions(truth, labels, classes)
        changed = sum(a != b for a, b in zip(labels, networks))
        print(f"{name:<66} {changed:>8} {report.score:>7.4f}  " + " / ".join(f"{report.f1[c]:.4f}" for c in classes))

    show("the networks' labels", networks)
    show("labels follow the episodes on every record", [record_answer(p, classes, f, whole=False).label for p, f in zip(probs, found)])
    for strong in (None, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0):
        name = "networks' labels (<= 65 s), episodes follow them" + ("" if strong is None else f"; AF >= {strong:g} s decides")
        show(name, [record_answer(p, classes, f, whole=True, strong_af_s=strong).label for p, f in zip(probs, found)])


if __name__ == "__main__":
    main()
