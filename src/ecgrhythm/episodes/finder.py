"""Rhythm episodes of long records: AF onsets and ends to the beat, AF burden and record class.

With `EpisodeParams(method="windows")`, three steps, each usable on its own so that long records can be streamed:

1. :func:`~ecgrhythm.episodes.windows.iter_window_probabilities` runs overlapping windows (10 s, hop
   `EpisodeParams.hop_s`) of a stream of signal pieces through a loaded
   :class:`~ecgrhythm.inference.classifier.RhythmClassifier`: class probabilities over
   time, one row per window, held only a batch at a time.
2. :func:`~ecgrhythm.episodes.boundaries.smooth_af` is a two-state (AF / non-AF) hidden Markov model over the
   windows' AF probabilities: forward-backward gives the posterior of AF at
   each window centre, so a rhythm lasts unless the evidence against it does.
3. :func:`~ecgrhythm.episodes.boundaries.refine_boundaries` places each change of state on the beat: R peaks
   are detected (wfdb's XQRS) only in a stretch around the change, and the
   change moves to the beat that best splits regular from irregular RR
   intervals. AF episodes shorter than `min_af_beats` beats (5, the CPSC 2021
   definition) are dropped.

By default (`EpisodeParams(method="beats")`) steps 2 and 3 are replaced by a decision per beat
(:mod:`ecgrhythm.episodes.beats`): every beat's AF log-odds from the R-R tagger (:mod:`ecgrhythm.episodes.rr_tagger`),
the P waves before its QRS (:mod:`ecgrhythm.episodes.atrial`) and the windows' AF probability at it, combined by a
small logistic model, then Viterbi over the beats. Leaving one patient out on the cpsc2021 sample, and on joined CinC
2017 records, it scores higher than the windows method by the CPSC 2021 score and the boundary F1; the windows method
has the lower AF burden error and the higher AF F1 per second (`docs/results/cpsc2021-episodes/README.md`).

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

The `EpisodeParams` defaults were fitted on the 18 records of the cpsc2021 sample: the beats method's blend and
settings with the shipped network, the windows method's settings with an earlier one;
`docs/results/cpsc2021-episodes/README.md` says how, and what each shipped network scores with them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ecgrhythm.episodes.beats import beat_stretches, record_beats
from ecgrhythm.episodes.boundaries import af_segments, refine_boundaries, smooth_af
from ecgrhythm.episodes.params import AF_LABEL, DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.episodes.windows import WindowProbabilities, collect_windows, iter_window_probabilities
from ecgrhythm.inference.long_records import piece_samples, reported, stream_columns
from ecgrhythm.records import EcgRecord
from ecgrhythm.scoring.episodes import RECORD_CLASSES

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


@dataclasses.dataclass(frozen=True)
class Episode:
    """One stretch of one rhythm: `[start_s, end_s)` seconds from the record start."""

    start_s: float
    end_s: float
    label: str
    probability: float


@dataclasses.dataclass(frozen=True)
class RecordEpisodes:
    """The episodes of one record, covering it from 0 to `n_samples / fs` without gaps or overlaps.

    What :func:`record_episodes` and :func:`stream_episodes` return.

    Attributes:
        record_name: the record's name.
        lead: the lead the episodes come from.
        fs: sampling rate (Hz) of the record.
        n_samples: its length in samples.
        episodes: the :class:`Episode` stretches, in time order; each has `start_s`, `end_s`, `label` (a
            class of the model, `A` for AF) and `probability` (the mean probability of that label over the
            windows in it).

    Example:
        >>> import ecgrhythm
        >>> clf = ecgrhythm.RhythmClassifier.load()
        >>> record = ecgrhythm.read_record("../shared/data/cpsc2021-sample/data_101_6.hea")  # paroxysmal AF, 112 s
        >>> found = ecgrhythm.record_episodes(clf, record)
        >>> [(round(e.start_s, 1), round(e.end_s, 1), e.label) for e in found.episodes]
        [(0.0, 15.8, 'O'), (15.8, 29.1, 'A'), (29.1, 55.4, 'O'), (55.4, 80.1, 'A'), (80.1, 106.7, 'N'), (106.7, 111.8, 'A')]
        >>> round(found.af_burden, 2), round(found.longest_af_s, 1), found.record_class
        (0.39, 24.7, 'paroxysmal')
        >>> found.af_endpoints()  # [onset, end] samples of each AF episode, at 200 Hz (annotated: 3132-5639, 8468-9100, 11121-16050, 21303-22354)
        array([[ 3159,  5824],
               [11070, 16019],
               [21330, 22354]])
    """

    record_name: str
    lead: str | None
    fs: float
    n_samples: int
    episodes: list[Episode]

    @property
    def duration_s(self) -> float:
        """The record's duration in seconds."""
        return self.n_samples / self.fs

    def af_episodes(self) -> list[Episode]:
        """The AF episodes (label `A`), in time order."""
        return [e for e in self.episodes if e.label == AF_LABEL]

    @property
    def af_burden(self) -> float:
        """Share of the record's time in AF, 0 to 1."""
        return sum(e.end_s - e.start_s for e in self.af_episodes()) / self.duration_s

    @property
    def longest_af_s(self) -> float:
        """The longest AF episode in seconds (0 without AF)."""
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


