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
from ecgrhythm.records import EcgRecord

__all__ = ["WindowProbabilities", "iter_window_probabilities", "collect_windows"]


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
            probs = classifier.predict_prepared([s for _, _, s in pending], calibrated=False, networks=params.networks)
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
