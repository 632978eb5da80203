"""Model input of many overlapping windows of a signal at once, each as :func:`~ecgrhythm.preprocessing.pipeline.preprocess_signal` gives it.

The episode finder prepares every window of a record on its own (10 s every 4 s: 21,600 windows in 24 hours), as the
networks' training records were. One window at a time, most of the cost was Python's: making the record, choosing its
lead, and the pipeline's steps on a 2,000-sample array. :func:`preprocess_windows` runs the same steps on all the
windows of a stretch at once, in the same dtypes and the same order of operations, so each window comes out bit for bit
as on its own (the tests compare them on real records):

- resampling: `scipy.signal.resample_poly` (the pipeline's filter) of the whole stretch once, instead of every sample
  five times over. An output sample whose filter lies within the window is computed by scipy's loop with the same
  samples, coefficients and order of sums in the stretch as in the window alone (a window starting a whole number
  of the rate ratio's denominators into the stretch, so that the phases agree); the few at each end, whose filter
  reaches past the window, where the window alone is zero-padded, are resampled from the window's own ends. Windows
  starting elsewhere (the last window of a record) are resampled on their own, along the stack's time axis;
- the band-pass: `sosfiltfilt` along the stack's time axis;
- the normalisation's statistics and scaling per window.

Windows the steps would treat differently from one another (amplitudes above the float64 headroom of the resampling,
non-finite values), and models with an RR channel, a fixed input length or a robust normalisation, take the
one-at-a-time pipeline instead.
"""

from __future__ import annotations

import math

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing import pipeline
from ecgrhythm.preprocessing.filters import butterworth_sos, zero_phase

__all__ = ["preprocess_windows", "STACKED_NORMALIZATIONS"]

STACKED_NORMALIZATIONS = ("zscore", "minmax", "none")  # those computed on the stack; "robust" takes the windows one by one


def preprocess_windows(signal: np.ndarray, starts, length: int, fs: float, config: PreprocessConfig) -> np.ndarray:
    """The model input of each window `signal[a : a + length]`, `a` in `starts`, as `preprocess_signal` gives it, bit for bit.

    Args:
        signal: float32 array `(n_samples, n_leads)` whose columns are the leads the model takes.
        starts: the windows' first samples, increasing, each window within `signal`.
        length: samples per window (at least 2).
        fs: the signal's sampling rate in Hz.
        config: the model's preprocessing.

    Returns:
        float32 array `(len(starts), m, config.n_channels(n_leads))`.
    """
    starts = np.asarray(starts, dtype=np.intp)
    if not _stackable(signal[starts[0] : starts[-1] + length], length, config):
        return np.stack([pipeline.preprocess_signal(signal[a : a + length], fs, config) for a in starts])
    x = _resampled_windows(signal, starts, length, fs, config.fs)
    if config.bandpass is not None:
        x = pipeline.to_float32(zero_phase(x.astype(np.float64), butterworth_sos(config.fs, *config.bandpass), axis=1))
    if config.normalization == "none":
        return x
    z = x.astype(np.float64)
    # normalization_of on one piece: min, max, mean and the sum of squared deviations along time
    lo, hi, mean = z.min(axis=1), z.max(axis=1), z.mean(axis=1)
    std = np.sqrt(((z - mean[:, None]) ** 2).sum(axis=1) / z.shape[1])
    center, scale = pipeline.normalization(config.normalization, lo, hi, mean=mean, std=std)
    z -= center[:, None]
    z /= scale[:, None]
    return pipeline.to_float32(z)


def _stackable(stretch: np.ndarray, length: int, config: PreprocessConfig) -> bool:
    """Whether :func:`preprocess_windows` can run the steps on all the windows of `stretch` at once (see the module docstring)."""
    return (
        stretch.ndim == 2
        and stretch.dtype == np.float32
        and length >= 2
        and not config.rr_channel
        and config.fixed_length_s is None
        and config.normalization in STACKED_NORMALIZATIONS
        and np.isfinite(stretch).all()
        and pipeline.abs_max(stretch) <= pipeline.HEADROOM  # else resampling runs in float64, window by window
    )


def _windows(signal: np.ndarray, starts: np.ndarray, a: int, b: int, length: int) -> np.ndarray:
    """Samples `a:b` of each window `signal[start : start + length]`, float32 `(len(starts), b - a, n_leads)`."""
    view = np.lib.stride_tricks.sliding_window_view(signal, length, axis=0)  # (n - length + 1, n_leads, length), no copy
    return np.ascontiguousarray(view[starts, :, a:b].transpose(0, 2, 1))


def _resampled_windows(signal: np.ndarray, starts: np.ndarray, length: int, fs: float, target_fs: float) -> np.ndarray:
    """:func:`~ecgrhythm.preprocessing.pipeline.resample` of each window, from one resampling of the stretch they cover
    (see the module docstring)."""
    if fs == target_fs:
        return _windows(signal, starts, 0, length, length)
    up, down = pipeline.rate_ratio(fs, target_fs)
    edge, end = _edge_samples(up, down)  # outputs redone at each end, from the window's first (last) `end` samples
    aligned = np.flatnonzero((starts - starts[0]) % down == 0)
    if length < 2 * end + down or len(aligned) < 2:
        return pipeline.polyphase(_windows(signal, starts, 0, length, length), up, down, axis=1)
    m = -(-length * up // down)
    out = np.empty((len(starts), m, signal.shape[1]), np.float32)
    stretch = pipeline.polyphase(signal[None, starts[0] : starts[aligned[-1]] + length], up, down, axis=1)[0]
    out[aligned] = _windows(stretch, (starts[aligned] - starts[0]) * up // down, 0, m, m)
    tail = length - down * ((length - end) // down)  # the window's last samples, from a whole number of `down` in
    out[aligned, :edge] = pipeline.polyphase(_windows(signal, starts[aligned], 0, end, length), up, down, axis=1)[:, :edge]
    out[aligned, m - edge :] = pipeline.polyphase(_windows(signal, starts[aligned], length - tail, length, length), up, down, axis=1)[:, -edge:]
    others = np.setdiff1d(np.arange(len(starts)), aligned)
    if len(others):
        out[others] = pipeline.polyphase(_windows(signal, starts[others], 0, length, length), up, down, axis=1)
    return pipeline.to_float32(out)  # the windows' own checks, element by element: nothing to change in finite values


def _edge_samples(up: int, down: int) -> tuple[int, int]:
    """`(edge, end)`: how many output samples at each end of a window are resampled again from its ends (all those whose
    filter may reach past the window, with room to spare), and from how many input samples at that end (enough that
    the segment's own far end reaches none of them)."""
    half = 10 * max(up, down)  # resample_poly's filter: 2 * half + 1 taps, preceded by `pre` zeros
    pre = down - half % down
    taps, removed = 2 * half + 1 + pre, (half + pre) // down
    edge = removed + math.ceil(taps / down) + 2
    end = down * math.ceil(((edge + removed + math.ceil(taps / down) + 2) * down / up + 1) / down)
    return edge, end
