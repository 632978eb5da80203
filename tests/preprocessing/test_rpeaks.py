"""Beat detection: sleepecg's fast detector against wfdb's XQRS on real records, and stretches without beats."""

from __future__ import annotations

import numpy as np
import pytest

from ecgrhythm.preprocessing.rpeaks import MIN_BEATS_S, MIN_DETECT_S, detect_beats, detect_r_peaks
from ecgrhythm.records import read_record


@pytest.mark.parametrize("name", ["A00001", "A00004"])  # normal rhythm, AF
def test_the_fast_detector_finds_the_beats_xqrs_finds_on_real_records(cinc2017_dir, name):
    record = read_record(cinc2017_dir / f"{name}.hea")
    lead = record.signal[:, 0]
    fast, xqrs = detect_beats(lead, record.fs), detect_r_peaks(lead, record.fs)
    assert len(fast) > 20 and np.all(np.diff(fast) > 0)
    # every XQRS beat has a fast beat within 20 ms, and nearly all fast beats have an XQRS beat
    nearest = np.abs(fast[None, :] - xqrs[:, None]).min(axis=1)
    assert np.all(nearest <= 0.02 * record.fs)
    assert abs(len(fast) - len(xqrs)) <= 1


def test_flat_short_or_scaled_stretches(cinc2017_dir):
    record = read_record(cinc2017_dir / "A00001.hea")
    lead = record.signal[:, 0]
    for detect, shortest in ((detect_beats, MIN_BEATS_S), (detect_r_peaks, MIN_DETECT_S)):
        assert detect(np.full(3000, 0.7), record.fs).size == 0
        assert detect(lead[: int(shortest * record.fs) - 1], record.fs).size == 0
    # the fast detector scales the stretch first: an offset and a huge gain change nothing
    np.testing.assert_array_equal(detect_beats(1e20 * lead + 5.0, record.fs), detect_beats(lead, record.fs))


def test_the_fast_detector_gives_sleepecgs_own_beats_to_the_sample(cinc2017_dir, cpsc2021_dir, cinc2021_dir):
    from sleepecg import detect_heartbeats

    leads = [(read_record(cinc2017_dir / f"{name}.hea"), 0) for name in ("A00001", "A00004", "A00022", "A01347")]
    leads += [(read_record(cpsc2021_dir / "data_101_6.hea"), 1), (read_record(sorted(cinc2021_dir.glob("*.hea"))[0]), 6)]
    for record, k in leads:
        lead = np.asarray(record.signal[:, k], dtype=np.float64)
        flat_start = np.concatenate([np.full(int(record.fs), lead[0]), lead])  # sleepecg skips a flat start
        shortest = lead[: int(MIN_BEATS_S * record.fs)]
        for x in (lead, flat_start) + ((shortest,) if shortest[1] != shortest[0] else ()):  # (the next test)
            y = (x - x[0]) / np.abs(x - x[0]).max()
            np.testing.assert_array_equal(detect_beats(x, record.fs), detect_heartbeats(y, record.fs), err_msg=record.record_name)


def test_a_stretch_under_2_s_after_its_flat_start_gives_no_beats(cinc2021_dir):
    # sleepecg skips the flat start, then reads 2 s: past the end of this stretch, whose beats then changed from one
    # call to the next (its first 4 samples are equal)
    record = read_record(sorted(cinc2021_dir.glob("*.hea"))[0])
    shortest = np.asarray(record.signal[: int(MIN_BEATS_S * record.fs), 6], dtype=np.float64)
    assert shortest[1] == shortest[0] and len(detect_beats(shortest, record.fs)) == 0
    assert len(detect_beats(np.asarray(record.signal[: int(3 * record.fs), 6]), record.fs)) > 0  # a longer one has its beats


@pytest.mark.parametrize(("corpus", "name"), [("cinc2017", "A00001"), ("cinc2017", "A00004"), ("cinc2021", "E07501"), ("cinc2021", "E07503")])
def test_beats_detected_at_a_lower_rate_come_back_within_a_sample(cinc2017_dir, cinc2021_dir, corpus, name):
    # 300 Hz detected at 150 Hz (means of 2 samples), 500 Hz at 167 Hz (means of 3); each beat put back between samples
    record = read_record((cinc2017_dir if corpus == "cinc2017" else cinc2021_dir) / f"{name}.hea")
    lead = np.asarray(record.signal[:, 0], dtype=np.float64)
    full, lower = detect_beats(lead, record.fs), detect_beats(lead, record.fs, min_fs=150.0)
    assert len(lower) == len(full) > 15 and np.all(np.abs(lower - full) <= 1)
    q = 2 if record.fs == 300 else 3
    assert len(set((lower % q).tolist())) == q  # at the record's rate, not on every q-th sample
    assert np.mean(lower == full) > 0.75
    flat_start = np.concatenate([np.full(int(record.fs), lead[0]), lead])
    assert np.all(np.abs(detect_beats(flat_start, record.fs, min_fs=150.0) - int(record.fs) - lower) <= 1)


def test_xqrs_finds_wfdbs_own_local_peaks_and_beats_on_real_stretches(cpsc2021_dir, cinc2017_dir):
    from wfdb import processing
    from wfdb.processing.peaks import find_local_peaks

    from ecgrhythm.preprocessing.rpeaks import local_peaks

    stretches = []
    for path, fs in ((cpsc2021_dir / "data_101_6.hea", 200.0), (cpsc2021_dir / "data_21_7.hea", 200.0), (cinc2017_dir / "A00004.hea", 300.0)):
        lead = read_record(path).signal[:, 0].astype(np.float64)
        step = round(12 * fs)  # the stretches the episode finder reads around a change of rhythm
        stretches += [(lead[a : a + step], fs) for a in range(0, len(lead) - step + 1, step // 2)]
    for x, fs in stretches[::4]:
        for radius in (1, 3, round(0.1 * fs)):
            for sig in (x, np.round(x, 1), x**2):  # plateaus: equal neighbours
                ours, theirs = local_peaks(sig, radius), find_local_peaks(sig, radius)
                assert ours.dtype == theirs.dtype
                np.testing.assert_array_equal(ours, theirs)
    for sig, radius in ((np.full(50, 2.0), 5), (np.arange(4.0), 10), (np.array([0.0, np.inf, 1.0, 0.0, 3.0]), 1)):  # flat, short, inf
        np.testing.assert_array_equal(local_peaks(sig, radius), find_local_peaks(sig, radius))
    for x, fs in stretches:
        expected = np.unique(np.asarray(processing.xqrs_detect(x, fs=fs, verbose=False), dtype=int))
        np.testing.assert_array_equal(detect_r_peaks(x, fs), expected)
