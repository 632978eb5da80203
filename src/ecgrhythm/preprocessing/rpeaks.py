"""Beat (R-peak) detection: wfdb's XQRS, and sleepecg's fast detector.

XQRS (`wfdb.processing.xqrs_detect`, :func:`detect_r_peaks`) runs in pure
Python at about 15 s of CPU per hour of 200 Hz signal on this project's machine
(measured on the cpsc2021 sample joined to 1.5 h: 6.3 s), too slow for whole
24-hour records within a minute. The episode code therefore detects beats only
in short stretches around rhythm changes
(:func:`ecgrhythm.episodes.finder.refine_boundaries`), where boundaries are placed on
the beat. Most of XQRS's time went to wfdb's search for local peaks, a Python loop over every sample;
:func:`detect_r_peaks` runs wfdb's XQRS with that search made by :func:`local_peaks` (the same peaks, a test
compares them and the beats on real records): about 1.5 ms instead of 7.6 ms a 12 s stretch at 200 Hz.

sleepecg's detector (`sleepecg.detect_heartbeats`, :func:`detect_beats`) is a
C implementation of Pan-Tompkins with adaptive thresholds (on CinC 2017's A00001
the same 39 beats as XQRS, within a sample). It gives the RR-interval input channel
of `PreprocessConfig.rr_channel` (:func:`ecgrhythm.preprocessing.pipeline.rr_intervals`),
the beats of the signal-quality index and of the rate checks. :func:`detect_beats`
runs sleepecg's own steps (its C integration and thresholding) after its band-pass
made by :func:`~ecgrhythm.preprocessing.filters.zero_phase_lead`, whose design and
initial state are made once per rate: the same beats to the sample (a test compares
them on real records), without redesigning the filter at every call. Should
a sleepecg release drop those steps, the public `detect_heartbeats` is used instead.
With `min_fs` it detects on the lead brought down to that rate or a little more (a 300 Hz lead on half its samples),
and puts each beat back at the lead's own rate, within a sample of the beat found there on clean records
(a test compares them); the rate checks (:mod:`~ecgrhythm.preprocessing.plausibility`) detect at 150 Hz so.
"""

from __future__ import annotations

import functools
import logging
import types

import numpy as np

from ecgrhythm.preprocessing.filters import zero_phase_lead

__all__ = ["detect_r_peaks", "detect_beats", "local_peaks", "MIN_DETECT_S", "MIN_BEATS_S", "MAX_DECIMATION"]

logger = logging.getLogger(__name__)

MIN_DETECT_S = 3.0  # XQRS learns its thresholds from the first seconds: shorter stretches give no beats
# sleepecg learns its thresholds from the first 2 s and reads 2 s whatever the stretch's length (its C code): a
# shorter stretch would make it read past the signal's end and give beats that change from one call to the next
MIN_BEATS_S = 2.0
# `detect_beats(..., min_fs=)` takes means of at most this many samples: a rate given far too high (1000 Hz for a 300 Hz
# record) would otherwise leave a few samples per QRS complex, and the rate checks catch fewer such errors
MAX_DECIMATION = 3


