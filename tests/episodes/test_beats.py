"""The beats method: Viterbi over beats, beats found in pieces, and real records end to end."""

from itertools import pairwise

import numpy as np
import pytest

from ecgrhythm.episodes.beats import BeatModel, beat_stretches, record_beats, viterbi_af
from ecgrhythm.episodes.finder import EpisodeParams, record_episodes, stream_episodes
from ecgrhythm.episodes.windows import WindowProbabilities
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.preprocessing.rpeaks import detect_beats
from ecgrhythm.records import open_wfdb, read_record

BEATS = EpisodeParams(method="beats")


def _beats(rr_s, fs=200.0):
    return np.round(np.concatenate([[0.0], np.cumsum(rr_s)]) * fs).astype(int)


def test_viterbi_keeps_a_run_and_ignores_a_lone_beat():
    logit = np.full(100, -3.0)
    logit[30:60] = 3.0  # a 30-beat AF run
    logit[80] = 5.0  # one odd beat
    states = viterbi_af(logit, switch_cost=10.0)
    assert states[30:60].all() and not states[:30].any() and not states[60:].any()
    assert viterbi_af(logit, switch_cost=0.0)[80]  # without a cost each beat follows its own evidence
    assert viterbi_af(np.zeros(0), 10.0).shape == (0,)


@pytest.mark.parametrize(
    "change",
    [
        {"evidence": ("rr_tagger", "rr_tagger"), "mean": (0.0, 0.0), "scale": (1.0, 1.0), "coef": (1.0, 1.0)},
        {"evidence": ["rr_tagger"]},
        {"evidence": ("qrs_width",)},
        {"coef": (1.0, 2.0)},
        {"blend": (1.0, 0.0)},
        {"scale": (0.0,)},
        {"mean": (float("nan"),)},
        {"blend": (1.0, float("inf"), 0.0)},
    ],
)
def test_a_beat_model_that_cannot_give_log_odds_is_refused(change):
    fields = {"mean": (0.0,), "scale": (1.0,), "coef": (1.0,), "intercept": 0.0, "blend": (1.0, 0.0, 0.0), "evidence": ("rr_tagger",)}
    BeatModel(**fields)
    with pytest.raises(ValueError, match="Invalid"):
        BeatModel(**{**fields, **change})


def test_stretches_run_from_the_first_af_beat_to_the_last():
    beats = _beats(np.full(99, 0.5))  # 100 beats, 0.5 s apart, 50 s at 200 Hz
    p = np.where((np.arange(21) >= 8) & (np.arange(21) <= 12), 0.999, 0.001)
    starts = np.arange(21) * 2.0
    windows = WindowProbabilities(starts, starts + 10.0, np.stack([1 - p, p], axis=1), ["N", "A"], 50.0)
    network_only = BeatModel(mean=(), scale=(), coef=(), intercept=0.0, blend=(0.0, 1.0, 0.0), evidence=())  # the placement, not the evidence
    stretches = beat_stretches(
        windows, lambda a, b: np.zeros(b - a), beats, 200.0, 10000, EpisodeParams(method="beats", beat_switch_cost=5.0), network_only
    )
    assert [s[2] for s in stretches] == [False, True, False]
    (a, b, _) = stretches[1]
    assert a * 200 in beats and b * 200 in beats and 19 <= a <= 22 and 28 <= b <= 31  # on beats, around the AF windows (centred 21-29 s)
    assert all(x[1] == y[0] for x, y in pairwise(stretches)) and stretches[-1][1] == 50.0


def test_beats_found_in_pieces_are_the_beats_of_the_whole_lead(cpsc2021_dir):
    record = read_record(cpsc2021_dir / "data_21_8.hea")  # 518 s: two pieces of 300 s
    signal = record.signal[:, 0]
    whole = detect_beats(signal, record.fs)
    pieces = record_beats(lambda a, b: signal[a:b], record.fs, len(signal))
    assert len(pieces) == pytest.approx(len(whole), rel=0.01) and (np.diff(pieces) > 0).all()
    assert np.mean(np.min(np.abs(pieces[:, None] - whole[None, :]), axis=1) <= 2) > 0.98


def test_beats_method_on_a_real_record_streamed_and_whole(cpsc2021_dir):
    from ecgrhythm.episodes.annotations import read_rhythm_annotations
    from ecgrhythm.scoring.episodes import af_burden

    clf = RhythmClassifier.load()
    header = cpsc2021_dir / "data_101_8.hea"
    whole = record_episodes(clf, read_record(header), params=BEATS)
    with open_wfdb(header) as stream:
        assert stream_episodes(clf, stream, params=BEATS, piece_s=30.0) == whole
    truth = read_rhythm_annotations(header)
    eps = whole.episodes
    assert eps[0].start_s == 0.0 and all(a.end_s == b.start_s and a.label != b.label for a, b in pairwise(eps))
    assert whole.record_class == "paroxysmal"
    assert abs(whole.af_burden - af_burden(truth.af_intervals(), truth.n_samples)) < 0.1
    # the files' road (`ecgrhythm episodes --episode-method beats`) gives the same episodes: the record is over 65 s
    from ecgrhythm.cli.common import episode_params
    from ecgrhythm.episodes.files import iter_file_episodes

    params = episode_params(type("Args", (), {"episode_method": "beats"})())
    assert params == BEATS
    (through_files,) = iter_file_episodes(clf, [header], lead="I", params=params)
    assert through_files.episodes == whole.episodes
