"""Turning a raw record into model input, held whole or read in pieces: one pipeline either way.

The steps: the leads the model takes, resampling to its rate, an optional band-pass, per-lead normalisation, an
optional RR-interval channel, and a fixed length if the model has one. :func:`model_input` runs them on a signal
given by random access (`read(a, b)`), piece by piece: :func:`model_rate_pieces` resamples and filters each piece
with `MARGIN_S` seconds either side (pieces start on multiples of the rate ratio's denominator, so resampling gives
exactly the samples of the whole signal, and a zero-phase filter's edge effect dies out within the margin);
:func:`normalization_of` gathers the normalisation's statistics over the pieces; each piece is then normalised and
given its RR channel (from its own beats), and a fixed-length model takes the first samples (:func:`first_samples`).

:func:`preprocess` runs it on a record held whole, as one piece (training, and
:meth:`ecgrhythm.inference.classifier.RhythmClassifier.prepare`); :mod:`ecgrhythm.inference.long_records` reads long
records in pieces, with the same numbers (filtering within float rounding; the RR channel may differ near piece
boundaries, where each piece's beat detector starts afresh).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from fractions import Fraction

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing.filters import butterworth_sos, zero_phase
from ecgrhythm.preprocessing.leads import model_columns
from ecgrhythm.preprocessing.rpeaks import detect_beats
from ecgrhythm.records import EcgRecord, RecordError

__all__ = [
    "preprocess",
    "preprocess_signal",
    "model_input",
    "model_rate_pieces",
    "normalization_of",
    "first_samples",
    "resample",
    "bandpass",
    "normalize",
    "normalization",
    "apply_normalization",
    "crop_or_pad",
    "rr_intervals",
    "with_rr_channel",
    "RR_RANGE_S",
    "MARGIN_S",
    "ROBUST_VALUES",
]

MARGIN_S = 20.0  # seconds read either side of a piece, so that resampling and filtering match a whole read
ROBUST_VALUES = 10_000_000  # values per lead kept for the percentiles of a robust normalisation of a signal read in pieces
_EPS = 1e-6
_F32_MAX = float(np.finfo(np.float32).max)
# Above this magnitude, filtering in float32 may overflow: such signals are filtered in float64.
HEADROOM = 1e30
RR_RANGE_S = (0.2, 3.0)  # seconds: RR intervals are clipped to it (300 to 20 beats per minute), so a missed beat stays bounded


def abs_max(signal: np.ndarray) -> float:
    """Largest absolute sample (0 for an empty array), without a temporary copy."""
    return max(float(signal.max()), -float(signal.min())) if signal.size else 0.0


def to_float32(x: np.ndarray) -> np.ndarray:
    """Contiguous float32, with values beyond float32's range clipped to its largest finite value."""
    if x.dtype != np.float32 and x.size and abs_max(x) > _F32_MAX:
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
    if signal.shape[0] == 0:
        return np.zeros(signal.shape, dtype=np.float32)
    if abs_max(signal) > HEADROOM:
        signal = signal.astype(np.float64)
    return polyphase(signal, *rate_ratio(fs, target_fs))


def rate_ratio(fs: float, target_fs: float) -> tuple[int, int]:
    """`(up, down)`: `target_fs / fs` as a fraction with a denominator of at most 1000, as :func:`resample` takes it."""
    ratio = Fraction(target_fs / fs).limit_denominator(1000)
    return ratio.numerator, ratio.denominator


def polyphase(x: np.ndarray, up: int, down: int, axis: int = 0) -> np.ndarray:
    """`x` resampled by `up/down` along `axis` with `scipy.signal.resample_poly` and its own filter, in float32."""
    from scipy.signal import resample_poly

    # resample_poly's own filter, designed once per ratio (a fresh copy each call: resample_poly scales it in place)
    return to_float32(resample_poly(x, up, down, axis=axis, window=_lowpass(up, down).astype(x.dtype)))


@functools.lru_cache(maxsize=32)
def _lowpass(up: int, down: int) -> np.ndarray:
    """The low-pass FIR filter `scipy.signal.resample_poly` designs for `up/down` (its default Kaiser window, beta 5)."""
    from scipy.signal import firwin

    max_rate = max(up, down)
    return firwin(2 * 10 * max_rate + 1, 1.0 / max_rate, window=("kaiser", 5.0))


