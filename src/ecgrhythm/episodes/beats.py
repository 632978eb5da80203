"""AF episodes over beats (`EpisodeParams(method="beats")`): R-R evidence and the network's windows, combined per beat.

1. :func:`record_beats` finds every beat of the lead (sleepecg's detector,
   :func:`~ecgrhythm.preprocessing.rpeaks.detect_beats`), a piece at a time, so a 24 h record holds only
   its beats (about 100k) besides one piece.
2. :func:`beat_evidence` gives each beat two measures that do not depend on the classifier (:data:`EVIDENCE`):
   the R-R tagger's AF log-odds (:mod:`ecgrhythm.episodes.rr_tagger`: a small recurrent network over the beats'
   R-R features, irregularity and repeating patterns such as bigeminy, fitted on long records joined from CinC 2017
   records), and the atrial activity before its QRS (:func:`~ecgrhythm.episodes.atrial.p_wave_evidence`: how clearly a
   P wave repeats over the beats around it; its absence counts for nothing, since noise and small P waves lack it too).
3. :class:`BeatModel` turns them into AF log-odds in two stages: a logistic model of the beat's own evidence
   (fitted on records of many patients),
   then a logistic blend of those log-odds with the network's AF log-odds at the beat (the window
   probabilities interpolated at the beat), whose intercept is the prior of AF for a beat.
4. :func:`viterbi_af` chooses each beat's state (AF or not) by Viterbi over the beats: every beat
   adds its log-odds plus `beat_bias` to the AF state, each change of state costs `beat_switch_cost`.
   An AF episode runs from its first AF beat to its last (the CPSC 2021 truth puts the onset mark
   just before the first AF beat and the end mark just after the last).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ecgrhythm.episodes.atrial import p_wave_evidence
from ecgrhythm.episodes.params import DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.episodes.rr_tagger import rr_tagger_logit
from ecgrhythm.preprocessing.rpeaks import detect_beats

__all__ = ["BeatModel", "DEFAULT_BEAT_MODEL", "EVIDENCE", "record_beats", "beat_evidence", "beat_network_logit", "viterbi_af", "beat_stretches"]

_PIECE_S, _MARGIN_S = 300.0, 5.0
EVIDENCE = ("rr_tagger", "p_wave")  # the beat's own evidence: the R-R tagger's log-odds, the P-wave coherence before its QRS


@dataclasses.dataclass(frozen=True)
class BeatModel:
    """The AF log-odds of a beat (see the module docstring, step 3).

    Attributes:
        mean, scale: standardisation of the evidence `(n_evidence,)`.
        coef, intercept: the logistic model of the beat's own evidence, on the standardised evidence.
        blend: `(w_beat, w_network, intercept)`: AF log-odds = `w_beat * evidence_logit + w_network * network_logit + intercept`.
        evidence: the names of the evidence (:data:`EVIDENCE`, or some of them), in the order of `mean`, `scale` and `coef`.
    """

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    blend: tuple[float, float, float]
    evidence: tuple[str, ...] = EVIDENCE

    def __post_init__(self):
        evidence = self.evidence
        if not isinstance(evidence, tuple) or any(name not in EVIDENCE for name in evidence) or len(set(evidence)) < len(evidence):
            raise ValueError(f"Invalid argument `evidence`: expected a tuple of distinct names from {EVIDENCE}. Received: evidence={evidence!r}")
        if not (len(self.mean) == len(self.scale) == len(self.coef) == len(evidence)):
            raise ValueError(f"Invalid argument `evidence`: expected one name per coefficient ({len(self.coef)}). Received: evidence={evidence!r}")
        if len(self.blend) != 3:
            raise ValueError(f"Invalid argument `blend`: expected (w_beat, w_network, intercept). Received: blend={self.blend!r}")
        numbers = (*self.mean, *self.scale, *self.coef, self.intercept, *self.blend)
        if not np.isfinite(np.asarray(numbers, dtype=float)).all() or any(s <= 0 for s in self.scale):  # else NaN log-odds, which Viterbi misreads
            raise ValueError(
                f"Invalid BeatModel: expected finite numbers and positive scales. Received: mean={self.mean!r}, scale={self.scale!r}, "
                f"coef={self.coef!r}, intercept={self.intercept!r}, blend={self.blend!r}"
            )

    def evidence_logit(self, evidence: np.ndarray) -> np.ndarray:
        """AF log-odds per beat from its own evidence alone (:func:`beat_evidence`, `(n_beats, n_evidence)`)."""
        z = (evidence - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef) + self.intercept

    def logit(self, evidence: np.ndarray, network_logit: np.ndarray) -> np.ndarray:
        """AF log-odds per beat from its own evidence and the network's log-odds at it."""
        w_beat, w_net, b = self.blend
        return w_beat * self.evidence_logit(evidence) + w_net * np.asarray(network_logit) + b


# fitted by `scripts/episode_settings_crossfit.py --fit-beat-model`: the evidence part on the beats of the 18 cpsc2021
# records and 12 records joined from CinC 2017 (seed 0), the blend with the shipped network on the cpsc2021 records
DEFAULT_BEAT_MODEL = BeatModel(
    mean=(-1.6433, 0.0728), scale=(3.506, 0.134), coef=(3.5984, -1.7314), intercept=-3.0954, blend=(0.9368, 0.2516, 0.6148), evidence=EVIDENCE
)


