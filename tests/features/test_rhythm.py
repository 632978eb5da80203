"""Rhythm and beat features on hand-checked CinC 2017 records, and their edge cases.

Looked at by eye (the first 10 s drawn with sleepecg's beats): A00004 (labelled A) has irregular R-R intervals
and no wave repeating before its QRS complexes, only the T waves after them; A00007 and A00006 (labelled N) are
regular, each QRS preceded by the same small P wave (A00007's QRS mostly negative).
"""

import math

import numpy as np
import pytest

from ecgrhythm.features.rhythm import FEATURE_NAMES, rhythm_features
from ecgrhythm.records import read_record


@pytest.fixture(scope="module")
def features(cinc2017_dir):
    """`{record: features}` of the hand-checked records."""
    out = {}
    for name in ("A00004", "A00006", "A00007"):
        record = read_record(cinc2017_dir / name)
        out[name] = rhythm_features(record.signal[:, 0], record.fs)
    return out


def test_every_feature_is_given_in_order_and_finite_on_clean_records(features):
    for values in features.values():
        assert tuple(values) == FEATURE_NAMES
        assert all(math.isfinite(v) for v in values.values())


def test_af_is_irregular_and_sinus_rhythm_is_not(features):
    af, normals = features["A00004"], [features["A00006"], features["A00007"]]
    for n in normals:
        assert n["madsd"] < 0.05 < 0.1 < af["madsd"]
        assert n["nrmssd"] < 0.1 < af["nrmssd"]
        assert n["cosen"] < af["cosen"]
        assert n["premature_share"] == 0.0
        assert n["regular_nrmssd"] < af["regular_nrmssd"]
        assert 55 < n["heart_rate"] < 70


def test_p_waves_repeat_before_sinus_beats_and_not_before_af_beats(features):
    af = features["A00004"]
    for name in ("A00006", "A00007"):
        assert features[name]["p_corr"] > 0.85 > 0.6 > af["p_corr"]
        assert features[name]["p_amplitude"] > 1.5 * af["p_amplitude"]


def test_beats_match_their_template_whatever_the_rhythm(features):
    for values in features.values():
        assert values["beat_corr"] > 0.95 and values["beat_match_share"] > 0.85
        assert 0.03 <= values["qrs_width"] <= 0.12  # narrow QRS complexes
        assert 0.3 < values["r_amplitude"] < 3.0  # mV


def test_noise_matches_no_template(cinc2017_dir):
    record = read_record(cinc2017_dir / "A00006")
    noise = np.random.default_rng(0).normal(0.0, record.signal[:, 0].std(), record.n_samples)
    values = rhythm_features(noise, record.fs)
    assert values["beat_corr"] < 0.5 and values["beat_match_share"] < 0.2


def test_too_few_beats_give_nan_and_bad_input_is_refused():
    flat = rhythm_features(np.zeros(3000), 300.0)
    assert flat["n_beats"] == 0 and all(math.isnan(v) for k, v in flat.items() if k != "n_beats")
    with pytest.raises(ValueError, match="`signal`"):
        rhythm_features(np.zeros((3000, 2)), 300.0)
    with pytest.raises(ValueError, match="`signal`"):
        rhythm_features(np.r_[np.zeros(10), np.nan], 300.0)
    with pytest.raises(ValueError, match="`fs`"):
        rhythm_features(np.zeros(3000), 0.0)
