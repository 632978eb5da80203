"""Step 1 of the episode finder: class probabilities of overlapping windows over a stream of signal pieces.

Each window is classified through the classifier (:meth:`~ecgrhythm.inference.classifier.RhythmClassifier.prepare`
and :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.predict_prepared`) with the networks' own
probabilities: a model's calibration, fitted on whole records, is not applied to windows (the HMM's settings
were fitted without one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator

import numpy as np

from ecgrhythm.episodes.params import AF_LABEL, DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.preprocessing.stacked import preprocess_windows
from ecgrhythm.records import EcgRecord

__all__ = ["WindowProbabilities", "iter_window_probabilities", "collect_windows", "prepare_windows"]


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


def iter_window_probabilities(
    classifier, pieces: Iterable[np.ndarray], fs: float, *, lead: str = "lead", params: EpisodeParams = DEFAULT_PARAMS
) -> Iterator[tuple[float, float, np.ndarray]]:
    """Class probabilities of overlapping windows over a stream of signal pieces.

    Windows start every `hop_s` seconds; the last window ends at the end of
    the signal (it may overlap the one before more than the others do); a
    signal shorter than a window is one window. Each window is preprocessed
    on its own (:meth:`RhythmClassifier.prepare`), as the model's training
    records were: its normalisation, and the RR channel of a model with one
    (from the window's own beats, so the intervals at its edges may differ
    from those of the whole record); a batch of windows is prepared at once
    (:func:`prepare_windows`), to the same numbers. At most one window plus one piece of samples and
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
            prepared = prepare_windows(classifier, pending, fs, lead)
            # the episode settings were fitted on one network's own probabilities; a backend that takes any batch runs
            # the whole batch of windows in one call (the same probabilities, fewer calls)
            batch = params.batch_windows if classifier.backend_.any_batch else None
            probs = classifier.predict_prepared(prepared, calibrated=False, networks=params.networks, batch_size=batch)
            yield from ((a / fs, b / fs, p) for (a, b, _), p in zip(pending, probs))
            pending.clear()

    def add(a, b):
        pending.append((a, b, buffer[a - offset : b - offset]))

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


def prepare_windows(classifier, windows, fs: float, lead: str = "lead") -> list[np.ndarray]:
    """The model input of overlapping windows of one lead: for each, what `classifier.prepare` gives for the window as a
    record of its own, bit for bit.

    Windows of one length, each overlapping or meeting the next, that make valid records (finite, long enough) for a
    single-lead model are prepared together from the stretch they cover
    (:func:`~ecgrhythm.preprocessing.stacked.preprocess_windows`); any others one by one through `classifier.prepare`,
    which raises on the first that is no valid record, naming it.

    Args:
        classifier: a loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier`.
        windows: `(start, stop, samples)` of each window, in order: sample indices in the lead and float32 `(stop - start,)`.
        fs: sampling rate in Hz.
        lead: the lead's name.

    Returns:
        float32 arrays `(n_i, classifier.n_channels_)`, one per window.
    """

    def record(a, b, samples):
        return EcgRecord(np.ascontiguousarray(samples[:, None]), float(fs), (lead,), f"window {a / fs:.1f}-{b / fs:.1f} s")

    if not windows:
        return []
    record(*windows[0])  # validated as a record: its length and rate
    first, length = windows[0][0], len(windows[0][2])
    together = classifier.n_leads_ == 1 and all(
        b - a == length == len(w) and w.ndim == 1 and w.dtype == np.float32 and (i == 0 or windows[i - 1][0] <= a <= windows[i - 1][1])
        for i, (a, b, w) in enumerate(windows)
    )
    if together:
        stretch = np.empty((windows[-1][1] - first, 1), np.float32)
        for a, b, w in windows:
            stretch[a - first : b - first, 0] = w
        if np.isfinite(stretch).all():
            starts = [a - first for a, _, _ in windows]
            return list(preprocess_windows(stretch, starts, length, float(fs), classifier.preprocess_))
    return [classifier.prepare(record(*w)) for w in windows]


def collect_windows(stream: Iterable[tuple[float, float, np.ndarray]], classes, duration_s: float) -> WindowProbabilities:
    """Gather the rows of :func:`iter_window_probabilities` (a few numbers per window) into arrays."""
    rows = list(stream)
    starts = np.array([r[0] for r in rows], dtype=float)
    ends = np.array([r[1] for r in rows], dtype=float)
    probs = np.array([r[2] for r in rows], dtype=float).reshape(len(rows), len(classes))
    return WindowProbabilities(starts, ends, probs, list(classes), float(duration_s))