def record_beats(read_signal: Callable[[int, int], np.ndarray], fs: float, n_samples: int, *, piece_s: float = _PIECE_S) -> np.ndarray:
    """Every beat of a lead read in pieces: int array of R-peak samples, increasing.

    Each piece is read with a few seconds on each side, so that beats at its edges are found once.

    Args:
        read_signal: `read_signal(a, b)` returns samples `a:b` of the lead `(b - a,)`.
        fs: sampling rate in Hz.
        n_samples: the lead's length.
        piece_s: seconds per piece (memory, not results).
    """
    step, margin = max(1, round(piece_s * fs)), round(_MARGIN_S * fs)
    found = []
    for a in range(0, n_samples, step):
        b = min(n_samples, a + step)
        lo, hi = max(0, a - margin), min(n_samples, b + margin)
        peaks = detect_beats(np.asarray(read_signal(lo, hi), dtype=np.float64), fs) + lo
        found.append(peaks[(peaks >= a) & (peaks < b)])
    beats = np.concatenate(found) if found else np.zeros(0, dtype=int)
    if len(beats) > 1:  # a beat found on both sides of a piece's edge, a few samples apart, counts once
        beats = beats[np.concatenate([[True], np.diff(beats) > 0.2 * fs])]
    return beats.astype(int)


def beat_evidence(
    read_signal: Callable[[int, int], np.ndarray], fs: float, n_samples: int, beats: np.ndarray, names: tuple[str, ...] = EVIDENCE
) -> np.ndarray:
    """Each beat's own evidence, the :class:`BeatModel`'s input `(n_beats, len(names))`, a column per name of :data:`EVIDENCE`:
    `rr_tagger`, the R-R tagger's AF log-odds (:func:`~ecgrhythm.episodes.rr_tagger.rr_tagger_logit`), and `p_wave`, the
    P-wave coherence before the QRS above its floor (:func:`~ecgrhythm.episodes.atrial.p_wave_evidence`, which reads the lead a
    piece at a time)."""
    beats = np.asarray(beats)
    if any(name not in EVIDENCE for name in names):
        raise ValueError(f"Invalid argument `names`: expected names from {EVIDENCE}. Received: names={names!r}")
    make = {"rr_tagger": lambda: rr_tagger_logit(beats, fs), "p_wave": lambda: p_wave_evidence(read_signal, fs, n_samples, beats)}
    return np.stack([make[name]() for name in names], axis=1) if len(names) else np.zeros((len(beats), 0))


def beat_network_logit(windows, beats: np.ndarray, fs: float) -> np.ndarray:
    """The network's AF log-odds at each beat: the windows' log-odds interpolated between window centres."""
    p = np.clip(windows.af_probability(), 1e-4, 1 - 1e-4)
    if len(p) == 0:
        return np.zeros(len(beats))
    return np.interp(np.asarray(beats) / fs, windows.centres_s, np.log(p) - np.log1p(-p))


def viterbi_af(logit: np.ndarray, switch_cost: float, bias: float = 0.0) -> np.ndarray:
    """Most likely AF state (bool) of each beat: AF earns `logit + bias`, non-AF 0, each change of state costs `switch_cost`."""
    gain = (np.asarray(logit, dtype=float) + bias).tolist()  # plain floats: a loop over 100k beats in well under a second
    n = len(gain)
    if n == 0:
        return np.zeros(0, dtype=bool)
    off, on = 0.0, gain[0]  # best score ending in non-AF, in AF
    from_on, from_off = bytearray(n), bytearray(n)  # the best path into non-AF (AF) at t came from AF (non-AF)
    for t in range(1, n):
        off_from_on, on_from_off = on - switch_cost, off - switch_cost
        from_on[t], from_off[t] = off_from_on > off, on_from_off > on
        off, on = max(off, off_from_on), max(on, on_from_off) + gain[t]
    states = np.zeros(n, dtype=bool)
    s = on > off
    for t in range(n - 1, -1, -1):
        states[t] = s
        if (from_off if s else from_on)[t]:
            s = not s
    return states


def beat_states(
    windows, read_signal, beats: np.ndarray, fs: float, n_samples: int, params: EpisodeParams = DEFAULT_PARAMS, model: BeatModel | None = None
) -> np.ndarray:
    """AF state of each beat (bool array) from its own evidence and the network's windows (steps 2 to 4)."""
    model = model if model is not None else DEFAULT_BEAT_MODEL
    logit = model.logit(beat_evidence(read_signal, fs, n_samples, beats, model.evidence), beat_network_logit(windows, beats, fs))
    return viterbi_af(logit, params.beat_switch_cost, params.beat_bias)


def beat_stretches(
    windows, read_signal, beats: np.ndarray, fs: float, n_samples: int, params: EpisodeParams = DEFAULT_PARAMS, model: BeatModel | None = None
) -> list[tuple[float, float, bool]]:
    """`(start_s, end_s, is_af)` stretches covering the record, from the beats' states (`read_signal(a, b)`: samples
    `a:b` of the lead, for the P waves).

    An AF run goes from its first beat to its last (from the record's start or to its end when it
    holds the first or last beat); runs of fewer than `min_af_beats` beats are not AF. Without beats
    the record is one non-AF stretch.
    """
    duration = n_samples / fs
    beats = np.asarray(beats, dtype=int)
    if len(beats) == 0:
        return [(0.0, duration, False)]
    states = beat_states(windows, read_signal, beats, fs, n_samples, params, model)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], states.astype(int), [0]])))
    bounds, out = [], []
    for i, j in zip(edges[::2], edges[1::2] - 1):  # AF beats i..j
        if j - i + 1 < params.min_af_beats:
            continue
        a = 0.0 if i == 0 else beats[i] / fs
        b = duration if j == len(beats) - 1 else beats[j] / fs
        if b > a:
            bounds.append((a, b))
    t = 0.0
    for a, b in bounds:
        if a > t:
            out.append((t, a, False))
        out.append((a, b, True))
        t = b
    if t < duration:
        out.append((t, duration, False))
    return out
