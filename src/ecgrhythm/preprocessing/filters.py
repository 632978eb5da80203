"""The zero-phase Butterworth filters of the preprocessing, the rhythm features and the beat detector, each designed once per setting.

Designing a filter (`scipy.signal.butter`) costs about as much as running it over a 30 s record, so
:func:`butterworth_sos` keeps the designs it has made. scipy's `sosfiltfilt` also works out the filter's initial
state at every call (a third of its time on a 30 s record); :func:`zero_phase_lead` keeps that too, and runs `sosfilt`'s
compiled loop without its argument checks and copies, which cost as much as the filtering on a 10 s stretch.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["butterworth_sos", "zero_phase", "zero_phase_lead"]


def butterworth_sos(fs: float, low: float, high: float, order: int = 3) -> np.ndarray:
    """Second-order sections of the Butterworth band-pass `low`-`high` Hz at `fs` Hz (`low=0`: a low-pass), a copy of
    the design made once for that setting (scipy's filters need a writable array; the copy keeps the design intact)."""
    return _design(fs, low, high, order).copy()


@functools.lru_cache(maxsize=32)
def _lead_setting(fs: float, low: float, high: float, order: int) -> tuple[np.ndarray, np.ndarray, int]:
    """`(sos, initial state (1, n_sections, 2), padding)` of :func:`zero_phase_lead` for one setting: what
    `sosfiltfilt` works out at every call (its default padding, `3 * (2 * n_sections + 1)` less trivial sections)."""
    from scipy.signal import sosfilt_zi

    sos = _design(fs, low, high, order)
    pad = 3 * (2 * len(sos) + 1 - min(int(np.sum(sos[:, 2] == 0)), int(np.sum(sos[:, 5] == 0))))
    return sos, np.ascontiguousarray(sosfilt_zi(sos)[None]), pad


@functools.lru_cache(maxsize=32)
def _design(fs: float, low: float, high: float, order: int) -> np.ndarray:
    from scipy.signal import butter

    if low > 0:
        return butter(order, [low, high], btype="bandpass", fs=fs, output="sos")
    return butter(order, high, btype="lowpass", fs=fs, output="sos")


def zero_phase(x: np.ndarray, sos: np.ndarray, axis: int = 0) -> np.ndarray:
    """`x` (float64, time along `axis`, at least 2 samples) filtered by `sos` forwards and backwards, in float64."""
    from scipy.signal import sosfiltfilt

    return sosfiltfilt(sos, x, axis=axis, padlen=min(x.shape[axis] - 1, 3 * (2 * len(sos) + 1)))


def zero_phase_lead(x: np.ndarray, fs: float, low: float, high: float, order: int = 3) -> np.ndarray:
    """One lead through the Butterworth band-pass `low`-`high` Hz forwards and backwards: `scipy.signal.sosfiltfilt`
    with its default odd padding, to the last bit, with the filter's design and initial state made once per setting.

    Args:
        x: float64 array `(n_samples,)`.
        fs: sampling rate in Hz.
        low, high, order: as :func:`butterworth_sos`.

    Returns:
        float64 array `(n_samples,)`, C-contiguous.

    Raises:
        ValueError: `x` is no longer than the padding (as `sosfiltfilt` says).
    """
    sos, zi, pad = _lead_setting(fs, low, high, order)
    n = len(x)
    if n <= pad:
        raise ValueError(f"The length of the input vector x must be greater than padlen, which is {pad}.")
    ext = np.empty((1, n + 2 * pad))
    np.subtract(2 * x[0], x[pad:0:-1], out=ext[0, :pad])
    ext[0, pad : pad + n] = x
    np.subtract(2 * x[-1], x[-2 : -pad - 2 : -1], out=ext[0, pad + n :])
    sosfilt = _sosfilt()
    sosfilt(sos, ext, zi * ext[0, 0])
    ext = np.ascontiguousarray(ext[:, ::-1])
    sosfilt(sos, ext, zi * ext[0, 0])
    return np.ascontiguousarray(ext[0, pad + n - 1 : pad - 1 : -1])


@functools.lru_cache(maxsize=1)
def _sosfilt():
    """`f(sos, rows, zi)`: `rows` (float64 `(1, n)`, C-contiguous) filtered by `sos` from the state `zi`
    `(1, n_sections, 2)`, in place, as `scipy.signal.sosfilt` computes it: by its compiled loop
    (`scipy.signal._sosfilt._sosfilt`) without the half of its time spent checking and copying arguments; by
    `sosfilt` itself should a scipy release move that loop."""
    try:
        from scipy.signal._sosfilt import _sosfilt as compiled
    except ImportError:
        from scipy.signal import sosfilt

        def compiled(sos, rows, zi):
            rows[0], _ = sosfilt(sos, rows[0], zi=zi[0])

    return compiled
