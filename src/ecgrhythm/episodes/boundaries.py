"""Steps 2 and 3 of the episode finder: AF / non-AF smoothed by a hidden Markov model over the windows, and each
change of rhythm placed on a beat."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ecgrhythm.episodes.params import DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.episodes.windows import WindowProbabilities
from ecgrhythm.preprocessing.rpeaks import detect_r_peaks

__all__ = ["smooth_af", "af_segments", "refine_boundaries"]


def smooth_af(p_af: np.ndarray, params: EpisodeParams = DEFAULT_PARAMS) -> np.ndarray:
    """Posterior probability of AF at each window from a two-state hidden Markov model.

    States AF / non-AF with a flat prior, switching with probability
    `switch_prob` between consecutive windows; a window's evidence is its
    AF log-odds times `emission_scale` plus `emission_bias`. Computed by the
    forward-backward algorithm in log space.

    Args:
        p_af: float array `(n_windows,)` of window AF probabilities.

    Returns:
        float array `(n_windows,)` of posterior AF probabilities.
    """
    p = np.clip(np.asarray(p_af, dtype=float), 1e-6, 1 - 1e-6)
    n = len(p)
    if n == 0:
        return p
    evidence = params.emission_scale * (np.log(p) - np.log1p(-p)) + params.emission_bias
    log_e = np.stack([-np.logaddexp(0, evidence), -np.logaddexp(0, -evidence)], axis=1).tolist()  # (n, 2): non-AF, AF
    stay, switch = math.log1p(-params.switch_prob), math.log(params.switch_prob)
    # the recursions on Python floats, with numpy's logaddexp on each pair: the same numbers as on numpy's arrays of two
    fwd = [(log_e[0][0] + math.log(0.5), log_e[0][1] + math.log(0.5))]
    for e0, e1 in log_e[1:]:
        f0, f1 = fwd[-1]
        fwd.append((e0 + _logaddexp(f0 + stay, f1 + switch), e1 + _logaddexp(f0 + switch, f1 + stay)))
    bwd = [(0.0, 0.0)]
    for e0, e1 in reversed(log_e[1:]):
        b0, b1 = bwd[-1]
        n0, n1 = b0 + e0, b1 + e1
        bwd.append((_logaddexp(stay + n0, switch + n1), _logaddexp(switch + n0, stay + n1)))
    post = np.array(fwd) + np.array(bwd[::-1])
    return 1.0 / (1.0 + np.exp(post[:, 0] - post[:, 1]))


_LOGE2 = 0.693147180559945309417232121458176568  # numpy's NPY_LOGE2


def _logaddexp(x: float, y: float) -> float:
    """`numpy.logaddexp(x, y)` of two floats, to the bit: numpy's own steps (`npy_logaddexp`) on the C library's `exp` and
    `log1p`, which Python's `math` calls too; a test compares them on the windows of real records and on a wide spread."""
    if x == y:
        return x + _LOGE2
    d = x - y
    return x + math.log1p(math.exp(-d)) if d > 0 else y + math.log1p(math.exp(d))


def af_segments(windows: WindowProbabilities, posterior: np.ndarray) -> list[tuple[float, float, bool]]:
    """Contiguous `(start_s, end_s, is_af)` stretches covering `[0, duration_s]`.

    The state changes between two window centres: where the windows' AF
    probability crosses 1/2 (linear interpolation) if it does between them,
    else halfway. The first and last stretch reach the record's ends.
    """
    if len(posterior) == 0:
        return [(0.0, windows.duration_s, False)]
    state = np.asarray(posterior) > 0.5
    centres, p = windows.centres_s, windows.af_probability()
    change = np.flatnonzero(state[1:] != state[:-1])
    crossing = []
    for i in change:
        lo, hi = p[i], p[i + 1]
        f = (0.5 - lo) / (hi - lo) if (lo - 0.5) * (hi - 0.5) < 0 else 0.5
        crossing.append(centres[i] + f * (centres[i + 1] - centres[i]))
    bounds = [0.0, *crossing, windows.duration_s]
    states = [bool(state[0]), *(bool(state[i + 1]) for i in change)]
    return [(a, b, s) for a, b, s in zip(bounds[:-1], bounds[1:], states)]


