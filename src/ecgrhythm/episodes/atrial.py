"""Atrial activity before each QRS: does a P wave repeat beat after beat? The beats method's second evidence.

In sinus rhythm, and in most other rhythms that are not AF, each QRS is led by a P wave of the same shape at the same
distance; in AF the atria fibrillate and the stretch before each QRS holds fibrillatory waves, or nothing, that do
not repeat. :func:`p_wave_coherence` measures that per beat:

1. the lead is band-passed 0.5-40 Hz (zero phase; :func:`~ecgrhythm.preprocessing.filters.zero_phase_lead`);
2. each beat's window runs from :data:`WINDOW_S` `[0]` (0.35 s) to `[1]` (0.06 s) before its R peak, where the P wave
   and the atrial activity before the QRS lie; it is centred and scaled to unit length;
3. a beat's coherence is the squared length of the mean of the windows of the :data:`NEIGHBOURS` beats on each side
   and its own: 1 when they all have one shape, about `1 / (2 * NEIGHBOURS + 1)` when they are unrelated (fewer
   windows near the record's ends); a record's only beat has nothing to repeat, and 0.

Noise lowers it as AF does, and so do P waves too small to stand out and rhythms without them that are not AF
(the cpsc2021 sample's data_35, whose group beating the R-R tagger reads as AF, shows none). So the beats method takes
only its presence as evidence: :func:`p_wave_evidence` is the coherence above :data:`P_WAVE_FLOOR`, zero below it, and a
P wave that repeats argues against AF in the :class:`~ecgrhythm.episodes.beats.BeatModel` while its absence says
nothing. Taking the whole coherence instead, as a straight logistic term, scored lower by cross-validation
(`docs/results/cpsc2021-episodes/README.md`). The lead is read a piece at a time (:data:`PIECE_S` with 20 s on each side,
where the filter's ends fade), so a record of any length takes one piece and its beats' windows besides its beats; the
coherence equals that of the lead read whole, to rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ecgrhythm.preprocessing.filters import zero_phase_lead

__all__ = ["WINDOW_S", "NEIGHBOURS", "PIECE_S", "BAND_HZ", "P_WAVE_FLOOR", "p_wave_windows", "p_wave_coherence", "p_wave_evidence"]

WINDOW_S = (0.35, 0.06)  # seconds before the R peak where each beat's window starts and ends
NEIGHBOURS = 8  # beats on each side whose windows are averaged with a beat's own
PIECE_S = 300.0
BAND_HZ = (0.5, 40.0)
P_WAVE_FLOOR = 0.6  # coherence below which the beats method reads no P wave (0.4 to 0.7 scored alike)
_MARGIN_S = 20.0  # signal read beyond a piece's windows: the filter's ends fade by e^-1.6 a second (its slowest pole, 0.5 Hz)


def _band(fs: float) -> tuple[float, float]:
    """The band-pass of step 1, its upper edge below Nyquist at low sampling rates."""
    return BAND_HZ[0], min(BAND_HZ[1], 0.45 * fs)


def _span(fs: float) -> tuple[int, int, int]:
    """`(before, after, width)`: samples before the R peak where a window starts and ends, and its length (at least 1)."""
    before, after = round(WINDOW_S[0] * fs), round(WINDOW_S[1] * fs)
    return before, after, max(1, before - after)


def p_wave_windows(y: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Each peak's window of the filtered lead `y` (step 2), centred and of unit length: `(n_peaks, width)` float64.

    Samples before the lead's start or after its end repeat its first or last; a flat window stays zero, as does one
    whose spread is only rounding (`1e-9` of its level or less: a window wholly before the lead's start repeats its
    first sample, and centring that leaves rounding, not a shape).
    """
    before, after, width = _span(fs)
    if len(y) == 0:
        return np.zeros((len(peaks), width))
    index = np.clip(np.asarray(peaks, dtype=int)[:, None] + np.arange(-before, -after)[None, :], 0, len(y) - 1)
    values = y[index]
    w = values - values.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(w, axis=1, keepdims=True)
    level = np.abs(values).max(axis=1, keepdims=True, initial=0.0)
    return np.divide(w, norm, out=np.zeros_like(w), where=norm > 1e-9 * np.sqrt(w.shape[1]) * level)


