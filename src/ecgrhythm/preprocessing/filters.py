"""The zero-phase Butterworth filters of the preprocessing and the rhythm features, each designed once per setting.

Designing a filter (`scipy.signal.butter`) costs about as much as running it over a 30 s record, so
:func:`butterworth_sos` keeps the designs it has made.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["butterworth_sos", "zero_phase"]


def butterworth_sos(fs: float, low: float, high: float, order: int = 3) -> np.ndarray:
    """Second-order sections of the Butterworth band-pass `low`-`high` Hz at `fs` Hz (`low=0`: a low-pass), a copy of
    the design made once for that setting (scipy's filters need a writable array; the copy keeps the design intact)."""
    return _design(fs, low, high, order).copy()


@functools.lru_cache(maxsize=32)
def _design(fs: float, low: float, high: float, order: int) -> np.ndarray:
    from scipy.signal import butter

    if low > 0:
        return butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return butter(order, high, btype="lowpass", fs=fs, output="sos")


def zero_phase(x: np.ndarray, sos: np.ndarray) -> np.ndarray:
    """`x` (float64, time along axis 0, at least 2 samples) filtered by `sos` forwards and backwards, in float64."""
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(sos, x, axis=0, padlen=min(x.shape[0] - 1, 3 * (2 * len(sos) + 1)))
