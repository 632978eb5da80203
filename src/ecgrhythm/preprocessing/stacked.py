"""Model input of many signals of one length at once, each as :func:`~ecgrhythm.preprocessing.pipeline.preprocess_signal` gives it.

The episode finder prepares every window of a record on its own (10 s every 2 s: 43,200 windows in 24 hours), as the
networks' training records were. One window at a time, most of the cost was Python's: making the record, choosing its
lead, and the pipeline's steps on a 2,000-sample array. :func:`preprocess_stack` runs the same steps on a stack of
windows along its time axis: the polyphase resampling (`scipy.signal.resample_poly` along the axis, the same filter),
the band-pass (`sosfiltfilt` along the axis) and the normalisation's statistics and scaling per row, in the same
dtypes and the same order of operations, so each row comes out bit for bit as on its own (the tests compare them on
real records). Signals the steps would treat differently from one another (amplitudes above the float64 headroom of
the resampling, non-finite values), models with an RR channel, a fixed input length or a robust normalisation take
the one-at-a-time pipeline instead.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing import pipeline
from ecgrhythm.preprocessing.filters import butterworth_sos

__all__ = ["preprocess_stack", "STACKED_NORMALIZATIONS"]

STACKED_NORMALIZATIONS = ("zscore", "minmax", "none")  # those computed on the stack; "robust" takes the signals one by one


def preprocess_stack(signals: np.ndarray, fs: float, config: PreprocessConfig) -> np.ndarray:
    """The model input of each signal of `signals`, as `preprocess_signal(signals[i], fs, config)` gives it, bit for bit.

    Args:
        signals: float32 array `(k, n_samples, n_leads)`, finite: `k` signals of one length whose columns are the
            leads the model takes.
        fs: their sampling rate in Hz.
        config: the model's preprocessing.

    Returns:
        float32 array `(k, m, config.n_channels(n_leads))`.
    """
    if not _stackable(signals, config):
        return np.stack([pipeline.preprocess_signal(s, fs, config) for s in signals])
    x = _resampled(signals, fs, config.fs)
    if config.bandpass is not None:
        sos = butterworth_sos(config.fs, *config.bandpass)
        padlen = min(x.shape[1] - 1, 3 * (2 * len(sos) + 1))
        x = pipeline._to_float32(_sosfiltfilt(sos, x.astype(np.float64), padlen))
    if config.normalization == "none":
        return x
    z = x.astype(np.float64)
    # normalization_of on one piece: min, max, mean and the sum of squared deviations along time
    lo, hi, mean = z.min(axis=1), z.max(axis=1), z.mean(axis=1)
    std = np.sqrt(((z - mean[:, None]) ** 2).sum(axis=1) / z.shape[1])
    center, scale = pipeline.normalization(config.normalization, lo, hi, mean=mean, std=std)
    z -= center[:, None]
    z /= scale[:, None]
    return pipeline._to_float32(z)


def _stackable(signals: np.ndarray, config: PreprocessConfig) -> bool:
    """Whether :func:`preprocess_stack` can run the steps on the whole stack (see the module docstring)."""
    return (
        signals.ndim == 3
        and signals.dtype == np.float32
        and signals.shape[0] > 0
        and signals.shape[1] >= 2
        and not config.rr_channel
        and config.fixed_length_s is None
        and config.normalization in STACKED_NORMALIZATIONS
        and np.isfinite(signals).all()
        and pipeline._peak(signals) <= pipeline._HEADROOM  # else resampling runs in float64, signal by signal
    )


def _resampled(signals: np.ndarray, fs: float, target_fs: float) -> np.ndarray:
    """:func:`~ecgrhythm.preprocessing.pipeline.resample` of each signal, along axis 1 (float32 input below the headroom)."""
    if fs == target_fs:
        return signals
    from scipy.signal import resample_poly

    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    up, down = ratio.numerator, ratio.denominator
    out = resample_poly(signals, up, down, axis=1, window=pipeline._lowpass(up, down).astype(signals.dtype))
    return pipeline._to_float32(out)


def _sosfiltfilt(sos: np.ndarray, x: np.ndarray, padlen: int) -> np.ndarray:
    """:func:`~ecgrhythm.preprocessing.filters.zero_phase` of each signal of `x` `(k, n, n_leads)`, along axis 1."""
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(sos, x, axis=1, padlen=padlen)