def episodes_from_windows(
    windows: WindowProbabilities,
    read_signal,
    fs: float,
    n_samples: int,
    *,
    record_name: str = "",
    lead: str | None = None,
    params: EpisodeParams = DEFAULT_PARAMS,
    beats: np.ndarray | None = None,
    beat_model=None,
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
        beats: with `params.method == "beats"`, the record's beats if already found (default: found by
            :func:`~ecgrhythm.episodes.beats.record_beats`).
        beat_model: with `params.method == "beats"`, a :class:`~ecgrhythm.episodes.beats.BeatModel` (default: the shipped one).
    """
    if params.method == "beats":
        beats = record_beats(read_signal, fs, n_samples) if beats is None else beats
        stretches = beat_stretches(windows, read_signal, beats, fs, n_samples, params, beat_model)
    else:
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


def record_episodes(
    classifier, record: EcgRecord, lead=None, params: EpisodeParams = DEFAULT_PARAMS, *, piece_s: float = 600.0, progress=None
) -> RecordEpisodes:
    """The rhythm episodes of one record read into memory: AF onsets and ends to the beat, and the AF burden.

    The steps of the module docstring on one lead: overlapping windows classified by the networks (their own
    probabilities, uncalibrated), then AF decided beat by beat from the R-R tagger, the P waves and those windows (or, with
    `method="windows"`, a two-state hidden Markov model over the windows and each change moved onto a beat). The lead is fed to the windows in pieces of `piece_s` seconds,
    as a streamed record is (:func:`stream_episodes`), so the answer is the same either way.

    Args:
        classifier: a loaded single-lead :class:`~ecgrhythm.inference.classifier.RhythmClassifier` that
            takes whole records and has an AF class (`A`), such as the shipped model.
        record: the record (:func:`ecgrhythm.read_record`), of any length up to 24 h.
        lead: the lead to use, a name or a 0-based index (default: lead I, else the first, unless it is unusable and another is clean; see
            :meth:`RhythmClassifier.choose_lead`).
        params: the finder's settings (:class:`EpisodeParams`; the defaults were fitted on the cpsc2021 sample).
        piece_s: seconds of signal fed to the windows at a time (memory, not results).
        progress: `progress(done_s, total_s)`, called as each piece is through the windows (seconds of the
            record done, its length), as the command's progress bar takes it; `None` reports nothing.

    Returns:
        The record's episodes, covering it from start to end, with its AF burden, longest AF episode,
        CPSC 2021 record class and AF endpoints in samples.

    Raises:
        RecordError: `lead` is not in the record.
        ValueError: the model takes several leads, has a fixed input length or has no AF class.

    Example:
        >>> import ecgrhythm
        >>> clf = ecgrhythm.RhythmClassifier.load()
        >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")   # 30 s, labelled AF
        >>> found = ecgrhythm.record_episodes(clf, record)
        >>> [(e.start_s, e.end_s, e.label) for e in found.episodes], found.af_burden
        ([(0.0, 30.0, 'A')], 1.0)
        >>> over_windows = ecgrhythm.EpisodeParams(method="windows")   # the hidden Markov model over windows
        >>> ecgrhythm.record_episodes(clf, record, params=over_windows).record_class
        'persistent'
    """
    _check_single_lead(classifier)
    one, name = classifier.choose_lead(record, lead)
    signal = one.signal[:, 0]
    step = piece_samples(piece_s, one.fs)
    pieces = (signal[i : i + step] for i in range(0, len(signal), step))
    pieces = reported(pieces, one.fs, one.n_samples, progress)
    return _episodes(classifier, pieces, lambda a, b: signal[a:b], one.fs, one.n_samples, record.record_name, name, params)


def stream_episodes(
    classifier, stream, lead=None, params: EpisodeParams = DEFAULT_PARAMS, *, piece_s: float = 600.0, progress=None
) -> RecordEpisodes:
    """The rhythm episodes of a long WFDB record read in pieces, in bounded memory (a 24 h Holter record, or up to 14 days).

    The same windows and boundaries as :func:`record_episodes` on the record
    read whole: the lead is read `piece_s` seconds at a time for the windows, then again a piece at a time for
    its beats (with `method="windows"`, only the stretch around each change of rhythm, when its beat is placed).

    Args:
        classifier: a loaded single-lead classifier, as for :func:`record_episodes`.
        stream: an open :class:`~ecgrhythm.records.WfdbStream` (:func:`ecgrhythm.records.open_wfdb`, or
            :func:`ecgrhythm.records.long_records.open_long_record`); the caller closes it.
        lead, params, piece_s, progress: as for :func:`record_episodes`.

    Returns:
        The record's episodes, as :func:`record_episodes` gives them.

    Raises:
        RecordError: `lead` is not in the record, or a piece cannot be read.
        ValueError: the model takes several leads, has a fixed input length or has no AF class.

    Example:
        >>> import ecgrhythm
        >>> from ecgrhythm.records import open_wfdb
        >>> clf = ecgrhythm.RhythmClassifier.load()
        >>> header = "../shared/data/cpsc2021-sample/data_101_6.hea"
        >>> with open_wfdb(header) as stream:
        ...     found = ecgrhythm.stream_episodes(clf, stream)
        >>> found == ecgrhythm.record_episodes(clf, ecgrhythm.read_record(header))   # the same as read whole
        True
    """
    _check_single_lead(classifier)
    [index], name = stream_columns(classifier, stream, lead)
    n, step = stream.n_samples, piece_samples(piece_s, stream.fs)

    def read(a, b):
        return stream.read(a, b, [index])[:, 0]

    pieces = reported((read(i, min(n, i + step)) for i in range(0, n, step)), stream.fs, n, progress)
    return _episodes(classifier, pieces, read, stream.fs, n, stream.record_name, name, params)


def _check_single_lead(classifier):
    """Refuse a model that cannot find episodes: several leads, or a fixed input length."""
    if classifier.n_leads_ != 1:
        raise ValueError(f"episodes need a single-lead model; this one takes {classifier.n_leads_} leads")
    classifier.require_whole_records("finding episodes")


def _episodes(classifier, pieces, read_signal, fs, n_samples, record_name, lead, params) -> RecordEpisodes:
    """The steps of the module docstring on a lead given as consecutive `pieces` and random access `read_signal(a, b)`."""
    stream = iter_window_probabilities(classifier, pieces, fs, lead=lead, params=params)
    windows = collect_windows(stream, classifier.classes_, n_samples / fs)
    return episodes_from_windows(windows, read_signal, fs, n_samples, record_name=record_name, lead=lead, params=params)
