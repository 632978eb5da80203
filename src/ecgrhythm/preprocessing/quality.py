"""Signal quality of ECG leads from their beats, and the choice of a record's best lead by it.

The quality of a lead is the template-matching index of Orphanidou et al. ("Signal-quality indices for
the electrocardiogram and photoplethysmogram", IEEE J Biomed Health Inform 19(3), 2015; NeuroKit2's
`averageQRS`): the beats of sleepecg's detector (:func:`~ecgrhythm.preprocessing.rpeaks.detect_beats`),
cut around each R peak, are correlated with their median beat. Real beats are alike, whatever the rhythm
(the index looks at the beats' shape, not their timing, so AF scores as high as sinus rhythm); noise gives
detections that look like nothing in common. We take the median correlation (robust to a few ectopic
beats) and multiply it by the fraction of the lead that is alive: a lead flat over 2-second blocks
(disconnected, or pinned at a rail by saturation) scores that much lower, and a lead with fewer than
`MIN_BEATS` beats (flat, a single step) scores 0.

:func:`best_lead` keeps the lead a model prefers unless that lead is unusable and another is clearly better.
Its thresholds were set on the real records of `../shared/data` (the median correlation alone):

- white noise at the scale of a real lead scored 0.17-0.29 (304 draws on the cpsc2021 and cinc2021 sample
  records), a flat lead or a flat lead with one step 0; lead I of the 18 cpsc2021 and 50 cinc2021 sample
  records scored 0.45-1.00, and of 673 cinc2017 records labelled N, A or O 1.5 % scored under 0.35 (of its
  records labelled too noisy to classify, 14 %). Hence `USABLE = 0.35`: above every noise draw and every
  sample record's lead I;
- the leads of one clean 12-lead record differ by up to 0.8 (a record's lead III or aVR is often far below
  its other leads), so a lead is replaced only by one at least `MARGIN = 0.3` better, and preferably by the
  first lead in the record's order that scores at least `CLEAR = 0.65` (about the 0.66 Orphanidou et al.
  set for an acceptable ECG): lead II before the precordial leads, the nearest in shape to lead I.

It reads the first `CHECK_S` seconds of each lead, as the plausibility checks do, and costs a beat
detection on one lead when the preferred lead is usable, on every lead otherwise (the checks' cost, which is mostly
that detection: `benchmarks/plausibility_checks.py`).
"""

from __future__ import annotations

import logging

import numpy as np

from ecgrhythm.preprocessing.rpeaks import detect_beats

__all__ = [
    "lead_quality",
    "best_lead",
    "stream_head",
    "beat_matrix",
    "likeness",
    "CHECK_S",
    "MIN_BEATS",
    "USABLE",
    "MARGIN",
    "CLEAR",
    "FLAT_MV",
    "BLOCK_S",
]

logger = logging.getLogger(__name__)

CHECK_S = 180.0  # seconds of signal a lead is judged on, from the start
MIN_BEATS = 5  # fewer beats: no beat template
USABLE = 0.35  # a lead scoring less is unusable (noise, flat): see the module docstring
MARGIN = 0.3  # a replacement must score this much more than the lead it replaces
CLEAR = 0.65  # a replacement is the first lead scoring this much, else the best one
FLAT_MV = 0.02  # a block of a lead moving less than this (mV, peak to peak) is dead: flat or saturated
BLOCK_S = 2.0  # seconds per block for the dead-stretch check (longer than any pause between beats but the rarest)


def beat_matrix(x: np.ndarray, fs: float, *, min_fs: float | None = None):
    """The beats of one lead cut around its R peaks, each less its median, with their median beat.

    Args:
        x: float array `(n_samples,)`.
        fs: sampling rate in Hz.
        min_fs: beats detected at this rate or a little more (:func:`~ecgrhythm.preprocessing.rpeaks.detect_beats`),
            cut at `fs`; None: at `fs`.

    Returns:
        `(beats, template, rr)`: array `(n_beats, 2 * half + 1)` with `half` 40 % of the median R-R interval
        (within the R-R interval whatever the rate), their median beat `(2 * half + 1,)`, and the median R-R
        interval in samples; `None` when `x` is not finite or gives fewer than `MIN_BEATS` whole beats.
    """
    if len(x) < 2 or not np.all(np.isfinite(x)):
        return None
    peaks = detect_beats(x, fs, min_fs=min_fs)
    if len(peaks) < MIN_BEATS:
        return None
    rr = float(_median(np.diff(peaks)))
    half = int(0.4 * rr)
    peaks = peaks[np.searchsorted(peaks, half) : np.searchsorted(peaks, len(x) - half)]  # whole beats (peaks increase)
    if len(peaks) < MIN_BEATS or half < 2:
        return None
    beats = x[peaks[:, None] + np.arange(-half, half + 1)]
    beats -= _median(beats, axis=1)[:, None]
    return beats, _median(beats), rr


