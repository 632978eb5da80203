"""The P-wave coherence before each QRS on real records: high in sinus rhythm, low in AF, the same read in pieces."""

import numpy as np
import pytest

from ecgrhythm.episodes.annotations import read_rhythm_annotations
from ecgrhythm.episodes.atrial import BAND_HZ, NEIGHBOURS, P_WAVE_FLOOR, WINDOW_S, p_wave_coherence, p_wave_evidence, p_wave_windows
from ecgrhythm.episodes.beats import record_beats
from ecgrhythm.preprocessing.filters import zero_phase_lead
from ecgrhythm.records import read_record
from ecgrhythm.scoring.episodes import in_intervals


def _lead(path, lead=0):
    record = read_record(path)
    signal = record.signal[:, lead].astype(np.float64)
    reads = []

    def read(a, b):
        reads.append(b - a)
        return signal[a:b]

    return signal, record.fs, read, reads


@pytest.mark.parametrize("name", ["data_101_6", "data_92_19"])
def test_coherence_is_lower_in_annotated_af_than_around_it(cpsc2021_dir, name):
    signal, fs, read, _ = _lead(cpsc2021_dir / f"{name}.hea")
    beats = record_beats(read, fs, len(signal))
    coherence = p_wave_coherence(read, fs, len(signal), beats)
    truth = read_rhythm_annotations(cpsc2021_dir / f"{name}.hea")
    af = in_intervals(beats, truth.af_intervals())
    assert af.any() and (~af).any()
    assert ((coherence >= 0) & (coherence <= 1 + 1e-9)).all()
    assert coherence[af].mean() < 0.3 < 0.6 < coherence[~af].mean()


def test_a_sinus_record_repeats_its_p_waves_and_one_without_them_gives_no_evidence(cpsc2021_dir):
    signal, fs, read, _ = _lead(cpsc2021_dir / "data_21_7.hea")  # non-AF throughout, P waves before every QRS
    beats = record_beats(read, fs, len(signal))
    assert np.median(p_wave_coherence(read, fs, len(signal), beats)) > 0.9
    np.testing.assert_allclose(p_wave_evidence(read, fs, len(signal), beats), p_wave_coherence(read, fs, len(signal), beats) - P_WAVE_FLOOR)
    signal, fs, read, _ = _lead(cpsc2021_dir / "data_35_4.hea")  # not AF, irregular, no P wave to see: the evidence is silent
    beats = record_beats(read, fs, len(signal))
    assert np.mean(p_wave_evidence(read, fs, len(signal), beats) == 0) > 0.95


def test_pieces_give_the_coherence_of_the_whole_lead_and_read_only_pieces(cpsc2021_dir):
    signal, fs, read, reads = _lead(cpsc2021_dir / "data_21_8.hea")  # 518 s
    beats = record_beats(read, fs, len(signal))
    whole = p_wave_coherence(read, fs, len(signal), beats, piece_s=1e6)
    reads.clear()
    pieces = p_wave_coherence(read, fs, len(signal), beats, piece_s=20.0)
    np.testing.assert_allclose(pieces, whole, atol=1e-9)  # the filter's ends fade within the margins
    assert max(reads) <= (20.0 + 41.0) * fs  # a piece and its margins, never the lead


def test_a_lead_that_starts_at_an_r_peak_gives_its_first_beat_no_window(cpsc2021_dir):
    signal, fs, _, _ = _lead(cpsc2021_dir / "data_21_8.hea")
    beats = record_beats(lambda a, b: signal[a:b], fs, len(signal))
    lead = signal[beats[3] - 8 :]  # the first beat 8 samples in: its whole window lies before the lead's start
    beats = beats[3:] - beats[3] + 8
    assert beats[0] < round(WINDOW_S[1] * fs)
    windows = p_wave_windows(zero_phase_lead(lead, fs, *BAND_HZ), beats[:3], fs)
    assert not windows[0].any() and np.allclose(np.linalg.norm(windows[1:], axis=1), 1.0)  # not the first sample's rounding made unit length
    whole = p_wave_coherence(lambda a, b: lead[a:b], fs, len(lead), beats, piece_s=1e6)
    np.testing.assert_allclose(p_wave_coherence(lambda a, b: lead[a:b], fs, len(lead), beats, piece_s=7.0), whole, atol=1e-9)


def test_edges_short_leads_and_flat_leads_give_numbers_not_errors():
    fs = 200.0
    assert p_wave_coherence(lambda a, b: np.zeros(b - a), fs, 1000, np.zeros(0, dtype=int)).shape == (0,)
    flat = p_wave_coherence(lambda a, b: np.zeros(b - a), fs, 2000, np.array([0, 150, 300, 1999]))
    assert flat.tolist() == [0.0] * 4  # nothing before the QRS: no repeating P wave
    short = p_wave_coherence(lambda a, b: np.ones(b - a), fs, 10, np.array([5]))  # too short to filter
    assert short.tolist() == [0.0]
    x = np.random.default_rng(0).normal(size=2000)
    assert p_wave_coherence(lambda a, b: x[a:b], fs, len(x), np.array([700])).tolist() == [0.0]  # a lone beat: nothing repeats
    for beats in ([-1, 500], [500, 2000], [900, 500]):
        with pytest.raises(ValueError, match="Invalid argument `beats`"):
            p_wave_coherence(lambda a, b: x[a:b], fs, len(x), np.array(beats))
    # the same window before every beat: coherence 1 wherever a beat has its neighbours' windows
    beat = np.zeros(160)
    beat[60:80] = np.hanning(20)  # a P wave 0.30-0.20 s before the R peak at 160
    x = np.tile(beat, 40)
    peaks = np.arange(160 + 150, len(x), 160)[: 3 * NEIGHBOURS]
    ones = p_wave_coherence(lambda a, b: x[a:b], fs, len(x), peaks)
    assert (ones[NEIGHBOURS:-NEIGHBOURS] > 0.98).all() and (ones <= 1.0).all()  # not above 1 by rounding
    assert p_wave_windows(x, peaks, fs).shape == (len(peaks), round(0.29 * fs))
