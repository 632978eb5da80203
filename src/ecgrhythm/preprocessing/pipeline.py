"""Turning a raw record into model input: lead selection, resampling, filtering, normalisation, an optional RR-interval
channel, and a fixed length if the model has one."""

from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing.rpeaks import detect_beats
from ecgrhythm.records import EcgRecord, RecordError

__all__ = [
    "preprocess",
    "resample",
    "bandpass",
    "normalize",
    "normalization",
    "apply_normalization",
    "crop_or_pad",
    "rr_intervals",
    "with_rr_channel",
    "RR_RANGE_S",
    "choose_lead",
    "chosen_lead",
    "lead_index",
    "model_columns",
    "PREFERRED_LEAD",
]

PREFERRED_LEAD = "I"  # the lead a single-lead model takes from a multi-lead record unless told otherwise
_EPS = 1e-6
_F32_MAX = float(np.finfo(np.float32).max)
# Above this magnitude, filtering in float32 may overflow: such signals are filtered in float64.
_HEADROOM = 1e30
RR_RANGE_S = (0.2, 3.0)  # seconds: RR intervals are clipped to it (300 to 20 beats per minute), so a missed beat stays bounded


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
    up, down = ratio.numerator, ratio.denominator
    # resample_poly's own filter, designed once per ratio (a fresh copy each call: resample_poly scales it in place)
    out = resample_poly(signal, up, down, axis=0, window=_lowpass(up, down).astype(signal.dtype))
    return _to_float32(out)


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
    stats = {
        "zscore": lambda: {"mean": x.mean(axis=0), "std": x.std(axis=0)},
        "robust": lambda: {"quartiles": np.percentile(x, [25, 50, 75], axis=0)},
    }.get(method, dict)()
    center, scale = normalization(method, x.min(axis=0), x.max(axis=0), **stats)
    return apply_normalization(x, center, scale)


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
    return _to_float32(x)


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


def preprocess(record: EcgRecord, config: PreprocessConfig) -> np.ndarray:
    """Model input of one record: select leads, resample, filter, normalise and, for a fixed length, crop or pad.

    A model with `config.fixed_length_s` takes the first `round(fixed_length_s * fs)`
    samples of the normalised signal, zero-padded at the end (:func:`crop_or_pad`):
    the statistics of the normalisation are those of the whole record.
    With `config.rr_channel`, one more channel follows the leads: the :func:`rr_intervals`
    of the first lead after resampling and band-pass (before normalisation), computed on
    the whole record before any crop or pad (:func:`with_rr_channel`).

    Args:
        record: the raw record.
        config: the model's preprocessing.

    Returns:
        float32 array `(n_samples_at_config_fs, config.n_channels(n_leads))` (`config.fixed_samples`
        rows for a fixed length), finite for any valid record (flat lines and amplitudes
        near float32's limit included).

    Raises:
        RecordError: the record lacks leads the model needs (named in the
            message), or is too large to process in memory.
    """
    signal = record.signal if config.leads is None else _select_leads(record, config.leads)
    try:
        signal = resample(signal, record.fs, config.fs)
        if config.bandpass is not None:
            signal = bandpass(signal, config.fs, *config.bandpass)
        signal = with_rr_channel(normalize(signal, config.normalization), signal, config)
        if config.fixed_samples is not None:
            signal = crop_or_pad(signal, config.fixed_samples, config.fixed_samples)
        return signal
    except MemoryError:
        raise RecordError(
            record.record_name, f"the record ({record.n_samples} samples x {record.n_leads} leads) is too large to preprocess in memory"
        ) from None


def _select_leads(record: EcgRecord, leads) -> np.ndarray:
    """Columns of `record.signal` for `leads` (see :func:`model_columns`)."""
    index = model_columns(record.sig_name, leads, record.record_name)
    return record.signal if index is None or index == list(range(record.n_leads)) else record.signal[:, index]


