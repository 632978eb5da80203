"""Beat (R-peak) detection: wfdb's XQRS, and sleepecg's fast detector.

XQRS (`wfdb.processing.xqrs_detect`, :func:`detect_r_peaks`) runs in pure
Python at about 15 s of CPU per hour of 200 Hz signal on this project's machine
(measured on the cpsc2021 sample joined to 1.5 h: 6.3 s), too slow for whole
24-hour records within a minute. The episode code therefore detects beats only
in short stretches around rhythm changes
(:func:`ecgrhythm.episodes.finder.refine_boundaries`), where boundaries are placed on
the beat.

sleepecg's detector (`sleepecg.detect_heartbeats`, :func:`detect_beats`) is a
C implementation of Pan-Tompkins with adaptive thresholds: about 2 ms per 30 s
record (on CinC 2017's A00001 the same 39 beats as XQRS, within a sample). It
gives the RR-interval input channel of `PreprocessConfig.rr_channel`
(:func:`ecgrhythm.preprocessing.pipeline.rr_intervals`).
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["detect_r_peaks", "detect_beats", "MIN_DETECT_S"]

logger = logging.getLogger(__name__)

MIN_DETECT_S = 3.0  # XQRS learns its thresholds from the first seconds: shorter stretches give no beats


def detect_r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the R peaks of one lead.

    Args:
        signal: array `(n_samples,)` in mV.
        fs: sampling rate in Hz.

    Returns:
        int array `(n_beats,)`, increasing; empty when the stretch is shorter
        than `MIN_DETECT_S`, flat, or the detector finds nothing.
    """
    from wfdb import processing

    # XQRS fails on some pathological stretches (too few peaks to learn from)
    return _detect(lambda x: processing.xqrs_detect(x, fs=fs, verbose=False), signal, fs, MIN_DETECT_S, Exception)


def detect_beats(signal: np.ndarray, fs: float) -> np.ndarray:
    """Sample indices of the heartbeats of one lead, with sleepecg's fast detector.

    Args:
        signal: array `(n_samples,)`, any units (finite); it is scaled to a unit peak
            first, so that the detector's squaring cannot overflow.
        fs: sampling rate in Hz, 100 or more as sleepecg's authors recommend (it filters 5-30 Hz).

    Returns:
        int array `(n_beats,)`, increasing; empty when the stretch is shorter than
        1 s, flat, or the detector finds nothing.
    """
    from sleepecg import detect_heartbeats

    # sleepecg raises ValueError for too few samples for its filter, or a signal flat after filtering
    return _detect(lambda x: detect_heartbeats(_unit_peak(x), fs), signal, fs, 1.0, ValueError)


def _unit_peak(x: np.ndarray) -> np.ndarray:
    """`x` less its first sample, scaled to a largest absolute value of 1 (`x` not flat)."""
    y = x - x[0]
    return y / np.abs(y).max()


def _detect(detector, signal, fs: float, min_s: float, failures) -> np.ndarray:
    """`detector(x)` on `signal` as float64, as sorted unique ints; empty for a stretch under `min_s`
    seconds, a flat one, or when the detector raises one of `failures` (logged)."""
    x = np.asarray(signal, dtype=np.float64).ravel()
    if len(x) < min_s * fs or not np.ptp(x) > 0:
        return np.zeros(0, dtype=int)
    try:
        peaks = detector(x)
    except failures as exc:
        logger.info("beat detection failed on a %.1f s stretch (%s: %s)", len(x) / fs, type(exc).__name__, exc)
        return np.zeros(0, dtype=int)
    return np.unique(np.asarray(peaks, dtype=int))