def detect_r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the R peaks of one lead.

    Args:
        signal: array `(n_samples,)` in mV.
        fs: sampling rate in Hz.

    Returns:
        int array `(n_beats,)`, increasing; empty when the stretch is shorter
        than `MIN_DETECT_S`, flat, or the detector finds nothing.
    """
    # XQRS fails on some pathological stretches (too few peaks to learn from)
    return _detect(lambda x: _xqrs(x, fs), signal, fs, MIN_DETECT_S, Exception)


def _xqrs(x: np.ndarray, fs: float) -> np.ndarray:
    """`wfdb.processing.xqrs_detect(x, fs=fs, verbose=False)`, its local peaks found by :func:`local_peaks`."""
    detector = _xqrs_class()(sig=x, fs=fs)
    detector.detect(verbose=False)
    return detector.qrs_inds


_XQRS_PEAK_STEPS = ("_mwi", "_learn_init_params")  # the XQRS methods that call wfdb's find_local_peaks


@functools.lru_cache(maxsize=1)
def _xqrs_class():
    """wfdb's XQRS with the methods that find local peaks calling :func:`local_peaks` instead of wfdb's loop: the same
    code (the methods' own, bound to wfdb's module names but that one), so the same beats. wfdb's XQRS itself should a
    release move those steps."""
    from wfdb.processing import qrs

    steps = [getattr(qrs.XQRS, name, None) for name in _XQRS_PEAK_STEPS]
    if not all(isinstance(f, types.FunctionType) and "find_local_peaks" in f.__code__.co_names for f in steps):
        return qrs.XQRS
    names = dict(vars(qrs), find_local_peaks=local_peaks)
    methods = {f.__name__: types.FunctionType(f.__code__, names, f.__name__, f.__defaults__, f.__closure__) for f in steps}
    return type("XQRS", (qrs.XQRS,), methods)


def local_peaks(sig: np.ndarray, radius: int) -> np.ndarray:
    """`wfdb.processing.find_local_peaks(sig, radius)`, to the sample, without its Python loop over every sample.

    wfdb walks the signal: a sample that equals the largest of `sig[i - radius : i + radius]` (cut at the ends) is a
    peak and the walk jumps `radius` samples on, else it steps one. Here the largest of every such stretch comes at
    once (a sliding maximum), and the walk goes over the samples that equal theirs only. A signal wfdb's loop would
    trip on (no longer than `radius`, `radius` under 1, non-finite values) goes to wfdb's own.

    Args:
        sig: float array `(n,)`.
        radius: half width of the stretch in samples.

    Returns:
        int array of the peaks' indices, increasing (wfdb's float array `[]` for a flat signal).
    """
    from wfdb.processing.peaks import find_local_peaks

    n = len(sig)
    if radius < 1 or n <= radius or not np.isfinite(sig).all():
        return find_local_peaks(sig, radius)
    if np.min(sig) == np.max(sig):
        return np.empty(0)
    padded = np.concatenate([np.full(radius, sig[0]), sig, np.full(radius, sig[-1])])  # the ends' values: the same maxima
    top = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius)[:n].max(axis=1)
    peaks, after = [], 0
    for i in np.flatnonzero(sig == top).tolist():
        if i >= after:
            peaks.append(i)
            after = i + radius
    return np.array(peaks)


def detect_beats(signal: np.ndarray, fs: float, *, min_fs: float | None = None) -> np.ndarray:
    """Sample indices of the heartbeats of one lead, with sleepecg's fast detector.

    Args:
        signal: array `(n_samples,)`, any units (finite); it is scaled to a unit peak
            first, so that the detector's squaring cannot overflow.
        fs: sampling rate in Hz, 100 or more as sleepecg's authors recommend (it filters 5-30 Hz).
        min_fs: detect on the signal brought down to this rate or a little more (the means of `q` samples, `q` the
            whole number up to `MAX_DECIMATION` that keeps it at `min_fs` or more; a 300 Hz lead at 150 Hz, at about
            half the cost), each beat put back at `fs` where the band-passed signal tops between its samples. The beats
            are then not those at `fs`: sleepecg's adaptive thresholds tip differently on some records, at any rate.

    Returns:
        int array `(n_beats,)`, increasing; empty when the stretch is shorter than
        `MIN_BEATS_S` (2 s) once a flat start is left out, flat, or the detector finds nothing.
    """
    q = 1 if min_fs is None else max(1, min(MAX_DECIMATION, int(fs // min_fs)))
    x = signal if q == 1 else _block_sums(np.asarray(signal, dtype=np.float64).ravel(), q)
    # sleepecg raises ValueError for too few samples for its filter, or a signal flat after filtering
    return _detect(lambda x: _heartbeats(_unit_peak(x), fs / q, q), x, fs / q, MIN_BEATS_S, ValueError, ordered=True)


_DERIVATIVE = np.array([-1, -2, 0, 2, 1])  # sleepecg's five-point derivative (Pan and Tompkins)


def _heartbeats(x: np.ndarray, fs: float, q: int = 1) -> np.ndarray:
    """`sleepecg.detect_heartbeats(x, fs)`, step by step, with its 5-30 Hz band-pass made once per rate; no beats when
    less than `MIN_BEATS_S` is left after a flat start, which sleepecg skips before reading its first 2 s. With `q` > 1,
    `x` holds sums of `q` samples (:func:`_block_sums`) and the beats are put back at the rate `q * fs`."""
    start = 0
    if x[1] == x[0]:  # sleepecg starts at the first sample that differs from the first
        moving = np.flatnonzero(x != x[0])
        if not len(moving):
            raise ValueError("ECG signal is flat. Please check your data.")
        start = int(moving[0])
    if len(x) - start < MIN_BEATS_S * fs:
        return np.zeros(0, dtype=int)
    steps = _sleepecg_steps()
    if steps is None:  # a sleepecg without those steps: its public detector, slower
        from sleepecg import detect_heartbeats

        return detect_heartbeats(x, fs) * q + (q - 1) // 2
    squared_moving_integration, thresholding = steps
    filtered = zero_phase_lead(x[start:], fs, 5.0, 30.0, order=2)
    derivative = np.correlate(filtered, _DERIVATIVE, mode="same")
    integrated = squared_moving_integration(derivative, int(0.15 * fs))
    peaks = np.flatnonzero(thresholding(filtered, integrated, fs))
    if q == 1:
        return peaks + start
    return np.rint(q * (peaks + start + _vertex(filtered, peaks)) + (q - 1) / 2).astype(int)


def _block_sums(x: np.ndarray, q: int) -> np.ndarray:
    """Sums of `q` consecutive samples of `x` (a last part block left out): `x` at `1 / q` of its rate, sample `i`
    centred on `q * i + (q - 1) / 2`."""
    n = len(x) // q * q
    y = x[0:n:q].copy()
    for k in range(1, q):
        y += x[k:n:q]
    return y


def _vertex(f: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Where the parabola through `f` at each peak (a local maximum inside `f`) and its two neighbours tops, in samples
    from the peak (-0.5 to 0.5): the band-passed signal is smooth enough at 150 Hz or more for that."""
    left, top, right = f[peaks - 1], f[peaks], f[peaks + 1]
    curve = left - 2 * top + right
    return np.divide(0.5 * (left - right), curve, out=np.zeros(len(peaks)), where=curve < 0)


