"""Length strategies: crop/pad, resample, windows, and the registry's errors."""

from __future__ import annotations

import numpy as np
import pytest

from ecgrhythm.lab.studies import LENGTHS, Variant
from ecgrhythm.lab.studies.strategies import advised_length, discarded_share, length_strategy, resample_to, window_starts
from ecgrhythm.preprocessing.pipeline import crop_or_pad
from ecgrhythm.records import read_record


def test_crop_pad_keeps_the_first_30_s_and_pads_with_zeros(cinc2017_dir):
    long = read_record(cinc2017_dir / "A00001.hea").signal  # 9,000 samples at 300 Hz
    kept, length = advised_length(300.0, 64)
    assert (kept, length) == (9000, 9024)
    out = crop_or_pad(long, kept, length)
    np.testing.assert_array_equal(out[:9000], long[:9000])
    assert out.shape == (9024, 1) and not out[9000:].any()
    short = long[:4000]
    padded = crop_or_pad(short, kept, length)
    np.testing.assert_array_equal(padded[:4000], short)
    assert not padded[4000:].any()
    strategy = length_strategy("crop_pad", 300.0, 64, 20.0)
    train, window = strategy.training([long, short])
    assert window == 9024 and [len(s) for s in train] == [9024, 9024] and LENGTHS["crop_pad"].crops


def test_resample_to_gives_one_length_and_keeps_the_shape(cinc2017_dir):
    signal = read_record(cinc2017_dir / "A00001.hea").signal
    out = resample_to(signal, 4544)
    assert out.shape == (4544, 1) and out.dtype == np.float32
    # a halved rate keeps the low-frequency content: compare with every other sample
    assert np.corrcoef(resample_to(signal, 4500)[:, 0], signal[::2, 0])[0, 1] > 0.95


def test_windows_cover_the_whole_record():
    assert window_starts(100, 100, 50) == [0]
    assert window_starts(50, 100, 50) == [0]
    assert window_starts(260, 100, 50) == [0, 50, 100, 150, 160]
    for n in (101, 199, 1000, 3001):
        starts = window_starts(n, 100, 50)
        assert starts[0] == 0 and starts[-1] + 100 == n
        assert all(b - a <= 50 for a, b in zip(starts, starts[1:]))


def test_discarded_share():
    out = discarded_share([9000, 18000, 6000], 300.0)
    assert out == {"share_of_signal": round(9000 / 33000, 4), "share_of_records_cut": round(1 / 3, 4)}


def test_windows_strategy_averages_window_predictions(small_data):
    """The windows strategy's record probability is the mean over its windows, padded records included."""

    class Echo:  # a stand-in network: the probability of class 0 is the window's mean
        output = type("Shape", (), {"shape": (None, 2)})()

        def predict_on_batch(self, inputs):
            m = np.asarray(inputs["signal"]).mean(axis=(1, 2))
            return np.stack([m, 1 - m], axis=1)

    strategy = length_strategy("windows", small_data.fs, 64, 20.0)
    signals = small_data.records.signals[:3]
    probs = strategy.predict(Echo(), signals)
    for s, p in zip(signals, probs):
        s = np.concatenate([s, np.zeros((max(0, strategy.window - len(s)), 1), np.float32)])
        means = [s[a : a + strategy.window].mean() for a in window_starts(len(s), strategy.window, strategy.window // 2)]
        assert p[0] == pytest.approx(np.mean(means), rel=1e-4, abs=1e-6)


def test_unknown_strategy_names_the_known_ones():
    with pytest.raises(ValueError, match=r"`length`.*bucket_mask.*Received: length='spline'"):
        length_strategy("spline", 150.0, 64, 20.0)


def test_global_normalization_uses_training_records_only(small_data):
    signals = Variant("global", {}, normalization="global").signals(small_data.records.signals, small_data.fs, small_data.train_idx)
    train = np.concatenate([signals[i] for i in small_data.train_idx])
    assert abs(train.mean()) < 1e-3 and train.std() == pytest.approx(1.0, abs=1e-3)
    val = np.concatenate([signals[i] for i in small_data.val_idx])
    assert abs(val.std() - 1.0) > 1e-3  # one scale for all, not fitted to the validation records
