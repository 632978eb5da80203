"""The R-R tagger: its features on hand-made beats, the shipped graph on real records, and records read in stretches."""

import numpy as np
import pytest

from ecgrhythm.episodes.annotations import read_rhythm_annotations
from ecgrhythm.episodes.beats import record_beats
from ecgrhythm.episodes.rr_tagger import CHUNK_BEATS, FEATURE_NAMES, INPUT_NAMES, beat_features, rr_tagger_logit, tagger_inputs
from ecgrhythm.records import read_record
from ecgrhythm.scoring.episodes import in_intervals


def _beats(rr_s, fs=200.0):
    return np.round(np.concatenate([[0.0], np.cumsum(rr_s)]) * fs).astype(int)


def test_irregular_intervals_score_higher_than_regular_and_bigeminy():
    rng = np.random.default_rng(0)
    regular = beat_features(_beats(np.full(60, 0.8)), 200.0)
    af = beat_features(_beats(rng.uniform(0.4, 1.0, 60)), 200.0)
    bigeminy = beat_features(_beats(np.tile([0.5, 1.0], 30)), 200.0)
    col = {name: i for i, name in enumerate(FEATURE_NAMES)}
    assert regular.shape == (61, len(FEATURE_NAMES)) and np.isfinite(af).all()
    assert np.median(af[:, col["msd16"]]) > np.median(regular[:, col["msd16"]]) + 2
    # bigeminy is as irregular beat to beat as AF, but repeats every two beats
    assert np.median(bigeminy[:, col["lag2_16"]]) < np.median(af[:, col["lag2_16"]]) - 2
    assert np.median(bigeminy[:, col["pattern16"]]) < np.log(0.1) < np.median(af[:, col["pattern16"]])  # log-scaled
    assert beat_features(np.array([0, 100]), 200.0).shape == (2, len(FEATURE_NAMES))


def _record_beats(cpsc2021_dir, name):
    record = read_record(cpsc2021_dir / f"{name}.hea")
    beats = record_beats(lambda a, b: record.signal[a:b, 0], record.fs, record.n_samples)
    return beats, record.fs, read_rhythm_annotations(cpsc2021_dir / f"{name}.hea")


def test_the_tagger_tells_af_beats_from_others_on_real_records(cpsc2021_dir):
    from sklearn.metrics import roc_auc_score

    beats, fs, truth = _record_beats(cpsc2021_dir, "data_101_8")  # paroxysmal AF: 66 % of it in two episodes
    af = in_intervals(beats, truth.af_intervals())
    logit = rr_tagger_logit(beats, fs)
    assert logit.shape == beats.shape and np.isfinite(logit).all()
    assert roc_auc_score(af, logit) > 0.9
    persistent, fs, _ = _record_beats(cpsc2021_dir, "data_84_2")  # AF throughout
    sinus, fs, _ = _record_beats(cpsc2021_dir, "data_21_8")  # no AF
    assert np.mean(rr_tagger_logit(persistent, fs) > 0) > 0.8 and np.mean(rr_tagger_logit(sinus, fs) < 0) > 0.9


def test_hand_made_rhythms_and_too_few_beats():
    rng = np.random.default_rng(1)
    regular = rr_tagger_logit(_beats(np.full(200, 0.8) + rng.normal(0, 0.01, 200)), 200.0)
    irregular = rr_tagger_logit(_beats(rng.uniform(0.4, 1.0, 200)), 200.0)
    assert np.median(regular) < 0 < np.median(irregular)
    assert tagger_inputs(_beats(np.full(20, 0.8)), 200.0).shape == (21, len(INPUT_NAMES))
    assert rr_tagger_logit(np.array([0, 160]), 200.0).tolist() == [0.0, 0.0]


def test_a_long_record_is_tagged_stretch_by_stretch_as_its_parts(cpsc2021_dir):
    rng = np.random.default_rng(2)
    rr = np.concatenate([np.full(3000, 0.8) + rng.normal(0, 0.01, 3000), rng.uniform(0.4, 1.0, 3000), np.full(3000, 0.7)])
    beats = _beats(rr)  # 9,001 beats: three stretches of CHUNK_BEATS
    whole = rr_tagger_logit(beats, 200.0)
    first = rr_tagger_logit(beats[: CHUNK_BEATS + 256], 200.0)  # the first stretch with the margin it is read with
    np.testing.assert_allclose(whole[:CHUNK_BEATS], first[:CHUNK_BEATS], atol=1e-5)
    assert np.median(whole[3500:5500]) > 0 > max(np.median(whole[:2500]), np.median(whole[6500:]))


@pytest.mark.parametrize("n", [3, 50])
def test_few_beats_give_finite_log_odds(n):
    assert np.isfinite(rr_tagger_logit(_beats(np.full(n - 1, 0.9)), 250.0)).all()


def test_a_stretchs_inputs_need_only_the_beats_within_its_reach():
    from ecgrhythm.episodes.rr_tagger import _FEATURE_REACH, mirrored

    rng = np.random.default_rng(3)
    beats = mirrored(_beats(np.concatenate([rng.uniform(0.4, 1.0, 300), np.tile([0.6, 1.1], 150), np.full(300, 0.8)])))
    whole = tagger_inputs(beats, 200.0)
    for lo, hi in ((0, 100), (250, 400), (600, len(beats))):
        first, stop = max(0, lo - _FEATURE_REACH), min(len(beats), hi + _FEATURE_REACH)
        np.testing.assert_array_equal(tagger_inputs(beats[first:stop], 200.0)[lo - first : hi - first], whole[lo:hi])


def test_beats_that_are_not_increasing_sample_indices_are_refused():
    for bad in (np.array([0, 200, 200, 400]), np.array([400, 200, 0]), np.array([0.0, 200.0, 400.0]), np.zeros((3, 2), int)):
        with pytest.raises(ValueError, match="Invalid argument `beats`"):
            rr_tagger_logit(bad, 200.0)
