"""Preprocessing: normalisation and resampling by their definitions, filters on known tones, real records,
lead selection, extreme-but-valid signals and property-based checks that the output is always finite."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import ecgrhythm.preprocessing.pipeline as preprocessing
from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing.pipeline import RR_RANGE_S, bandpass, normalize, preprocess, resample, rr_intervals
from ecgrhythm.records import EcgRecord, RecordError, read_record

F32_MAX = float(np.finfo(np.float32).max)
METHODS = ("zscore", "minmax", "robust", "none")


def _record(signal, fs=300.0, names=None, name="rec"):
    signal = np.ascontiguousarray(signal, dtype=np.float32)
    signal = signal[:, None] if signal.ndim == 1 else signal
    return EcgRecord(signal, fs, tuple(names or (f"lead{i + 1}" for i in range(signal.shape[1]))), name)


@pytest.fixture(scope="module")
def noisy():
    """Two leads of skewed noise with different offsets and scales, `(3000, 2)` float32."""
    rng = np.random.default_rng(0)
    return np.stack([rng.gamma(2.0, 3.0, 3000) + 7.0, rng.normal(-2.0, 0.01, 3000)], axis=1).astype(np.float32)


# --------------------------------------------------------------------------- normalisation


def test_zscore_gives_mean_zero_and_unit_std(noisy):
    out = normalize(noisy, "zscore")
    assert out.dtype == np.float32 and out.shape == noisy.shape
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1.0, rtol=1e-5)


def test_minmax_spans_minus_one_to_one(noisy):
    out = normalize(noisy, "minmax")
    np.testing.assert_allclose(out.min(axis=0), -1.0, atol=1e-6)
    np.testing.assert_allclose(out.max(axis=0), 1.0, atol=1e-6)


def test_robust_gives_median_zero_and_unit_iqr(noisy):
    out = normalize(noisy, "robust").astype(np.float64)
    q25, median, q75 = np.percentile(out, [25, 50, 75], axis=0)
    np.testing.assert_allclose(median, 0.0, atol=1e-5)
    np.testing.assert_allclose(q75 - q25, 1.0, rtol=1e-5)


def test_none_returns_the_signal_and_unknown_method_is_named(noisy):
    assert normalize(noisy, "none") is noisy
    with pytest.raises(ValueError, match="method='l2'"):
        normalize(noisy, "l2")


@pytest.mark.parametrize("value", [0.0, 1e-30, -3.5, F32_MAX, -F32_MAX])
@pytest.mark.parametrize("method", ["zscore", "minmax", "robust"])
def test_constant_lead_becomes_exact_zeros(method, value):
    signal = np.full((700, 2), value, np.float32)
    signal[:, 1] = np.linspace(-1, 1, 700)
    out = normalize(signal, method)
    assert np.array_equal(out[:, 0], np.zeros(700, np.float32))
    assert np.isfinite(out).all() and out[:, 1].std() > 0.1


# --------------------------------------------------------------------------- resampling and filtering


@pytest.mark.parametrize("fs, target", [(300.0, 150.0), (250.0, 500.0), (500.0, 150.0), (360.0, 150.0)])
def test_resample_length_and_tone(fs, target):
    n = int(fs * 10)
    tone = np.sin(2 * np.pi * 5.0 * np.arange(n) / fs).astype(np.float32)[:, None]
    out = resample(tone, fs, target)
    assert out.dtype == np.float32 and abs(out.shape[0] - n * target / fs) <= 1
    expected = np.sin(2 * np.pi * 5.0 * np.arange(out.shape[0]) / target)
    middle = slice(int(target), -int(target))  # away from the edge transients
    np.testing.assert_allclose(out[middle, 0], expected[middle], atol=2e-2)


def test_resample_300_to_150_halves_the_length_exactly():
    assert resample(np.zeros((9000, 2), np.float32), 300.0, 150.0).shape == (4500, 2)
    same = np.ones((10, 1), np.float32)
    assert resample(same, 150.0, 150.0) is same


def test_bandpass_keeps_the_band_and_removes_dc_and_high_tones():
    fs, t = 150.0, np.arange(3000) / 150.0
    inside = np.sin(2 * np.pi * 10.0 * t)
    signal = (inside + 5.0 + np.sin(2 * np.pi * 65.0 * t)).astype(np.float32)[:, None]
    out = bandpass(signal, fs, 0.5, 40.0)
    middle = slice(300, -300)
    np.testing.assert_allclose(out[middle, 0], inside[middle], atol=0.05)
    low = bandpass(signal, fs, 0.0, 40.0)  # low-pass only: the offset stays
    np.testing.assert_allclose(low[middle, 0], inside[middle] + 5.0, atol=0.05)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 7])
def test_very_short_arrays_stay_finite(n):
    signal = np.linspace(-F32_MAX, F32_MAX, n, dtype=np.float32)[:, None]
    assert resample(signal, 300.0, 150.0).shape[0] == -(-n // 2)
    assert bandpass(signal, 150.0, 0.5, 40.0).shape == (n, 1)
    for method in METHODS:
        assert normalize(signal, method).shape == (n, 1)
    for out in (resample(signal, 300.0, 150.0), bandpass(signal, 150.0, 0.5, 40.0), normalize(signal, "zscore")):
        assert np.isfinite(out).all()


# --------------------------------------------------------------------------- preprocess


def test_preprocess_real_cinc2017_record(cinc2017_dir):
    record = read_record(cinc2017_dir / "A00001.hea")
    out = preprocess(record, PreprocessConfig(fs=150.0, normalization="zscore", bandpass=(0.5, 40.0)))
    assert out.dtype == np.float32 and out.shape == (record.n_samples // 2, 1)
    np.testing.assert_allclose(out.mean(), 0.0, atol=1e-4)
    np.testing.assert_allclose(out.std(), 1.0, rtol=1e-4)


def test_lead_selection_on_a_real_12_lead_record(cinc2021_dir):
    record = read_record(sorted(cinc2021_dir.glob("*.hea"))[0])
    config = PreprocessConfig(fs=record.fs, normalization="none", bandpass=None, leads=("II", "V1"))
    out = preprocess(record, config)
    np.testing.assert_array_equal(out, record.signal[:, [record.sig_name.index("II"), record.sig_name.index("V1")]])
    loose = preprocess(record, PreprocessConfig(fs=record.fs, normalization="none", bandpass=None, leads=(" ii", "v1 ")))
    np.testing.assert_array_equal(loose, out)
    with pytest.raises(RecordError) as err:
        preprocess(record, PreprocessConfig(fs=150.0, leads=("II", "V7", "ECG")))
    message = str(err.value)
    assert "'V7'" in message and "'ECG'" in message and "'II'" not in message.split(";")[0] and record.record_name in message


def test_single_lead_model_takes_any_single_lead_record():
    record = _record(np.sin(np.arange(900) / 5.0), names=["MLII"])
    out = preprocess(record, PreprocessConfig(fs=150.0, leads=("ECG",)))
    assert out.shape == (450, 1) and np.isfinite(out).all()
    with pytest.raises(RecordError, match="ECG"):
        preprocess(_record(np.zeros((900, 2)), names=["I", "II"]), PreprocessConfig(fs=150.0, leads=("ECG",)))


def _extreme(name: str, n: int = 900) -> np.ndarray:
    x = np.zeros((n, 2), np.float32)
    if name == "flat":
        x[:] = 1.5
    elif name == "max":
        x[:] = F32_MAX
    elif name == "alternating-max":
        x[:] = np.where(np.arange(n) % 2, F32_MAX, -F32_MAX)[:, None]
    elif name == "step-max":
        x[n // 2 :] = F32_MAX
        x[: n // 2] = -F32_MAX
    elif name == "one-sample-different":
        x[n // 3, 0] = 1e-3
        x[n // 2, 1] = F32_MAX
    elif name == "tiny":
        x[:] = np.sin(np.arange(n))[:, None] * 1e-30
    return x


@pytest.mark.parametrize("bandpass_hz", [None, (0.5, 40.0)])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["flat", "max", "alternating-max", "step-max", "one-sample-different", "tiny"])
def test_extreme_valid_signals_give_finite_output(kind, method, bandpass_hz):
    record = _record(_extreme(kind), fs=300.0)
    out = preprocess(record, PreprocessConfig(fs=150.0, normalization=method, bandpass=bandpass_hz))
    assert out.shape == (450, 2) and out.dtype == np.float32 and np.isfinite(out).all()
    if method == "minmax":
        assert np.abs(out).max() <= 1.0 + 1e-6
    if kind == "step-max" and bandpass_hz is None and method != "none":  # the step survives, scaled
        assert (out[20:200] < 0).all() and (out[-200:-20] > 0).all()


def test_shortest_valid_record_is_preprocessed():
    record = _record(np.random.default_rng(1).normal(size=600), fs=300.0)  # exactly 2 s
    out = preprocess(record, PreprocessConfig(fs=150.0, bandpass=(0.5, 40.0)))
    assert out.shape == (300, 1) and np.isfinite(out).all()


def test_memory_error_becomes_record_error(monkeypatch):
    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(preprocessing, "resample", exhausted)
    with pytest.raises(RecordError, match="too large") as err:
        preprocess(_record(np.zeros(900), name="big"), PreprocessConfig(fs=150.0))
    assert "big" in str(err.value)


@st.composite
def _signals(draw):
    fs = draw(st.sampled_from([150.0, 250.0, 300.0, 360.0, 500.0]))
    n = draw(st.integers(int(2 * fs), int(2 * fs) + 400))
    leads = draw(st.integers(1, 3))
    finite = st.floats(width=32, allow_nan=False, allow_infinity=False)
    return fs, draw(hnp.arrays(np.float32, (n, leads), elements=finite))


@settings(max_examples=60, deadline=None)
@given(_signals(), st.sampled_from(METHODS), st.sampled_from([None, (0.5, 40.0)]), st.sampled_from([100.0, 150.0]), st.booleans())
def test_preprocess_is_finite_with_the_right_shape_for_any_finite_input(signal_fs, method, bandpass_hz, target, rr_channel):
    fs, signal = signal_fs
    record = _record(signal, fs=fs)
    out = preprocess(record, PreprocessConfig(fs=target, normalization=method, bandpass=bandpass_hz, rr_channel=rr_channel))
    assert out.dtype == np.float32 and out.shape[1] == signal.shape[1] + rr_channel
    assert abs(out.shape[0] - signal.shape[0] * target / fs) <= 1
    assert np.isfinite(out).all()
    if method == "minmax":
        assert np.abs(out[:, : signal.shape[1]]).max() <= 1.0 + 1e-6
    if rr_channel:  # seconds within the clipping range, or zeros without beats
        rr = out[:, -1]
        assert np.all((rr == 0) | ((rr >= RR_RANGE_S[0]) & (rr <= RR_RANGE_S[1])))


def test_resample_designs_its_filter_once_and_matches_resample_poly_exactly():
    from fractions import Fraction

    from scipy.signal import resample_poly

    from ecgrhythm.preprocessing.pipeline import resample

    rng = np.random.default_rng(1)
    for fs, n in ((200, 3001), (300, 9000), (500, 5000), (360, 77)):
        x = rng.standard_normal((n, 2)).astype(np.float32)
        ratio = Fraction(150 / fs).limit_denominator(1000)
        expected = resample_poly(x, ratio.numerator, ratio.denominator, axis=0).astype(np.float32)
        for _ in range(2):  # the cached filter is not scaled twice
            assert np.array_equal(resample(x, fs, 150.0), expected)


# --------------------------------------------------------------------------- fixed input length


def test_fixed_length_config_round_trips_and_old_configs_load_unchanged():
    import json
    from pathlib import Path

    fixed = PreprocessConfig(fs=150.0, fixed_length_s=30)
    assert fixed.to_dict()["fixed_length_s"] == 30 and fixed.fixed_samples == 4500
    assert PreprocessConfig.from_dict(json.loads(json.dumps(fixed.to_dict()))) == fixed
    shipped = json.loads((Path(__file__).resolve().parents[2] / "models" / "cinc2017" / "config.json").read_text())["preprocess"]
    assert "fixed_length_s" not in shipped, "the shipped folder takes whole records"
    old = PreprocessConfig.from_dict(shipped)
    assert old.fixed_length_s is None and old.fixed_samples is None
    assert json.loads(json.dumps(old.to_dict())) == shipped, "a config without a fixed length writes the same dict as before"
    for bad in (0, -30, float("nan"), 3601, True, "30"):
        with pytest.raises(ValueError, match="fixed_length_s"):
            PreprocessConfig(fixed_length_s=bad)


@pytest.mark.parametrize(("name", "whole_samples"), [("A00014", 2785), ("A00003", 9000)])  # 18.6 s and 60 s at 300 Hz
def test_fixed_length_crops_or_zero_pads_the_preprocessed_record(cinc2017_dir, name, whole_samples):
    record = read_record(cinc2017_dir / f"{name}.hea")
    whole = preprocess(record, PreprocessConfig(fs=150.0))
    out = preprocess(record, PreprocessConfig(fs=150.0, fixed_length_s=30))
    assert len(whole) == whole_samples
    assert out.dtype == np.float32 and out.shape == (round(30 * 150.0), 1)
    kept = min(len(whole), len(out))
    np.testing.assert_array_equal(out[:kept], whole[:kept])  # normalised over the whole record, then cut
    assert (out[kept:] == 0).all() and np.count_nonzero(out[:kept]) > 0.99 * kept  # zeros only after the record's end


# --------------------------------------------------------------------------- RR-interval channel


@pytest.mark.parametrize("name", ["A00001", "A00004"])  # normal rhythm, AF (REFERENCE.csv)
def test_rr_channel_holds_the_intervals_between_the_detected_beats_of_a_real_record(cinc2017_dir, name):
    from sleepecg import detect_heartbeats

    record = read_record(cinc2017_dir / f"{name}.hea")
    config = PreprocessConfig(fs=150.0, rr_channel=True)
    out = preprocess(record, config)
    plain = preprocess(record, PreprocessConfig(fs=150.0))
    assert out.shape == (len(plain), 2) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, :1], plain)  # the lead is untouched, the RR channel follows it
    filtered = bandpass(resample(record.signal, record.fs, 150.0), 150.0, *config.bandpass)[:, 0]
    beats = detect_heartbeats(filtered.astype(np.float64), 150.0)
    assert len(beats) > 10, "a 30-60 s record has beats"
    rr = out[:, 1]
    for a, b in zip(beats[:-1], beats[1:]):  # between two beats: their distance in seconds
        np.testing.assert_allclose(rr[a:b], np.clip((b - a) / 150.0, *RR_RANGE_S), rtol=1e-6)
    np.testing.assert_allclose(rr[: beats[0]], rr[beats[0]])  # before the first beat: the first interval
    np.testing.assert_allclose(rr[beats[-1] :], rr[beats[-2]])  # from the last beat on: the last interval
    assert np.isfinite(rr).all() and RR_RANGE_S[0] <= rr.min() and rr.max() <= RR_RANGE_S[1]
    if name == "A00004":  # AF: irregular intervals
        assert np.std(np.diff(beats)) / np.mean(np.diff(beats)) > 0.1


def test_rr_channel_is_cropped_and_padded_with_a_fixed_length(cinc2017_dir):
    record = read_record(cinc2017_dir / "A00014.hea")  # 18.6 s
    whole = preprocess(record, PreprocessConfig(fs=150.0, rr_channel=True))
    fixed = preprocess(record, PreprocessConfig(fs=150.0, rr_channel=True, fixed_length_s=30))
    assert fixed.shape == (4500, 2)
    np.testing.assert_array_equal(fixed[: len(whole)], whole)
    assert (fixed[len(whole) :] == 0).all() and (fixed[: len(whole), 1] > 0).all()


def test_rr_intervals_of_hand_made_beats_and_of_signals_without_beats():
    t = np.arange(3000) / 150.0
    spikes = np.exp(-(((t % 0.8) - 0.4) ** 2) / 2e-4)  # a beat every 0.8 s, at 0.4 s + k * 0.8 s
    rr = rr_intervals(spikes, 150.0)
    assert rr.shape == (3000,) and rr.dtype == np.float32
    np.testing.assert_allclose(rr, 0.8, atol=1 / 150.0)
    slow = np.exp(-(((t % 5.0) - 2.0) ** 2) / 2e-4)  # beats 5 s apart: clipped to the range's top
    assert rr_intervals(slow, 150.0).max() == np.float32(RR_RANGE_S[1])
    for no_beats in (np.zeros(3000), np.full(3000, 7.5), spikes[:100], np.zeros(0)):  # flat, constant, under 1 s, empty
        out = rr_intervals(no_beats, 150.0)
        assert out.shape == no_beats.shape and not out.any()


def test_rr_channel_config_round_trips_and_old_configs_load_with_it_off():
    import json

    on = PreprocessConfig(rr_channel=True)
    assert on.to_dict()["rr_channel"] is True and PreprocessConfig.from_dict(json.loads(json.dumps(on.to_dict()))) == on
    assert on.n_channels(1) == 2 and on.interval_channels == 1
    off = PreprocessConfig()
    assert "rr_channel" not in off.to_dict(), "a config without the channel writes the same dict as before"
    old = {"fs": 150.0, "normalization": "zscore", "bandpass": [0.5, 40.0], "leads": None}  # a config.json written before the key
    loaded = PreprocessConfig.from_dict(old)
    assert loaded.rr_channel is False and loaded.n_channels(3) == 3
    assert PreprocessConfig(rr_channel=True, fs=100.0, bandpass=None).n_channels(1) == 2  # the lowest rate sleepecg recommends
    for bad in ({"rr_channel": 1}, {"rr_channel": "yes"}, {"rr_channel": True, "fs": 99.0, "bandpass": None}):
        with pytest.raises(ValueError, match="rr_channel"):
            PreprocessConfig(**bad)
