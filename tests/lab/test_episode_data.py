"""Joined CinC 2017 records for the episode finder: seeded, each source once, AF truth where the source is A."""

import numpy as np

from ecgrhythm.lab.episode_data import joined_records, joined_truth


def test_joined_records_are_seeded_use_each_source_once_and_mark_af(cinc2017_dir):
    records = joined_records(2, minutes=1.5, fs=200.0, seed=3, af_share=0.5, data_dir=cinc2017_dir)
    again = joined_records(2, minutes=1.5, fs=200.0, seed=3, af_share=0.5, data_dir=cinc2017_dir)
    assert [r.sources for r in records] == [r.sources for r in again]
    sources = [s for r in records for s in r.sources]
    assert len(sources) == len(set(sources))  # no CinC record in two joined records, so in two folds
    labels = dict(line.split(",") for line in (cinc2017_dir / "REFERENCE.csv").read_text().split())
    for r in records:
        assert len(r.signal) == r.bounds[-1] >= 1.5 * 60 * 200 and r.fs == 200.0
        assert [labels[s] for s in r.sources] == list(r.labels) and set(r.labels) <= {"N", "A", "O"}
        af = np.zeros(len(r.signal), bool)
        for a, b in r.af_intervals():
            af[a : b + 1] = True
        for k, label in enumerate(r.labels):  # AF exactly where the source is labelled A
            assert af[r.bounds[k] : r.bounds[k + 1] - 1].all() == (label == "A")
        beats = np.arange(100, len(r.signal), 160)
        truth = joined_truth(r, beats)
        assert len(truth.af_starts) == len(r.af_intervals()) and truth.samples[truth.af_starts].tolist() == r.af_intervals()[:, 0].tolist()
