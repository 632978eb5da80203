"""Turning a raw record into model input: lead selection, resampling, filtering, normalisation."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from .config import PreprocessConfig
from .records import EcgRecord, RecordError

__all__ = ["preprocess", "resample", "bandpass", "normalize"]

_EPS = 1e-6


def resample(signal: np.ndarray, fs: float, target_fs: float) -> np.ndarray:
    """Resample `(n_samples, n_leads)` from `fs` to `target_fs` with a polyphase filter.

    The rate ratio is approximated by a fraction with a denominator of at most 1000.

    Returns:
        float32 array `(round(n_samples * target_fs / fs), n_leads)` (to within one sample).
    """
    if fs == target_fs:
        return signal
    from scipy.signal import resample_poly

    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    out = resample_poly(signal, ratio.numerator, ratio.denominator, axis=0)
    return np.ascontiguousarray(out, dtype=np.float32)


def bandpass(signal: np.ndarray, fs: float, low: float, high: float, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth band-pass filter along time. `low=0` gives a low-pass filter."""
    from scipy.signal import butter, sosfiltfilt

    if low > 0:
        sos = butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    else:
        sos = butter(order, high, btype="lowpass", fs=fs, output="sos")
    padlen = min(signal.shape[0] - 1, 3 * (2 * len(sos) + 1))
    return np.ascontiguousarray(sosfiltfilt(sos, signal, axis=0, padlen=padlen), dtype=np.float32)


def normalize(signal: np.ndarray, method: str) -> np.ndarray:
    """Normalise each lead of `(n_samples, n_leads)` on its own.

    Args:
        method: `"zscore"` (mean 0, standard deviation 1), `"minmax"` (to
            [-1, 1]), `"robust"` (median 0, interquartile range 1) or `"none"`.
            A constant lead becomes zeros, never NaN.
    """
    x = signal.astype(np.float64)
    if method == "none":
        return signal
    if method == "zscore":
        center, scale = x.mean(axis=0), x.std(axis=0)
    elif method == "minmax":
        lo, hi = x.min(axis=0), x.max(axis=0)
        center, scale = (hi + lo) / 2, (hi - lo) / 2
    elif method == "robust":
        q25, center, q75 = np.percentile(x, [25, 50, 75], axis=0)
        scale = q75 - q25
    else:
        raise ValueError(f"Invalid argument `method`: expected one of zscore, minmax, robust, none. Received: method={method!r}")
    scale = np.where(scale > _EPS, scale, 1.0)
    return ((x - center) / scale).astype(np.float32)


def preprocess(record: EcgRecord, config: PreprocessConfig) -> np.ndarray:
    """Model input of one record: select leads, resample, filter and normalise.

    Args:
        record: the raw record.
        config: the model's preprocessing.

    Returns:
        float32 array `(n_samples_at_config_fs, n_leads)`.

    Raises:
        RecordError: the record lacks leads the model needs.
    """
    signal = record.signal
    if config.leads is not None:
        missing = [lead for lead in config.leads if lead not in record.sig_name]
        if missing and not (len(config.leads) == 1 and record.n_leads == 1):
            raise RecordError(record.record_name, f"missing leads {missing}; the model needs {list(config.leads)}, the record has {list(record.sig_name)}")
        if not missing:
            signal = signal[:, [record.sig_name.index(lead) for lead in config.leads]]
    signal = resample(signal, record.fs, config.fs)
    if config.bandpass is not None:
        signal = bandpass(signal, config.fs, *config.bandpass)
    with np.errstate(over="ignore", invalid="ignore"):
        out = normalize(signal, config.normalization)
    if not np.isfinite(out).all():
        # Samples near float32's limit overflow in filtering; clip them rather than fail.
        out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    return out
