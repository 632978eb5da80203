"""Turning a raw record into model input: lead selection, resampling, filtering, normalisation."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .config import PreprocessConfig
from .records import EcgRecord, RecordError

__all__ = ["preprocess", "resample", "bandpass", "normalize"]

_EPS = 1e-6
_F32_MAX = float(np.finfo(np.float32).max)
# Above this magnitude, filtering in float32 may overflow: such signals are filtered in float64.
_HEADROOM = 1e30


def _peak(signal: np.ndarray) -> float:
    """Largest absolute sample (0 for an empty array), without a temporary copy."""
    return max(float(signal.max()), -float(signal.min())) if signal.size else 0.0


def _to_float32(x: np.ndarray) -> np.ndarray:
    """Contiguous float32, with values beyond float32's range clipped to its largest finite value."""
    if x.dtype != np.float32 and x.size and _peak(x) > _F32_MAX:
        x = np.clip(x, -_F32_MAX, _F32_MAX)
    out = np.ascontiguousarray(x, dtype=np.float32)
    if out.size and not math.isfinite(out.sum(dtype=np.float64)):
        out = np.nan_to_num(out, nan=0.0, posinf=_F32_MAX, neginf=-_F32_MAX)
    return out


def resample(signal: np.ndarray, fs: float, target_fs: float) -> np.ndarray:
    """Resample `(n_samples, n_leads)` from `fs` to `target_fs` with a polyphase filter.

    The rate ratio is approximated by a fraction with a denominator of at most
    1000. Finite input gives finite output, even near float32's limit.

    Returns:
        float32 array `(ceil(n_samples * up / down), n_leads)` where `up/down`
        approximates `target_fs / fs`: half as long for 300 -> 150 Hz.
    """
    if fs == target_fs:
        return signal
    from scipy.signal import resample_poly

    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    if signal.shape[0] == 0:
        return np.zeros(signal.shape, dtype=np.float32)
    if _peak(signal) > _HEADROOM:
        signal = signal.astype(np.float64)
    out = resample_poly(signal, ratio.numerator, ratio.denominator, axis=0)
    return _to_float32(out)


def bandpass(signal: np.ndarray, fs: float, low: float, high: float, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth band-pass filter of `(n_samples, n_leads)` along time.

    `low=0` gives a low-pass filter. Filtering runs in float64, so finite input
    gives finite output even near float32's limit.

    Returns:
        float32 array `(n_samples, n_leads)`.
    """
    from scipy.signal import butter, sosfiltfilt

    if signal.shape[0] < 2:
        return np.array(signal, dtype=np.float32)
    if low > 0:
        sos = butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    else:
        sos = butter(order, high, btype="lowpass", fs=fs, output="sos")
    padlen = min(signal.shape[0] - 1, 3 * (2 * len(sos) + 1))
    return _to_float32(sosfiltfilt(sos, np.asarray(signal, dtype=np.float64), axis=0, padlen=padlen))


def normalize(signal: np.ndarray, method: str) -> np.ndarray:
    """Normalise each lead of `(n_samples, n_leads)` on its own.

    Args:
        method: `"zscore"` (mean 0, standard deviation 1), `"minmax"` (to
            [-1, 1]), `"robust"` (median 0, interquartile range 1) or `"none"`.
            A constant lead becomes zeros, never NaN.

    Returns:
        float32 array `(n_samples, n_leads)`.
    """
    if method == "none":
        return signal
    x = signal.astype(np.float64)
    if x.shape[0] == 0:
        return _to_float32(x)
    lo, hi = x.min(axis=0), x.max(axis=0)
    if method == "zscore":
        center, scale = x.mean(axis=0), x.std(axis=0)
    elif method == "minmax":
        center, scale = (hi + lo) / 2, (hi - lo) / 2
    elif method == "robust":
        q25, center, q75 = np.percentile(x, [25, 50, 75], axis=0)
        scale = q75 - q25
    else:
        raise ValueError(f"Invalid argument `method`: expected one of zscore, minmax, robust, none. Received: method={method!r}")
    flat = hi == lo  # exactly zero after centring, whatever rounding in the mean
    center = np.where(flat, lo, center)
    scale = np.where((scale > _EPS) & ~flat, scale, 1.0)
    x -= center
    x /= scale
    return _to_float32(x)


def preprocess(record: EcgRecord, config: PreprocessConfig) -> np.ndarray:
    """Model input of one record: select leads, resample, filter and normalise.

    Args:
        record: the raw record.
        config: the model's preprocessing.

    Returns:
        float32 array `(n_samples_at_config_fs, n_leads)`, finite for any
        valid record (flat lines and amplitudes near float32's limit included).

    Raises:
        RecordError: the record lacks leads the model needs (named in the
            message), or is too large to process in memory.
    """
    signal = record.signal if config.leads is None else _select_leads(record, config.leads)
    try:
        signal = resample(signal, record.fs, config.fs)
        if config.bandpass is not None:
            signal = bandpass(signal, config.fs, *config.bandpass)
        return normalize(signal, config.normalization)
    except MemoryError:
        raise RecordError(record.record_name, f"the record ({record.n_samples} samples x {record.n_leads} leads) is too large to preprocess in memory") from None


def _select_leads(record: EcgRecord, leads) -> np.ndarray:
    """Columns of `record.signal` for `leads`, matched by name ignoring case and spaces.

    A single-lead model takes the lead of any single-lead record.
    """
    have = [name.strip().lower() for name in record.sig_name]
    want = [lead.strip().lower() for lead in leads]
    missing = [lead for lead, key in zip(leads, want) if key not in have]
    if missing:
        if len(leads) == 1 and record.n_leads == 1:
            return record.signal
        raise RecordError(record.record_name, f"missing leads {missing}; the model needs {list(leads)}, the record has {list(record.sig_name)}")
    index = [have.index(key) for key in want]
    return record.signal if index == list(range(record.n_leads)) else record.signal[:, index]