def _median(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """`np.median(a, axis=axis)` of a finite array, to the last bit, at half its cost or less on a record's beats:
    along the first axis (R-R intervals, or beats column by column: few values each) by sorting, along the second
    (each beat's samples) by partitioning."""
    n = a.shape[axis]
    if axis == 0:
        part = np.sort(a, axis=0)
    else:
        part = np.partition(a, n // 2 if n % 2 else (n // 2 - 1, n // 2), axis=1).T
    return part[n // 2] if n % 2 else (part[n // 2 - 1] + part[n // 2]) / 2


def likeness(beats: np.ndarray, template: np.ndarray) -> float:
    """Median correlation of the beats with their median beat (1: alike; noise: near 0)."""
    m = beats.shape[1]
    b = beats - beats.sum(axis=1, keepdims=True) / m
    t = template - template.sum() / m
    norms = np.sqrt((b * b).sum(axis=1)) * np.sqrt(t.dot(t))
    return float(_median(np.divide(b @ t, norms, out=np.zeros(len(b)), where=norms > 0)))


def lead_quality(signal, fs: float) -> float:
    """The quality of one lead, from 0 (flat, noise) to 1 (every beat alike), on its first `CHECK_S` seconds.

    Args:
        signal: array `(n_samples,)` in mV.
        fs: sampling rate in Hz.

    Returns:
        The median correlation of the beats with their median beat times the fraction of `BLOCK_S`-second
        blocks that move by at least `FLAT_MV`; 0 without `MIN_BEATS` beats.

    Example:
        >>> import ecgrhythm
        >>> from ecgrhythm.preprocessing.quality import lead_quality
        >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")
        >>> round(lead_quality(record.signal[:, 0], record.fs), 2)   # AF: the beats' timing varies, not their shape
        0.99
    """
    x = np.asarray(signal, dtype=np.float64).ravel()[: int(CHECK_S * fs)]
    found = beat_matrix(x, fs)
    if found is None:
        return 0.0
    return likeness(*found[:2]) * _alive(x, fs)


def _alive(x: np.ndarray, fs: float) -> float:
    """Fraction of the `BLOCK_S`-second blocks of `x` (the last one may be shorter) whose peak-to-peak is at least `FLAT_MV`."""
    step = max(1, int(BLOCK_S * fs))
    moving = [np.ptp(x[a : a + step]) >= FLAT_MV for a in range(0, len(x), step)]
    return float(np.mean(moving)) if moving else 0.0


HEAD_VALUES = 1 << 23  # at most this many samples (all leads) in a stream's head: 32 MB of float32


def stream_head(stream) -> np.ndarray:
    """The first `CHECK_S` seconds of every lead of a record read in pieces: what :func:`best_lead` judges, read once.

    Args:
        stream: an open stream with `read(start, stop)`, `n_samples` and `fs` (a
            :class:`~ecgrhythm.records.WfdbStream` or an EDF stream).

    Returns:
        float32 array `(min(n_samples, CHECK_S * fs), n_leads)` in mV, the same samples as the record read whole;
        at most `HEAD_VALUES` samples in all, so a record of a very high rate gives a shorter head.
    """
    n_leads = max(1, len(stream.sig_name))
    return stream.read(0, min(stream.n_samples, int(CHECK_S * stream.fs), HEAD_VALUES // n_leads))


def best_lead(signal, fs: float, preferred: int, *, sig_name=None, source="record") -> int:
    """The column of a multi-lead signal a single-lead model should take: `preferred` unless it is unusable
    and another lead is clearly better (see the module docstring).

    `preferred` is kept while its :func:`lead_quality` is at least `USABLE`, so only it is judged then.
    Otherwise the replacement is the first lead in column order scoring at least `CLEAR`, or else the best
    one (the first of equals), provided it scores at least `MARGIN` more than `preferred`.

    Args:
        signal: array `(n_samples, n_leads)` in mV: the record, or at least its first `CHECK_S` seconds.
        fs: sampling rate in Hz.
        preferred: the column the model would take by name (its own lead, else lead I, else the first).
        sig_name: the leads' names, for the log line saying which lead replaced which.
        source: the record's name, for that line.

    Returns:
        The column to use.

    Example:
        >>> import numpy as np
        >>> import ecgrhythm
        >>> from ecgrhythm.preprocessing.quality import best_lead
        >>> record = ecgrhythm.read_record("../shared/data/cpsc2021-sample/data_101_6.hea")   # leads I and II
        >>> best_lead(record.signal, record.fs, 0)
        0
        >>> flat_lead_i = np.stack([np.zeros(record.n_samples), record.signal[:, 1]], axis=1)
        >>> best_lead(flat_lead_i, record.fs, 0)
        1
    """
    head = np.asarray(signal)[: int(CHECK_S * fs)]
    if head.shape[1] < 2:  # nothing to choose from (a one-lead record, an episode window): no beat detection
        return preferred
    kept = lead_quality(head[:, preferred], fs)
    if kept >= USABLE:
        return preferred
    scores = [kept if k == preferred else lead_quality(head[:, k], fs) for k in range(head.shape[1])]
    clear = [k for k, score in enumerate(scores) if score >= CLEAR]
    candidate = clear[0] if clear else int(np.argmax(scores))
    if scores[candidate] < kept + MARGIN:
        return preferred
    names = sig_name if sig_name is not None else [str(k) for k in range(head.shape[1])]
    logger.info(
        "%s: lead %s looks unusable (quality %.2f); taking lead %s (quality %.2f)",
        source,
        names[preferred],
        kept,
        names[candidate],
        scores[candidate],
    )
    return candidate