def model_columns(sig_name, leads, source="record") -> list[int] | None:
    """Columns for a model's `leads` (`PreprocessConfig.leads`) among `sig_name`, matched by name ignoring case and spaces.

    Returns:
        The column indices, or `None` for all columns: `leads` is `None`, or a
        single-lead model meets a single-lead record (it takes its lead whatever its name).

    Raises:
        RecordError: the record lacks leads the model needs (named in the message).
    """
    if leads is None:
        return None
    have = [name.strip().lower() for name in sig_name]
    want = [lead.strip().lower() for lead in leads]
    missing = [lead for lead, key in zip(leads, want) if key not in have]
    if missing:
        if len(leads) == 1 and len(sig_name) == 1:
            return None
        raise RecordError(source, f"missing leads {missing}; the model needs {list(leads)}, the record has {list(sig_name)}")
    return [have.index(key) for key in want]


def lead_index(sig_name, lead, source="record", default=None) -> int:
    """Column of the lead to use among `sig_name`.

    Args:
        sig_name: the record's lead names.
        lead: a lead name (matched ignoring case and spaces), a 0-based index
            (int or digits), or `None` for `default` if the record has it,
            else lead I if it has one, else the first lead.
        source: record or file name for the error message.
        default: the lead the model was trained on, if its config names one.

    Raises:
        RecordError: `lead` names a lead the record lacks or an index out of range.
    """
    have = [name.strip().lower() for name in sig_name]
    if lead is None:
        for wanted in (default, PREFERRED_LEAD):
            if wanted is not None and wanted.strip().lower() in have:
                return have.index(wanted.strip().lower())
        return 0
    text = str(lead).strip()
    if text.lower() in have:
        return have.index(text.lower())
    if text.isascii() and text.isdigit() and len(text) <= 3 and int(text) < len(have):  # an index (ASCII digits only)
        return int(text)
    raise RecordError(
        source, f"no lead {lead!r}: the record has {list(sig_name)}; pass --lead with one of these names or an index from 0 to {len(have) - 1}"
    )


def choose_lead(record: EcgRecord, lead=None, n_leads: int = 1, *, model_leads=None) -> tuple[EcgRecord, str | None]:
    """The record a model with `n_leads` leads takes, and the lead chosen for a single-lead model.

    A single-lead model given a multi-lead record takes `lead` (see
    :func:`lead_index`: by default the model's own lead, else lead I, else the
    first lead). Multi-lead models take the record unchanged.

    Args:
        record: the raw record.
        lead: lead name or 0-based index, or `None` to choose as above.
        n_leads: leads the model takes.
        model_leads: lead names of the model's config (`PreprocessConfig.leads`), if any.

    Returns:
        `(record, lead_name)`: a single-lead record (or `record` itself) and
        the name of its lead; `lead_name` is `None` for a multi-lead model.

    Raises:
        RecordError: `lead` is not in the record.
        ValueError: `lead` was given for a multi-lead model.
    """
    index = chosen_lead(record.sig_name, lead, n_leads, model_leads=model_leads, source=record.record_name)
    if index is None:
        return record, None
    if record.n_leads == 1:
        return record, record.sig_name[0]
    chosen = EcgRecord(record.signal[:, index : index + 1], record.fs, (record.sig_name[index],), record.record_name, record.comments)
    return chosen, record.sig_name[index]


def chosen_lead(sig_name, lead=None, n_leads: int = 1, *, model_leads=None, source="record") -> int | None:
    """The column a model with `n_leads` leads takes from a record with leads `sig_name` (see :func:`choose_lead`).

    Returns:
        The column of the lead for a single-lead model, `None` for a multi-lead model.

    Raises:
        RecordError: `lead` is not among `sig_name`.
        ValueError: `lead` was given for a multi-lead model.
    """
    if n_leads != 1:
        if lead is not None:
            raise ValueError(f"Invalid argument `lead`: the model takes {n_leads} leads, so no lead is chosen. Received: lead={lead!r}")
        return None
    default = model_leads[0] if model_leads is not None and len(model_leads) == 1 else None
    return lead_index(sig_name, lead, source, default)