def _piece_windows(read_signal, fs: float, n_samples: int, peaks: np.ndarray) -> np.ndarray:
    """:func:`p_wave_windows` of `peaks` (increasing), the lead read from a margin before the first window to one after the last peak."""
    margin = round((_MARGIN_S + WINDOW_S[0]) * fs)
    lo, hi = max(0, int(peaks[0]) - margin), min(n_samples, int(peaks[-1]) + round(_MARGIN_S * fs))
    x = np.asarray(read_signal(lo, hi), dtype=np.float64)
    try:
        y = zero_phase_lead(x, fs, *_band(fs))
    except ValueError:  # a stretch too short to filter: its windows say nothing
        return np.zeros((len(peaks), _span(fs)[2]))
    return p_wave_windows(y, np.asarray(peaks) - lo, fs)


def p_wave_coherence(
    read_signal: Callable[[int, int], np.ndarray], fs: float, n_samples: int, beats: np.ndarray, *, piece_s: float = PIECE_S
) -> np.ndarray:
    """Each beat's P-wave coherence (step 3), 0 to 1: float array `(n_beats,)`.

    Args:
        read_signal: `read_signal(a, b)` returns samples `a:b` of the lead `(b - a,)`.
        fs: sampling rate in Hz.
        n_samples: the lead's length.
        beats: the lead's R peaks, increasing sample indices (:func:`~ecgrhythm.episodes.beats.record_beats`).
        piece_s: seconds of beats whose windows are made at a time (memory, not results, to rounding).

    Raises:
        ValueError: `beats` are not increasing indices from 0 to `n_samples - 1`.

    Example:
        >>> import ecgrhythm
        >>> from ecgrhythm.episodes.beats import record_beats
        >>> record = ecgrhythm.read_record("../shared/data/cpsc2021-sample/data_101_6.hea")  # paroxysmal AF
        >>> lead = record.signal[:, 0]
        >>> beats = record_beats(lambda a, b: lead[a:b], record.fs, len(lead))
        >>> coherence = p_wave_coherence(lambda a, b: lead[a:b], record.fs, len(lead), beats)
        >>> af = (beats >= 3132) & (beats <= 5639)   # the first annotated AF episode
        >>> round(float(coherence[af].mean()), 2), round(float(coherence[beats < 3000].mean()), 2)
        (0.31, 0.74)
    """
    beats = np.asarray(beats, dtype=int)
    n = len(beats)
    if beats.ndim != 1 or (n and (beats[0] < 0 or beats[-1] >= n_samples or (np.diff(beats) < 0).any())):
        shown = f"{n} beats from {beats.min()} to {beats.max()}" if beats.size else f"shape {beats.shape}"
        raise ValueError(f"Invalid argument `beats`: expected increasing sample indices from 0 to n_samples - 1 = {n_samples - 1}. Received: {shown}")
    out = np.zeros(n)
    step = max(1, round(piece_s * fs))
    width = _span(fs)[2]
    held, first = np.zeros((0, width)), 0  # windows of beats first..first+len(held), not yet needed by every neighbour
    done = 0  # beats whose coherence is out
    for a in range(0, n_samples, step):
        i0, i1 = np.searchsorted(beats, [a, min(n_samples, a + step)])
        if i1 > i0:
            held = np.vstack([held, _piece_windows(read_signal, fs, n_samples, beats[i0:i1])])
        ready = n if a + step >= n_samples else max(done, int(i1) - NEIGHBOURS)  # beats whose neighbours are all held
        if ready > done:
            out[done:ready] = _coherence(held, first, done, ready, n)
            done = ready
        keep = max(first, done - NEIGHBOURS)
        held, first = held[keep - first :], keep
    return out


def _coherence(held: np.ndarray, first: int, lo: int, hi: int, n: int) -> np.ndarray:
    """Coherence of beats `lo:hi` from the windows `held` of beats `first:first + len(held)`, of `n` beats."""
    sums = np.concatenate([np.zeros((1, held.shape[1])), np.cumsum(held, axis=0)])
    i = np.arange(lo, hi)
    a, b = np.maximum(i - NEIGHBOURS, 0) - first, np.minimum(i + NEIGHBOURS + 1, n) - first
    mean = (sums[b] - sums[a]) / (b - a)[:, None]
    return np.where(b - a > 1, np.clip(np.sum(mean**2, axis=1), 0.0, 1.0), 0.0)  # a lone window repeats nothing


def p_wave_evidence(read_signal: Callable[[int, int], np.ndarray], fs: float, n_samples: int, beats: np.ndarray) -> np.ndarray:
    """The beats method's P-wave evidence: :func:`p_wave_coherence` above :data:`P_WAVE_FLOOR` (0 below it), `(n_beats,)`."""
    return np.maximum(p_wave_coherence(read_signal, fs, n_samples, beats) - P_WAVE_FLOOR, 0.0)
