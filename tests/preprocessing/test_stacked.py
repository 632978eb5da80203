"""Windows preprocessed as a stack give, bit for bit, what each gives preprocessed on its own, on real records."""

from __future__ import annotations

import numpy as np
import pytest

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing import pipeline
from ecgrhythm.preprocessing.pipeline import preprocess_signal
from ecgrhythm.preprocessing.stacked import STACKED_NORMALIZATIONS, preprocess_stack
from ecgrhythm.records import read_record


def _windows(record, lead: int, seconds: float = 10.0, hop_s: float = 2.0) -> np.ndarray:
    """The windows of one lead of `record` as the episode finder cuts them: float32 `(k, n, 1)`."""
    n, hop = round(seconds * record.fs), round(hop_s * record.fs)
    signal = record.signal[:, lead]
    return np.stack([signal[a : a + n] for a in range(0, record.n_samples - n + 1, hop)])[:, :, None]


@pytest.mark.parametrize(
    "config",
    [
        PreprocessConfig(fs=150.0, normalization="zscore", bandpass=None),  # the shipped model's
        PreprocessConfig(fs=150.0, normalization="minmax", bandpass=None),
        PreprocessConfig(fs=100.0, normalization="none", bandpass=None),
        PreprocessConfig(fs=150.0, normalization="zscore", bandpass=(0.5, 40.0)),
        PreprocessConfig(fs=200.0, normalization="zscore", bandpass=(0.5, 40.0)),  # no resampling at 200 Hz
        PreprocessConfig(fs=150.0, normalization="robust", bandpass=None),  # one by one
        PreprocessConfig(fs=150.0, normalization="zscore", bandpass=None, rr_channel=True),  # one by one
    ],
    ids=["zscore", "minmax", "none-100hz", "bandpass", "bandpass-same-rate", "robust", "rr-channel"],
)
def test_a_stack_of_windows_is_preprocessed_as_each_window_alone(cpsc2021_dir, cinc2017_dir, config, monkeypatch):
    stacks = [(_windows(read_record(cpsc2021_dir / name), lead), 200.0) for name, lead in (("data_101_6.hea", 0), ("data_21_7.hea", 1))]
    stacks.append((_windows(read_record(cinc2017_dir / "A00004.hea"), 0), 300.0))  # 300 Hz: another ratio
    together = config.normalization in STACKED_NORMALIZATIONS and not config.rr_channel
    for windows, fs in stacks:
        with monkeypatch.context() as m:
            if together:  # the stack's own steps, not the one-by-one pipeline
                m.setattr(pipeline, "preprocess_signal", None)
            stacked = preprocess_stack(windows, fs, config)
        alone = np.stack([preprocess_signal(w, fs, config) for w in windows])
        assert stacked.dtype == np.float32 and stacked.shape == alone.shape
        np.testing.assert_array_equal(stacked, alone)


def test_windows_the_stack_cannot_take_together_are_taken_one_by_one(cpsc2021_dir):
    config = PreprocessConfig(fs=150.0, normalization="zscore", bandpass=None)
    for spoil in ("beyond the headroom", "not finite"):
        windows = _windows(read_record(cpsc2021_dir / "data_101_6.hea"), 0)[:8].copy()
        if spoil == "beyond the headroom":  # that window alone is resampled in float64
            windows[3] *= np.float32(1e31)
        else:
            windows[5, 100] = np.inf
        stacked = preprocess_stack(windows, 200.0, config)
        np.testing.assert_array_equal(stacked, np.stack([preprocess_signal(w, 200.0, config) for w in windows]))
