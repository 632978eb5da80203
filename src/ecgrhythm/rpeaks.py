"""R-peak detection with wfdb's XQRS detector (`wfdb.processing.xqrs_detect`).

XQRS runs in pure Python at about 15 s of CPU per hour of 200 Hz signal on
this project's machine (measured on the cpsc2021 sample joined to 1.5 h:
6.3 s), too slow for whole 24-hour records within a minute. The episode code
therefore detects beats only in short stretches around rhythm changes
(:func:`ecgrhythm.episodes.refine_boundaries`), where boundaries are placed on
the beat.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["detect_r_peaks", "MIN_DETECT_S"]

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
    x = np.asarray(signal, dtype=np.float64).ravel()
    if len(x) < MIN_DETECT_S * fs or not np.ptp(x) > 0:
        return np.zeros(0, dtype=int)
    from wfdb import processing

    try:
        peaks = processing.xqrs_detect(x, fs=fs, verbose=False)
    except Exception as exc:  # XQRS fails on some pathological stretches (too few peaks to learn from)
        logger.info("R-peak detection failed on a %.1f s stretch (%s: %s)", len(x) / fs, type(exc).__name__, exc)
        return np.zeros(0, dtype=int)
    return np.unique(np.asarray(peaks, dtype=int))