def _change_beat(peaks: np.ndarray, to_af: bool, t: float, fs: float, params: EpisodeParams) -> int | None:
    """Index `j` into `peaks` where a rhythm change splits the beats, or `None` with fewer than 4 beats.

    Beat `i` (not the first or last) shows irregularity `d_i = |RR_(i+1) - RR_i| / median RR`,
    `RR_i` being the interval ending at beat `i`. The chosen `j` maximises
    the sum of `irregularity - d_i` over the beats before it and
    `d_i - irregularity` over the beats from it on (for a change to AF; the
    signs swap for a change from AF), less `pull` times the distance in
    seconds of beat `j` from the first estimate `t`. So a change to AF lands
    on the beat that starts the first irregular interval (`peaks[j]`), and a
    change from AF on the beat that ends the last one (`peaks[j - 1]`).
    """
    if len(peaks) < 4:
        return None
    rr = np.diff(peaks).astype(float)
    d = np.abs(np.diff(rr)) / max(float(np.median(rr)), 1.0)  # d[k] belongs to beat k + 1
    gain = (d - params.irregularity) if to_af else (params.irregularity - d)
    after = np.concatenate([np.cumsum(gain[::-1])[::-1], [0.0]])  # after[q] = sum(gain[q:])
    before = np.concatenate([[0.0], np.cumsum(-gain)])  # before[q] = -sum(gain[:q])
    beats = np.arange(len(gain) + 1) + 1
    score = before + after - params.pull * np.abs(peaks[beats] / fs - t)
    return int(beats[int(np.argmax(score))])


def refine_boundaries(segments, read_signal: Callable[[int, int], np.ndarray], fs: float, n_samples: int, params: EpisodeParams = DEFAULT_PARAMS):
    """Move each change of rhythm onto an R peak; drop AF episodes shorter than `min_af_beats`.

    For a change at `t`, the stretch `t +- refine_s` is read, its R peaks
    detected and the change put on the beat that best splits regular from
    irregular RR intervals (:func:`_change_beat`): an AF episode runs from
    the start of its first irregular interval to the end of its last.
    Without enough beats the change stays where it was.

    Args:
        segments: `(start_s, end_s, is_af)` stretches from :func:`af_segments`.
        read_signal: `read_signal(a, b)` returns samples `a:b` of the lead, array `(b - a,)`.
        fs: sampling rate in Hz.
        n_samples: the record's length.

    Returns:
        `(start_s, end_s, is_af)` stretches covering the record, alternating AF and non-AF.
    """
    bounds = [s[0] for s in segments] + [segments[-1][1]]
    states = [s[2] for s in segments]
    beats = set()
    for k in range(1, len(bounds) - 1):
        t = bounds[k]
        a = max(0, round((t - params.refine_s) * fs))
        b = min(n_samples, round((t + params.refine_s) * fs))
        peaks = detect_r_peaks(read_signal(a, b), fs) + a
        beats.update(int(p) for p in peaks)
        j = _change_beat(peaks, states[k], t, fs, params)
        if j is not None:
            bounds[k] = peaks[j] / fs if states[k] else peaks[j - 1] / fs
        bounds[k] = max(bounds[k], bounds[k - 1])
    peaks = np.array(sorted(beats), dtype=int)
    out = []
    for a, b, s in zip(bounds[:-1], bounds[1:], states):
        if s and b - a < 2 * params.refine_s and np.count_nonzero((peaks >= a * fs) & (peaks <= b * fs)) < params.min_af_beats:
            s = False  # too short to count: absorbed into its non-AF neighbours
        if out and out[-1][2] == s:
            out[-1] = (out[-1][0], b, s)
        elif b > a:
            out.append((a, b, s))
    return out