@functools.lru_cache(maxsize=1)
def _sleepecg_steps():
    """sleepecg's compiled integration and thresholding, imported once; None for a sleepecg without them."""
    try:
        from sleepecg.heartbeats import _squared_moving_integration, _thresholding
    except ImportError:
        return None
    return _squared_moving_integration, _thresholding


def _unit_peak(x: np.ndarray) -> np.ndarray:
    """`x` less its first sample, scaled to a largest absolute value of 1 (`x` not flat)."""
    y = x - x[0]
    return y / np.abs(y).max()


def _detect(detector, signal, fs: float, min_s: float, failures, *, ordered: bool = False) -> np.ndarray:
    """`detector(x)` on `signal` as float64, as sorted unique ints (`ordered`: the detector gives them so already);
    empty for a stretch under `min_s` seconds, a flat one, or when the detector raises one of `failures` (logged)."""
    x = np.asarray(signal, dtype=np.float64).ravel()
    if len(x) < min_s * fs or not x.max() > x.min():  # flat, or holding NaN (as `np.ptp(x) > 0`)
        return np.zeros(0, dtype=int)
    try:
        peaks = detector(x)
    except failures as exc:
        logger.info("beat detection failed on a %.1f s stretch (%s: %s)", len(x) / fs, type(exc).__name__, exc)
        return np.zeros(0, dtype=int)
    return np.asarray(peaks, dtype=int) if ordered else np.unique(np.asarray(peaks, dtype=int))
