"""The R-R tagger: the AF log-odds of every beat from the R-R intervals around it, a small recurrent network.

The R-R evidence of the beats method (:mod:`ecgrhythm.episodes.beats`). Each beat is described by
:func:`tagger_inputs` (:func:`beat_features`, irregularity and pattern measures over 8 and 16 beats; its own interval
and the change from the one before), and a two-layer bidirectional GRU of 16 units a direction reads the sequence of beats and gives each
one its AF log-odds. It sees no ECG samples and no network output, so it does not depend on the shipped classifier:
it was fitted on the beats of long records joined from CinC 2017 records, whose AF stretches are known beat by beat
(:mod:`ecgrhythm.lab.rr_tagger_fit`, `python scripts/fit_rr_tagger.py`), none of them among the joined records the
episode scores are measured on. The graph (`rr_tagger.onnx`, beside this module, about 30 kB) holds the features'
standardisation too, and runs on onnxruntime, like the classifier's graph.

A record's beats are mirrored about its ends (:func:`mirrored`, :data:`MIRROR_BEATS`), in fitting as in use, so that
its first and last beats are read like the others; then they are read in stretches of :data:`CHUNK_BEATS` with
:data:`MARGIN_BEATS` more on each side (whose outputs are dropped), each stretch's inputs made from its own beats and a
few more, so a record of any length takes the same bounded memory besides its beats.
"""

from __future__ import annotations

import threading
from importlib import resources

import numpy as np

__all__ = [
    "FEATURE_NAMES",
    "INPUT_NAMES",
    "TAGGER_FILE",
    "CHUNK_BEATS",
    "MARGIN_BEATS",
    "MIRROR_BEATS",
    "beat_features",
    "tagger_inputs",
    "mirrored",
    "rr_tagger_logit",
]

FEATURE_NAMES = ("log_rr", "msd8", "msd16", "cv8", "cv16", "lag2_8", "lag2_16", "pattern16")
INPUT_NAMES = (*FEATURE_NAMES, "log_rr_beat", "dlog_rr")  # the tagger's inputs per beat, in order
TAGGER_FILE = "rr_tagger.onnx"
INPUT, OUTPUT = "features", "logit"  # the graph's input `(batch, beats, len(INPUT_NAMES))` and output `(batch, beats)`
CHUNK_BEATS, MARGIN_BEATS = 4096, 256
MIRROR_BEATS = 32  # beats mirrored about each end of a record, so that its first and last beats have neighbours
_FEATURE_REACH = 24  # beats either side a beat's inputs are made from (16-beat windows, lags of 3, the interval before), and more


def _rolling(x: np.ndarray, width: int, fn) -> np.ndarray:
    """`fn` over centred windows of `width` values of `x` (edges padded by mirroring), along axis 1 of the view."""
    half = width // 2
    padded = np.pad(x, (half, width - half - 1), mode="symmetric")
    return fn(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)


def _intervals(beats: np.ndarray, fs: float) -> np.ndarray:
    """R-R interval (s) ending at each beat; the first beat borrows the second's."""
    rr = np.diff(np.asarray(beats, dtype=float)) / fs
    return np.concatenate([rr[:1], rr])


def beat_features(beats: np.ndarray, fs: float) -> np.ndarray:
    """R-R features of each beat, float array `(n_beats, len(FEATURE_NAMES))`.

    Beat `i` carries the interval ending at it (`RR_i`; the first beat borrows the second's). Over
    centred windows of 8 and 16 beats, each normalised by the window's median interval: `msd` the
    median absolute successive difference, `cv` the standard deviation, `lag2` the median absolute
    difference two beats apart, and `pattern16` the smaller of the lag-2 and lag-3 differences over
    the lag-1 one (below 1 for a repeating pattern); `log_rr` is the log median interval (s) over 8.
    Differences are log-scaled (`log(0.01 + x)`). Fewer than 3 beats give zeros.
    """
    if len(beats) < 3:
        return np.zeros((len(beats), len(FEATURE_NAMES)))
    return _features(_intervals(beats, fs))


