"""Rhythm episodes of long records: AF onsets and ends to the beat, AF burden and record class.

Three steps, each usable on its own so that long records can be streamed:

1. :func:`iter_window_probabilities` runs overlapping windows (10 s, hop
   `EpisodeParams.hop_s`) of a stream of signal pieces through a loaded
   :class:`~ecgrhythm.inference.classifier.RhythmClassifier`: class probabilities over
   time, one row per window, held only a batch at a time.
2. :func:`smooth_af` is a two-state (AF / non-AF) hidden Markov model over the
   windows' AF probabilities: forward-backward gives the posterior of AF at
   each window centre, so a rhythm lasts unless the evidence against it does.
3. :func:`refine_boundaries` places each change of state on the beat: R peaks
   are detected (wfdb's XQRS) only in a stretch around the change, and the
   change moves to the beat that best splits regular from irregular RR
   intervals. AF episodes shorter than `min_af_beats` beats (5, the CPSC 2021
   definition) are dropped.

:func:`record_episodes` does all three for an in-memory record,
:func:`stream_episodes` for a long WFDB record read in pieces.

Then a record whose AF burden reaches `persistent_burden` (0.85) is AF
throughout: persistent AF in the CPSC 2021 sense (the sample's paroxysmal
records reach 0.64, its persistent ones lose stretches of a few windows).

The windows' probabilities are the network's own: a model folder's calibration
(class prior and temperature), fitted on whole records, is not applied to them
(the HMM's settings were fitted without one), and a folder of several networks finds episodes with its
first network only (`EpisodeParams.networks`), since the settings were fitted
on one network's probabilities.

The `EpisodeParams` defaults were fitted on the 18 records of the cpsc2021
sample with an earlier network; `docs/results/cpsc2021-episodes/README.md`
says how, and what each shipped network scores with them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from ecgrhythm.preprocessing.pipeline import chosen_lead
from ecgrhythm.preprocessing.rpeaks import detect_r_peaks
from ecgrhythm.records import EcgRecord
from ecgrhythm.scoring.episodes import RECORD_CLASSES
from ecgrhythm.utils.validation import check_positive_int

__all__ = [
    "EpisodeParams",
    "Episode",
    "RecordEpisodes",
    "WindowProbabilities",
    "iter_window_probabilities",
    "collect_windows",
    "smooth_af",
    "af_segments",
    "refine_boundaries",
    "episodes_from_windows",
    "record_episodes",
    "stream_episodes",
    "AF_LABEL",
    "RECORD_CLASSES",
]

AF_LABEL = "A"


@dataclasses.dataclass(frozen=True)
class EpisodeParams:
    """Settings of the episode finder (defaults fitted as the module docstring says).

    Args:
        window_s: window length in seconds (the model saw 9-60 s records).
        hop_s: seconds between window starts.
        batch_windows: windows classified per call of the network.
        switch_prob: HMM probability of a change of rhythm from one window to the next.
        emission_scale: weight of a window's AF log-odds as HMM evidence
            (below 1: overlapping windows are not independent evidence).
        emission_bias: log-odds added to every window's evidence (negative: AF needs more evidence).
        refine_s: half width (s) of the stretch searched for the beat of a change.
        irregularity: relative successive RR difference that separates AF (above) from other rhythms.
        pull: cost per second of moving a change away from where the windows put it.
        min_af_beats: shortest AF episode, in beats.
        persistent_burden: AF burden from which the whole record is AF (persistent AF in the CPSC 2021 sense).
        networks: the windows' probabilities are the mean of the model folder's first `networks` networks
            (`None`: all). The settings were fitted on one network's probabilities, so an ensemble folder
            finds episodes with its first network (and at its speed), as does its ONNX file (the graph's
            first network's output).
    """

    window_s: float = 10.0
    hop_s: float = 2.0
    batch_windows: int = 64
    switch_prob: float = 0.01
    emission_scale: float = 1.0
    emission_bias: float = 0.0
    refine_s: float = 6.0
    irregularity: float = 0.1
    pull: float = 0.2
    min_af_beats: int = 5
    persistent_burden: float = 0.85
    networks: int | None = 1

    def __post_init__(self):
        for name in ("window_s", "hop_s", "refine_s", "irregularity", "emission_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"Invalid argument `{name}`: expected a positive number. Received: {name}={value!r}")
        if not 0 < self.switch_prob < 0.5:
            raise ValueError(f"Invalid argument `switch_prob`: expected a probability in (0, 0.5). Received: switch_prob={self.switch_prob!r}")
        if self.hop_s > self.window_s:
            raise ValueError(f"Invalid argument `hop_s`: expected at most window_s={self.window_s}. Received: hop_s={self.hop_s!r}")
        if not (isinstance(self.pull, (int, float)) and math.isfinite(self.pull) and self.pull >= 0):
            raise ValueError(f"Invalid argument `pull`: expected a number >= 0. Received: pull={self.pull!r}")
        if not 0 < self.persistent_burden <= 1:
            raise ValueError(
                f"Invalid argument `persistent_burden`: expected a share in (0, 1]. Received: persistent_burden={self.persistent_burden!r}"
            )
        check_positive_int("batch_windows", self.batch_windows)
        check_positive_int("min_af_beats", self.min_af_beats)
        check_positive_int("networks", self.networks, optional=True)


@dataclasses.dataclass(frozen=True)
class Episode:
    """One stretch of one rhythm: `[start_s, end_s)` seconds from the record start."""

    start_s: float
    end_s: float
    label: str
    probability: float


@dataclasses.dataclass(frozen=True)
class WindowProbabilities:
    """Class probabilities of overlapping windows.

    Attributes:
        starts_s: float array `(n_windows,)`, window starts in seconds.
        ends_s: float array `(n_windows,)`, window ends in seconds.
        probabilities: float array `(n_windows, n_classes)`.
        classes: class names, the columns of `probabilities`.
        duration_s: length of the signal the windows cover.
    """

    starts_s: np.ndarray
    ends_s: np.ndarray
    probabilities: np.ndarray
    classes: list[str]
    duration_s: float

    @property
    def centres_s(self) -> np.ndarray:
        return (self.starts_s + self.ends_s) / 2

    def af_probability(self) -> np.ndarray:
        """P(AF) of each window `(n_windows,)`; raises ValueError if the model has no class `A`."""
        if AF_LABEL not in self.classes:
            raise ValueError(f"the model's classes {self.classes} have no {AF_LABEL!r} (atrial fibrillation): episodes need an AF model")
        return self.probabilities[:, self.classes.index(AF_LABEL)]


@dataclasses.dataclass(frozen=True)
class RecordEpisodes:
    """The episodes of one record, covering it from 0 to `n_samples / fs` without gaps or overlaps.

    Attributes:
        record_name: the record's name.
        lead: the lead the episodes come from.
        fs: sampling rate (Hz) of the record.
        n_samples: its length in samples.
        episodes: the episodes, in time order.
    """

    record_name: str
    lead: str | None
    fs: float
    n_samples: int
    episodes: list[Episode]

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def af_episodes(self) -> list[Episode]:
        return [e for e in self.episodes if e.label == AF_LABEL]

    @property
    def af_burden(self) -> float:
        """Share of the record's time in AF, 0 to 1."""
        return sum(e.end_s - e.start_s for e in self.af_episodes()) / self.duration_s

    @property
    def longest_af_s(self) -> float:
        return max((e.end_s - e.start_s for e in self.af_episodes()), default=0.0)

    @property
    def record_class(self) -> str:
        """CPSC 2021 record class: `non-AF`, `persistent` (AF throughout) or `paroxysmal`."""
        af = self.af_episodes()
        if not af:
            return RECORD_CLASSES[0]
        return RECORD_CLASSES[1] if len(self.episodes) == 1 else RECORD_CLASSES[2]

    def af_endpoints(self) -> np.ndarray:
        """AF episodes as `[onset, end]` sample indices, int array `(n_af, 2)` (the CPSC 2021 answer format)."""
        rows = [[round(e.start_s * self.fs), min(round(e.end_s * self.fs), self.n_samples - 1)] for e in self.af_episodes()]
        return np.asarray(rows, dtype=int).reshape(-1, 2)


def iter_window_probabilities(
    classifier, pieces: Iterable[np.ndarray], fs: float, *, lead: str = "lead", params: EpisodeParams = EpisodeParams()
) -> Iterator[tuple[float, float, np.ndarray]]:
    """Class probabilities of overlapping windows over a stream of signal pieces.

    Windows start every `hop_s` seconds; the last window ends at the end of
    the signal (it may overlap the one before more than the others do); a
    signal shorter than a window is one window. Each window is preprocessed
    on its own (:meth:`RhythmClassifier.prepare`), as the model's training
    records were: its normalisation, and the RR channel of a model with one
    (from the window's own beats, so the intervals at its edges may differ
    from those of the whole record). At most one window plus one piece of samples and
    `batch_windows` windows are held at a time.

    Args:
        classifier: a loaded single-lead :class:`~ecgrhythm.inference.classifier.RhythmClassifier`.
        pieces: consecutive pieces of one lead, arrays `(n_i,)` or `(n_i, 1)` in mV.
        fs: sampling rate in Hz.
        lead: the lead's name.
        params: window length, hop and batch size.

    Yields:
        `(start_s, end_s, probabilities)` per window, `probabilities` of shape `(n_classes,)`.
    """
    window, hop = max(1, round(params.window_s * fs)), max(1, round(params.hop_s * fs))
    buffer, offset, next_start, pending = np.zeros(0, np.float32), 0, 0, []

    def flush():
        if pending:
            # the episode settings were fitted on one network's own probabilities
            probs = classifier.predict_proba([s for _, _, s in pending], calibrated=False, networks=params.networks)
            yield from ((a / fs, b / fs, p) for (a, b, _), p in zip(pending, probs))
            pending.clear()

    def add(a, b):
        record = EcgRecord(np.ascontiguousarray(buffer[a - offset : b - offset, None]), float(fs), (lead,), f"window {a / fs:.1f}-{b / fs:.1f} s")
        pending.append((a, b, classifier.prepare(record)))

    for piece in pieces:
        buffer = np.concatenate([buffer, np.asarray(piece, dtype=np.float32).reshape(-1)])
        while next_start + window <= offset + len(buffer):
            add(next_start, next_start + window)
            next_start += hop
            if len(pending) >= params.batch_windows:
                yield from flush()
        drop = max(0, min(next_start, offset + len(buffer) - window) - offset)  # keep a window's worth for the tail
        buffer, offset = buffer[drop:], offset + drop
    total = offset + len(buffer)
    if total > 0 and (next_start == 0 or next_start - hop + window < total):
        add(max(0, total - window), total)
    yield from flush()


def collect_windows(stream: Iterable[tuple[float, float, np.ndarray]], classes, duration_s: float) -> WindowProbabilities:
    """Gather the rows of :func:`iter_window_probabilities` (a few numbers per window) into arrays."""
    rows = list(stream)
    starts = np.array([r[0] for r in rows], dtype=float)
    ends = np.array([r[1] for r in rows], dtype=float)
    probs = np.array([r[2] for r in rows], dtype=float).reshape(len(rows), len(classes))
    return WindowProbabilities(starts, ends, probs, list(classes), float(duration_s))


def smooth_af(p_af: np.ndarray, params: EpisodeParams = EpisodeParams()) -> np.ndarray:
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
    log_e = np.stack([-np.logaddexp(0, evidence), -np.logaddexp(0, -evidence)], axis=1)  # (n, 2): non-AF, AF
    stay, switch = math.log1p(-params.switch_prob), math.log(params.switch_prob)
    trans = np.array([[stay, switch], [switch, stay]])
    fwd, bwd = np.empty((n, 2)), np.zeros((n, 2))
    fwd[0] = log_e[0] + math.log(0.5)
    for t in range(1, n):
        fwd[t] = log_e[t] + np.logaddexp(fwd[t - 1, 0] + trans[0], fwd[t - 1, 1] + trans[1])
    for t in range(n - 2, -1, -1):
        nxt = bwd[t + 1] + log_e[t + 1]
        bwd[t] = np.logaddexp(trans[:, 0] + nxt[0], trans[:, 1] + nxt[1])
    post = fwd + bwd
    return 1.0 / (1.0 + np.exp(post[:, 0] - post[:, 1]))


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


def refine_boundaries(segments, read_signal: Callable[[int, int], np.ndarray], fs: float, n_samples: int, params: EpisodeParams = EpisodeParams()):
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


def episodes_from_windows(
    windows: WindowProbabilities,
    read_signal,
    fs: float,
    n_samples: int,
    *,
    record_name: str = "",
    lead: str | None = None,
    params: EpisodeParams = EpisodeParams(),
) -> RecordEpisodes:
    """Episodes of a record from its window probabilities (see the module docstring).

    Each stretch is labelled `A` (AF) or, otherwise, the most probable other
    class on average over the windows centred in it; its probability is the
    mean probability of that label over those windows (the nearest window if none is centred in it).

    Args:
        windows: from :func:`collect_windows`.
        read_signal: `read_signal(a, b)` returns samples `a:b` of the lead `(b - a,)`, for beats near changes.
        fs: sampling rate in Hz.
        n_samples: the record's length in samples.
    """
    posterior = smooth_af(windows.af_probability(), params)
    stretches = refine_boundaries(af_segments(windows, posterior), read_signal, fs, n_samples, params)
    if sum(b - a for a, b, is_af in stretches if is_af) >= params.persistent_burden * n_samples / fs:
        stretches = [(0.0, n_samples / fs, True)]
    centres, probs, classes = windows.centres_s, windows.probabilities, windows.classes
    af = classes.index(AF_LABEL)
    episodes = []
    for a, b, is_af in stretches:
        inside = (centres >= a) & (centres < b)
        rows = probs[inside] if inside.any() else probs[[int(np.argmin(np.abs(centres - (a + b) / 2)))]]
        mean = rows.mean(axis=0)
        if is_af:
            label = AF_LABEL
        else:
            mean_other = mean.copy()
            mean_other[af] = -1.0
            label = classes[int(np.argmax(mean_other))]
        episodes.append(Episode(float(a), float(b), label, float(mean[classes.index(label)])))
    return RecordEpisodes(record_name, lead, float(fs), int(n_samples), episodes)


def record_episodes(classifier, record: EcgRecord, lead=None, params: EpisodeParams = EpisodeParams(), *, piece_s: float = 600.0) -> RecordEpisodes:
    """Episodes of one in-memory record, on one lead (see :meth:`RhythmClassifier.choose_lead`).

    The lead is fed to :func:`iter_window_probabilities` in pieces of
    `piece_s` seconds, as a streamed record is (:func:`stream_episodes`).

    Raises:
        RecordError: `lead` is not in the record.
        ValueError: the model takes several leads, has a fixed input length or has no AF class.
    """
    _check_single_lead(classifier)
    one, name = classifier.choose_lead(record, lead)
    signal = one.signal[:, 0]
    step = max(1, round(piece_s * one.fs))
    pieces = (signal[i : i + step] for i in range(0, len(signal), step))
    return _episodes(classifier, pieces, lambda a, b: signal[a:b], one.fs, one.n_samples, record.record_name, name, params)


def stream_episodes(classifier, stream, lead=None, params: EpisodeParams = EpisodeParams(), *, piece_s: float = 600.0) -> RecordEpisodes:
    """Episodes of a long WFDB record read in pieces (:func:`ecgrhythm.inference.long_records.open_long_record`), in bounded memory.

    The same windows and boundaries as :func:`record_episodes` on the record
    read whole: the lead is read `piece_s` seconds at a time, and the stretch
    around each change of rhythm again when its beats are placed.

    Args:
        stream: an open :class:`~ecgrhythm.records.WfdbStream`.

    Raises:
        RecordError: `lead` is not in the record, or a piece cannot be read.
        ValueError: the model takes several leads, has a fixed input length or has no AF class.
    """
    _check_single_lead(classifier)
    index = chosen_lead(stream.sig_name, lead, 1, model_leads=classifier.preprocess_.leads, source=stream.header)
    n, step = stream.n_samples, max(1, round(piece_s * stream.fs))

    def read(a, b):
        return stream.read(a, b, [index])[:, 0]

    pieces = (read(i, min(n, i + step)) for i in range(0, n, step))
    return _episodes(classifier, pieces, read, stream.fs, n, stream.record_name, stream.sig_name[index], params)


def _check_single_lead(classifier):
    """Refuse a model that cannot find episodes: several leads, or a fixed input length."""
    if classifier.n_leads_ != 1:
        raise ValueError(f"episodes need a single-lead model; this one takes {classifier.n_leads_} leads")
    classifier.require_whole_records("finding episodes")


def _episodes(classifier, pieces, read_signal, fs, n_samples, record_name, lead, params) -> RecordEpisodes:
    """The three steps of the module docstring on a lead given as consecutive `pieces` and random access `read_signal(a, b)`."""
    stream = iter_window_probabilities(classifier, pieces, fs, lead=lead, params=params)
    windows = collect_windows(stream, classifier.classes_, n_samples / fs)
    return episodes_from_windows(windows, read_signal, fs, n_samples, record_name=record_name, lead=lead, params=params)
