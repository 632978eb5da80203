"""Windows preprocessed together give, bit for bit, what each gives preprocessed on its own, on real records."""

from __future__ import annotations

import numpy as np
import pytest

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing import pipeline
from ecgrhythm.preprocessing.pipeline import preprocess_signal
from ecgrhythm.preprocessing.stacked import STACKED_NORMALIZATIONS, preprocess_windows
from ecgrhythm.records import read_record


def _starts(n: int, length: int, hop: int) -> list[int]:
    """Window starts as the episode finder takes them: every `hop`, then one window ending at the end (off the hop)."""
    return [*range(0, n - length + 1, hop), n - length]


def _alone(signal, starts, length, fs, config) -> np.ndarray:
    return np.stack([preprocess_signal(np.ascontiguousarray(signal[a : a + length]), fs, config) for a in starts])


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
def test_windows_are_preprocessed_together_as_each_window_alone(cpsc2021_dir, cinc2017_dir, cinc2021_dir, config, monkeypatch):
    leads = [(read_record(cpsc2021_dir / name).signal[:, [lead]], 200.0) for name, lead in (("data_101_6.hea", 0), ("data_21_7.hea", 1))]
    leads.append((read_record(cinc2017_dir / "A00004.hea").signal, 300.0))  # 300 to 150 Hz: 1/2
    cinc2021 = read_record(sorted(cinc2021_dir.glob("*.hea"))[0])
    leads.append((cinc2021.signal[:, [1]], cinc2021.fs))  # 500 to 150 Hz: 3/10
    together = config.normalization in STACKED_NORMALIZATIONS and not config.rr_channel
    for signal, fs in leads:
        for seconds, hop_s in (
            (10.0, 4.0),
            (10.0, 2.0),
            (10.0, 0.35),
            (4.0, 4.0),
        ):  # the finder's windows (4 s hop; 2 s before), and hops off the rate ratio
            length, hop = round(seconds * fs), round(hop_s * fs)
            starts = _starts(len(signal), length, hop)[:40]
            with monkeypatch.context() as m:
                if together:  # the stack's own steps, not the one-by-one pipeline
                    m.setattr(pipeline, "preprocess_signal", None)
                stacked = preprocess_windows(signal, starts, length, fs, config)
            alone = _alone(signal, starts, length, fs, config)
            assert stacked.dtype == np.float32 and stacked.shape == alone.shape
            np.testing.assert_array_equal(stacked, alone)


def test_windows_that_cannot_be_taken_together_are_taken_one_by_one(cpsc2021_dir):
    config = PreprocessConfig(fs=150.0, normalization="zscore", bandpass=None)
    lead = read_record(cpsc2021_dir / "data_101_6.hea").signal[:4000, [0]]
    for spoil in ("beyond the headroom", "not finite"):
        signal = lead.copy()
        if spoil == "beyond the headroom":  # those windows are resampled in float64 on their own
            signal[1000:1100] *= np.float32(1e31)
        else:
            signal[1500] = np.inf
        starts = _starts(len(signal), 2000, 400)
        np.testing.assert_array_equal(preprocess_windows(signal, starts, 2000, 200.0, config), _alone(signal, starts, 2000, 200.0, config))