def bandpass(signal: np.ndarray, fs: float, low: float, high: float, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth band-pass filter of `(n_samples, n_leads)` along time.

    `low=0` gives a low-pass filter. Filtering runs in float64, so finite input
    gives finite output even near float32's limit.

    Returns:
        float32 array `(n_samples, n_leads)`.
    """
    if signal.shape[0] < 2:
        return np.array(signal, dtype=np.float32)
    return to_float32(zero_phase(np.asarray(signal, dtype=np.float64), butterworth_sos(fs, low, high, order)))


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
    _, center, scale = normalization_of([x], method, x.shape[1])
    return to_float32(x) if center is None else apply_normalization(x, center, scale)


def normalization_of(pieces: Iterable[np.ndarray], method: str, n_leads: int) -> tuple[int, np.ndarray | None, np.ndarray | None]:
    """The statistics of a normalisation of the signal made of `pieces` joined end to end, gathered piece by piece.

    The mean and variance are merged piece by piece (Chan et al.); one piece gets exactly those of
    `numpy.mean` and `numpy.std`. For `"robust"` the percentiles are those of every value while the values
    seen number at most `ROBUST_VALUES` per lead, then of evenly spaced values (every second, every fourth, ...),
    thinned before each further piece.

    Args:
        pieces: arrays `(n_i, n_leads)`.
        method: as in :func:`normalize`.
        n_leads: columns of each piece.

    Returns:
        `(n_samples, center, scale)`: the joined length and the per-lead `(center, scale)` of :func:`normalization`,
        float arrays `(n_leads,)`, or `None`s for `"none"` or an empty signal.

    Raises:
        ValueError: `method` is unknown.
    """
    n, mean, m2 = 0, np.zeros(n_leads), np.zeros(n_leads)
    lo, hi = np.full(n_leads, np.inf), np.full(n_leads, -np.inf)
    kept, stride = [], 1
    for x in pieces:
        x = np.asarray(x, dtype=np.float64)
        k = len(x)
        if k == 0:
            continue
        if method == "robust":  # the values at multiples of `stride`: evenly spread over the signal
            if sum(map(len, kept)) > ROBUST_VALUES:
                kept, stride = [np.concatenate(kept)[::2]], 2 * stride
            kept.append(x[(-n) % stride :: stride])
        lo, hi = np.minimum(lo, x.min(axis=0)), np.maximum(hi, x.max(axis=0))
        piece_mean = x.mean(axis=0)
        if n == 0:
            mean, m2 = piece_mean, ((x - piece_mean) ** 2).sum(axis=0)
        else:
            delta = piece_mean - mean
            m2 = m2 + ((x - piece_mean) ** 2).sum(axis=0) + delta**2 * n * k / (n + k)  # Chan et al.'s merge of two variances
            mean = mean + delta * k / (n + k)
        n += k
    if method == "none" or n == 0:
        return n, None, None
    quartiles = np.percentile(np.concatenate(kept), [25, 50, 75], axis=0) if method == "robust" else None
    center, scale = normalization(method, lo, hi, mean=mean, std=np.sqrt(m2 / n), quartiles=quartiles)
    return n, center, scale


def normalization(method: str, lo, hi, *, mean=None, std=None, quartiles=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead `(center, scale)` of a normalisation from a signal's statistics (streamed records gather them piece by piece).

    Args:
        method: as in :func:`normalize`.
        lo, hi: per-lead minimum and maximum, arrays `(n_leads,)`.
        mean, std: per-lead mean and standard deviation (`"zscore"`).
        quartiles: per-lead 25th, 50th and 75th percentiles, array `(3, n_leads)` (`"robust"`).

    Returns:
        `(center, scale)`, float arrays `(n_leads,)`: a constant lead gets its value and 1.
    """
    if method == "zscore":
        center, scale = mean, std
    elif method == "minmax":
        center, scale = (hi + lo) / 2, (hi - lo) / 2
    elif method == "robust":
        q25, center, q75 = quartiles
        scale = q75 - q25
    else:
        raise ValueError(f"Invalid argument `method`: expected one of zscore, minmax, robust, none. Received: method={method!r}")
    flat = hi == lo  # exactly zero after centring, whatever rounding in the mean
    center = np.where(flat, lo, center)
    scale = np.where((scale > _EPS) & ~flat, scale, 1.0)
    return center, scale


def apply_normalization(signal: np.ndarray, center, scale) -> np.ndarray:
    """`(signal - center) / scale` per lead of `(n_samples, n_leads)`, computed in float64 (a float64 `signal` in place), as float32."""
    x = np.asarray(signal, dtype=np.float64)
    x -= center
    x /= scale
    return to_float32(x)


def crop_or_pad(signal: np.ndarray, kept: int, length: int) -> np.ndarray:
    """The first `kept` samples of `signal` `(n, n_leads)`, zero-padded to `(length, n_leads)` float32 (the padding is not masked)."""
    out = np.zeros((length, signal.shape[1]), dtype=np.float32)
    n = min(len(signal), kept)
    out[:n] = signal[:n]
    return out


def rr_intervals(lead: np.ndarray, fs: float) -> np.ndarray:
    """The RR-interval sequence of one lead, sample by sample: the input channel of `PreprocessConfig.rr_channel`.

    Beats are detected with sleepecg's detector (:func:`ecgrhythm.preprocessing.rpeaks.detect_beats`; it filters 5-30 Hz
    itself; `PreprocessConfig` asks for `fs` of 100 Hz or more, as sleepecg's authors recommend). Each sample holds the length in seconds of the interval between
    the two consecutive beats that enclose it, `(peak[k + 1] - peak[k]) / fs` for `peak[k] <= i < peak[k + 1]`
    (piecewise constant), the first interval before the first beat and the last from the last beat on,
    clipped to `RR_RANGE_S`. The values are seconds, not centred: 0 means "no beats", the value of the
    padding, and a time stretch by a factor scales them by the same factor.

    Args:
        lead: array `(n_samples,)`, any units (finite).
        fs: its sampling rate in Hz.

    Returns:
        float32 array `(n_samples,)` in seconds, within `RR_RANGE_S`; zeros when the lead is shorter than
        1 s, flat, or has fewer than 2 detected beats.

    Example:
    >>> t = np.arange(1500) / 150.0
    >>> rr = rr_intervals(np.exp(-((t % 0.8 - 0.4) ** 2) / 2e-4), 150.0)  # a spike every 0.8 s
    >>> round(float(rr[600]), 3), rr.shape
    (0.8, (1500,))
    """
    n, beats = np.size(lead), detect_beats(lead, fs)
    if len(beats) < 2:
        return np.zeros(n, dtype=np.float32)
    intervals = np.clip(np.diff(beats) / fs, *RR_RANGE_S).astype(np.float32)
    which = np.searchsorted(beats, np.arange(n), side="right") - 1
    return intervals[np.clip(which, 0, len(intervals) - 1)]


def with_rr_channel(signal: np.ndarray, filtered: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """`signal` `(n, n_leads)` with the :func:`rr_intervals` of `filtered`'s first lead appended when `config.rr_channel`.

    Args:
        signal: the model input so far, float32 `(n, n_leads)`.
        filtered: the same samples resampled and band-passed but not normalised, `(n, n_leads)`.
        config: the model's preprocessing.

    Returns:
        float32 `(n, config.n_channels(n_leads))`: `signal` itself without `rr_channel`.
    """
    if not config.rr_channel:
        return signal
    return np.concatenate([signal, rr_intervals(filtered[:, 0], config.fs)[:, None]], axis=1)


def model_rate_pieces(read: Callable[[int, int], np.ndarray], n_samples: int, fs: float, config: PreprocessConfig, piece_s: float | None = None):
    """The signal resampled to `config.fs` and band-passed, piece by piece (the first step of :func:`model_input`).

    Args:
        read: `read(a, b)` gives samples `a:b` of the leads the model takes, an array `(b - a, n_leads)` at `fs`.
        n_samples: the signal's length at `fs`.
        fs: its sampling rate in Hz.
        config: the model's preprocessing.
        piece_s: about how many seconds each piece covers (`None`: one piece, the whole signal).

    Yields:
        float32 arrays `(n_i, n_leads)` at `config.fs`; joined end to end they are the whole signal resampled
        and filtered (resampling exactly, filtering within float rounding).
    """
    ratio = Fraction(config.fs / fs).limit_denominator(1000) if config.fs != fs else Fraction(1)
    up, down = ratio.numerator, ratio.denominator
    step = max(1, n_samples) if piece_s is None else down * max(1, round(piece_s * fs / down))
    margin = down * math.ceil(MARGIN_S * fs / down)
    for a in range(0, max(1, n_samples), step):
        b = min(n_samples, a + step)
        lo, hi = max(0, a - margin), min(n_samples, b + margin)
        x = resample(read(lo, hi), fs, config.fs)
        if config.bandpass is not None:
            x = bandpass(x, config.fs, *config.bandpass)
        yield x[(a - lo) * up // down : (b - lo) * up // down if b < n_samples else len(x)]


def model_input(read, n_samples: int, fs: float, config: PreprocessConfig, n_leads: int, *, piece_s: float | None = None):
    """The model input of a signal given by random access, piece by piece (the steps of the module docstring).

    Args:
        read: `read(a, b)` gives samples `a:b` of the leads the model takes, an array `(b - a, n_leads)` at `fs`.
        n_samples: the signal's length at `fs`.
        fs: its sampling rate in Hz.
        config: the model's preprocessing.
        n_leads: columns that `read` gives.
        piece_s: about how many seconds each piece covers. `None`: the signal is one piece, resampled and filtered
            once; otherwise it is read twice, for the normalisation's statistics and then for the input.

    Returns:
        `(n, pieces)`: the input's length at `config.fs` before any fixed length, and an iterator of float32 arrays
        `(n_i, config.n_channels(n_leads))` that joined end to end are the input (see :func:`first_samples`
        for a fixed-length model).
    """
    whole = list(model_rate_pieces(read, n_samples, fs, config)) if piece_s is None else None

    def pieces():
        return whole if whole is not None else model_rate_pieces(read, n_samples, fs, config, piece_s)

    n, center, scale = normalization_of(pieces(), config.normalization, n_leads)
    return n, (with_rr_channel(x if center is None else apply_normalization(x, center, scale), x, config) for x in pieces())


def first_samples(pieces: Iterable[np.ndarray], length: int, n_channels: int) -> np.ndarray:
    """The first `length` samples of `pieces` joined end to end, zero-padded at the end: a fixed-length model's input.

    Pieces are taken only until there are enough (:func:`crop_or_pad`; the padding is not masked).

    Returns:
        float32 array `(length, n_channels)`.
    """
    held, parts = 0, []
    for piece in pieces:
        parts.append(piece)
        held += len(piece)
        if held >= length:
            break
    joined = np.concatenate(parts) if parts else np.zeros((0, n_channels), np.float32)
    return crop_or_pad(joined, length, length)


def preprocess_signal(signal: np.ndarray, fs: float, config: PreprocessConfig, source="record") -> np.ndarray:
    """Model input of `signal` `(n_samples, n_leads)` at `fs`, whose columns are already the leads the model takes.

    See :func:`preprocess`; `source` names the record in the error message.

    Raises:
        RecordError: the signal is too large to process in memory.
    """
    try:
        _, pieces = model_input(lambda a, b: signal[a:b], len(signal), fs, config, signal.shape[1])
        if config.fixed_samples is not None:
            return first_samples(pieces, config.fixed_samples, config.n_channels(signal.shape[1]))
        return next(pieces)
    except MemoryError:
        raise RecordError(source, f"the record ({len(signal)} samples x {signal.shape[1]} leads) is too large to preprocess in memory") from None


def preprocess(record: EcgRecord, config: PreprocessConfig) -> np.ndarray:
    """Model input of one record: select leads, resample, filter, normalise and, for a fixed length, crop or pad.

    A model with `config.fixed_length_s` takes the first `round(fixed_length_s * fs)` samples of the normalised
    signal, zero-padded at the end (:func:`crop_or_pad`): the statistics of the normalisation are those of the whole
    record. With `config.rr_channel`, one more channel follows the leads: the :func:`rr_intervals` of the first lead
    after resampling and band-pass (before normalisation), of the whole record before any crop or pad.

    Args:
        record: the raw record.
        config: the model's preprocessing.

    Returns:
        float32 array `(n_samples_at_config_fs, config.n_channels(n_leads))` (`config.fixed_samples` rows for a fixed
        length), finite for any valid record (flat lines and amplitudes near float32's limit included).

    Raises:
        RecordError: the record lacks leads the model needs (named in the message), or is too large to process in memory.
    """
    index = model_columns(record.sig_name, config.leads, record.record_name)
    signal = record.signal if index is None or index == list(range(record.n_leads)) else record.signal[:, index]
    return preprocess_signal(signal, record.fs, config, record.record_name)
