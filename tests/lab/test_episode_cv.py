"""Episode cross-validation pieces on hand-made records: beat truth, fold groups, and the beat model's fit."""

import numpy as np

from ecgrhythm.episodes.annotations import RhythmAnnotations
from ecgrhythm.episodes.beats import beat_evidence, beat_network_logit
from ecgrhythm.episodes.windows import WindowProbabilities
from ecgrhythm.lab.episode_cv import beat_labels, evidence_auc, fit_beat_model, fold_groups
from ecgrhythm.lab.episode_data import EpisodeCase

FS = 200.0


def _case(name, group, seed):
    """120 beats: regular, then 40 irregular ones (AF), then regular again; windows agreeing weakly."""
    rng = np.random.default_rng(seed)
    rr = np.concatenate([np.full(40, 0.8), rng.uniform(0.4, 1.0, 40), np.full(40, 0.8)]) + rng.normal(0, 0.01, 120)
    beats = np.round(np.cumsum(rr) * FS).astype(int)
    n = int(beats[-1] + FS)
    onset, end = int(beats[40] - 10), int(beats[79] + 10)
    samples = np.unique(np.concatenate([beats, [onset, end]]))
    truth = RhythmAnnotations(name, FS, n, samples, np.searchsorted(samples, [onset]), np.searchsorted(samples, [end]), 2)
    starts = np.arange(0, n / FS - 10, 2.0)
    centres = starts + 5
    p = np.where((centres > onset / FS) & (centres < end / FS), 0.7, 0.3)
    windows = WindowProbabilities(starts, starts + 10, np.stack([1 - p, p], axis=1), ["N", "A"], n / FS)
    return EpisodeCase(name, group, np.zeros(n, np.float32), FS, truth, windows, beats)


def test_beat_truth_folds_and_a_fitted_model_that_finds_the_irregular_beats():
    cases = [_case(f"r{i}", f"p{i // 2}", i) for i in range(6)]
    y = beat_labels(cases[0])
    assert y[40:80].all() and not y[:40].any() and not y[80:].any()
    assert fold_groups(cases).tolist() == [0, 0, 1, 1, 2, 2] and fold_groups(cases, 2).tolist() == [0, 0, 1, 1, 0, 0]
    model = fit_beat_model(cases[:4], cases[:4], evidence=("rr_tagger",))  # R-R intervals only: the signal is flat
    held = cases[5]
    logit = model.logit(beat_evidence(held.read, FS, held.n_samples, held.beats, model.evidence), beat_network_logit(held.windows, held.beats, FS))
    assert np.mean((logit > 0) == beat_labels(held)) > 0.85
    assert model.blend[0] > 0 and model.blend[1] > 0  # both kinds of evidence count towards AF


def test_evidence_auc_credits_the_irregular_beats_and_not_a_flat_lead():
    auc = evidence_auc([_case(f"r{i}", "p", i) for i in range(2)])
    assert auc["rr_tagger"] > 0.9 and auc["p_wave_coherence"] == 0.5  # a flat lead has no P waves anywhere: no evidence
