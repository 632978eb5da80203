"""Premature beats inserted in a real sinus record, and the CinC 2021 labels read as abbreviations."""

import numpy as np
import pytest

from ecgrhythm.features.rhythm import PAUSE, PREMATURE, rhythm_features
from ecgrhythm.lab.ectopy import insert_premature_beats, scp_labels
from ecgrhythm.preprocessing.rpeaks import detect_beats
from ecgrhythm.records import read_record


@pytest.fixture(scope="module")
def sinus(cinc2017_dir):
    """A00006: labelled N, regular at about 57 beats a minute (looked at by eye)."""
    record = read_record(cinc2017_dir / "A00006")
    x = record.signal[:, 0].astype(np.float64)
    return x, record.fs, detect_beats(x, record.fs)


def test_moved_beats_come_early_and_are_followed_by_a_compensatory_pause(sinus):
    x, fs, peaks = sinus
    y, moved = insert_premature_beats(x, fs, peaks, prematurity=0.25, spacing=(4, 8), seed=0)
    assert len(y) == len(x) and len(moved) >= 3
    found = detect_beats(y, fs)
    rr, median = np.diff(found), np.median(np.diff(peaks))
    for beat in moved:
        i = int(np.argmin(np.abs(found - beat)))
        assert abs(found[i] - beat) <= 0.05 * fs  # the moved beat is detected where it was put
        assert rr[i - 1] < PREMATURE * median and rr[i] > PAUSE * median
        assert rr[i - 1] + rr[i] == pytest.approx(2 * median, rel=0.08)  # the pause compensates
    assert np.array_equal(y[: moved[0] - int(0.5 * fs)], x[: moved[0] - int(0.5 * fs)])  # untouched before the first


def test_the_features_see_premature_beats_on_a_regular_rhythm(sinus):
    x, fs, peaks = sinus
    y, moved = insert_premature_beats(x, fs, peaks, seed=0)
    before, after = rhythm_features(x, fs), rhythm_features(y, fs)
    assert before["premature_share"] == 0 and after["premature_share"] == pytest.approx(len(moved) / (after["n_beats"] - 1))
    assert after["nrmssd"] > 5 * before["nrmssd"]  # irregular on the whole ...
    assert after["regular_nrmssd"] < 1.2 * before["regular_nrmssd"]  # ... regular once the premature beats are set aside
    assert after["p_corr"] > 0.85


def test_bad_arguments_are_refused(sinus):
    x, fs, peaks = sinus
    with pytest.raises(ValueError, match="`prematurity`"):
        insert_premature_beats(x, fs, peaks, prematurity=0.7)
    with pytest.raises(ValueError, match="`spacing`"):
        insert_premature_beats(x, fs, peaks, spacing=(1, 3))


def test_cinc2021_diagnoses_read_as_abbreviations(cinc2021_dir, tmp_path):
    assert scp_labels(cinc2021_dir / "E07500.hea") == ["LAE", "SB"]  # '# Dx: 67741000119109,426177001', by hand in the two mappings
    bare = tmp_path / "x.hea"
    bare.write_text("x 1 500 1000\n", encoding="utf-8")
    with pytest.raises(ValueError, match="Dx"):
        scp_labels(bare, cinc2021_dir)