def _features(rr: np.ndarray) -> np.ndarray:
    """:func:`beat_features` from the intervals `rr` (:func:`_intervals`, at least 3)."""
    d1 = np.abs(np.diff(rr, prepend=rr[0]))
    d2 = np.abs(rr - np.concatenate([rr[:2], rr[:-2]]))
    d3 = np.abs(rr - np.concatenate([rr[:3], rr[:-3]])) if len(rr) > 3 else d2
    medians = {w: _rolling(rr, w, np.median) for w in (8, 16)}
    columns = {"log_rr": np.log(medians[8])}
    for w, med in medians.items():
        columns[f"msd{w}"] = _rolling(d1, w, np.median) / med
        columns[f"cv{w}"] = _rolling(rr, w, np.std) / med
        columns[f"lag2_{w}"] = _rolling(d2, w, np.median) / med
    lag1 = _rolling(d1, 16, np.mean)
    columns["pattern16"] = np.minimum(_rolling(d2, 16, np.mean), _rolling(d3, 16, np.mean)) / np.maximum(lag1, 1e-3)
    out = np.stack([columns[name] for name in FEATURE_NAMES], axis=1)
    out[:, 1:] = np.log(0.01 + out[:, 1:])
    return out


def tagger_inputs(beats: np.ndarray, fs: float) -> np.ndarray:
    """The tagger's inputs per beat, float32 `(n_beats, len(INPUT_NAMES))`: :func:`beat_features`, the log of the beat's own
    interval and its change from the previous one (zeros with fewer than 3 beats)."""
    if len(beats) < 3:
        return np.zeros((len(beats), len(INPUT_NAMES)), dtype=np.float32)
    rr = _intervals(beats, fs)
    log_rr = np.log(rr)
    return np.concatenate([_features(rr), log_rr[:, None], np.diff(log_rr, prepend=log_rr[0])[:, None]], axis=1).astype(np.float32)


def mirrored(values: np.ndarray) -> np.ndarray:
    """`values` with :data:`MIRROR_BEATS` (at most one fewer than there are) mirrored about each end, so that a record's
    first and last beats have neighbours like its others: beat times (numbers) reflected, `2 * b[0] - b[k:0:-1]` before
    and `2 * b[-1] - b[-2:-k-2:-1]` after (as int64 for integers); a bool array (a truth per beat) copied alike."""
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        values = values.astype(np.int64)
    k = min(MIRROR_BEATS, len(values) - 1)
    before, after = values[k:0:-1], values[-2 : -k - 2 : -1]
    if values.dtype.kind != "b":
        before, after = 2 * values[0] - before, 2 * values[-1] - after
    return np.concatenate([before, values, after])


_SESSION_LOCK = threading.Lock()  # the service's worker threads may ask for it at once: one session, made once
_SESSIONS = []


def _session():
    from ecgrhythm.inference.onnx_backend import open_session

    with _SESSION_LOCK:
        if not _SESSIONS:
            with resources.as_file(resources.files("ecgrhythm.episodes") / TAGGER_FILE) as path:
                _SESSIONS.append(open_session(path))
        return _SESSIONS[0]


def rr_tagger_logit(beats: np.ndarray, fs: float) -> np.ndarray:
    """The AF log-odds of each beat from its R-R intervals (the shipped tagger), float array `(n_beats,)`; zeros for
    fewer than 3 beats.

    Args:
        beats: R-peak sample indices, strictly increasing.
        fs: sampling rate in Hz.

    Raises:
        ValueError: `beats` is not one strictly increasing array of sample indices.
    """
    from ecgrhythm.inference.interruptible import run_session

    beats = np.asarray(beats)
    if beats.ndim != 1 or (beats.size and beats.dtype.kind not in "iu") or np.any(np.diff(beats) <= 0):
        raise ValueError(
            f"Invalid argument `beats`: expected strictly increasing sample indices (ints). Received: shape {beats.shape}, dtype {beats.dtype}"
        )
    n = len(beats)
    out = np.zeros(n)
    if n < 3:
        return out
    beats, k = mirrored(beats), min(MIRROR_BEATS, n - 1)
    session = _session()
    for a in range(k, k + n, CHUNK_BEATS):
        b = min(k + n, a + CHUNK_BEATS)
        lo, hi = max(0, a - MARGIN_BEATS), min(len(beats), b + MARGIN_BEATS)
        first, stop = max(0, lo - _FEATURE_REACH), min(len(beats), hi + _FEATURE_REACH)  # the inputs of lo:hi need these beats
        x = tagger_inputs(beats[first:stop], fs)[lo - first : hi - first]
        logit = run_session(session, [OUTPUT], {INPUT: x[None]})[0][0]
        out[a - k : b - k] = logit[a - lo : b - lo]
    return out
