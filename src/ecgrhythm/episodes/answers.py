"""One answer per record: the label of a record longer than the networks' training length follows its AF episodes.

The networks were trained and calibrated on whole CinC 2017 records of 9 to 61 s and take at most
:func:`training_length_s` seconds in one piece (the longest batch bucket: 65 s for the shipped model). A longer
record is classified in chunks whose probabilities are averaged by length, so AF that covers part of it is
diluted: on the cpsc2021 sample a record 66 % in AF came out `O` (P(A) = 0.26) and one in persistent AF `N`,
while the episode finder (:mod:`ecgrhythm.episodes.finder`) found the AF. For such a record the answer a
clinician needs is whether, where and how much AF there is, so its record-level answer is taken from its
episodes, by one rule:

- the record's AF burden and CPSC 2021 class (`non-AF`, `paroxysmal`, `persistent`) are those of its episodes
  (:class:`~ecgrhythm.episodes.finder.RecordEpisodes`, the `episodes --summary` row of the same record);
- its label is `A` when its class is paroxysmal or persistent (its episodes hold AF), else the most probable of
  the other classes by the whole-record probabilities;
- its probabilities stay the networks' over the whole record (calibrated, as for any record): a label `A` may
  then have a small P(A) (AF in part of the record), and a non-AF record may have its largest probability on `A`.
  The class says which rule gave the label.

A record at or under the training length (every CinC 2017 record) keeps the networks' label and probabilities,
with no burden or class: the networks were made for exactly such records. A model that cannot find episodes
(several leads, no `A` class, or a fixed input length) or gives several labels per record answers every record
with its networks.

:class:`LongRecordAnswer` is the rule as the stream of :func:`~ecgrhythm.inference.streaming.classify_files` takes
it (`long_records=`), so `ecgrhythm classify` and the service give the answer of `ecgrhythm episodes`.

Example:
    >>> import ecgrhythm
    >>> from ecgrhythm.episodes.answers import LongRecordAnswer
    >>> from ecgrhythm.inference.streaming import classify_files
    >>> clf = ecgrhythm.RhythmClassifier.load()
    >>> prediction, failures = classify_files(
    ...     clf, ["../shared/data/cpsc2021-sample/data_101_8.hea", "../shared/data/cinc2017/A00004.hea"], long_records=LongRecordAnswer(clf)
    ... )
    >>> prediction.labels, prediction.record_class
    (['A', 'A'], ['paroxysmal', None])
    >>> round(prediction.af_burden[0], 4), prediction.probabilities[0].round(2)   # the networks' P(A) is 0.26
    (0.6598, array([0.15, 0.26, 0.58, 0.  ]))
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ecgrhythm.episodes.finder import RecordEpisodes, record_episodes, stream_episodes
from ecgrhythm.episodes.params import AF_LABEL, DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.records import EcgRecord
from ecgrhythm.scoring.episodes import RECORD_CLASSES

__all__ = ["RecordAnswer", "LongRecordAnswer", "record_answer", "training_length_s", "finds_episodes"]


def training_length_s(classifier) -> float:
    """The longest record (seconds) the networks take in one piece, as they took the training records.

    The longest batch bucket (`classifier.buckets_[-1]` samples at the model's rate): 65 s for the shipped
    model, over the longest CinC 2017 record (61 s), so every training record was classified whole.
    """
    return classifier.buckets_[-1] / classifier.preprocess_.fs


def finds_episodes(classifier) -> bool:
    """Whether `classifier` can find AF episodes: one lead, an `A` class, whole records (no fixed input length)."""
    return classifier.n_leads_ == 1 and AF_LABEL in classifier.classes_ and classifier.preprocess_.fixed_length_s is None


@dataclasses.dataclass(frozen=True)
class RecordAnswer:
    """The record-level answer of a long record (see the module docstring).

    Attributes:
        label: `A` when the episodes hold AF, else the most probable other class.
        af_burden: share of the record's time in AF episodes, 0 to 1.
        record_class: CPSC 2021 class of the record: `non-AF`, `paroxysmal` or `persistent`.
        episodes: the :class:`~ecgrhythm.episodes.finder.RecordEpisodes` they come from.
    """

    label: str
    af_burden: float
    record_class: str
    episodes: RecordEpisodes


def record_answer(probabilities: np.ndarray, classes, found: RecordEpisodes) -> RecordAnswer:
    """The rule of the module docstring: a record's label from its episodes and whole-record probabilities.

    Args:
        probabilities: float array `(n_classes,)`, the record's probabilities, columns `classes`.
        classes: the model's classes, with `A`.
        found: the record's episodes.

    Returns:
        The record's :class:`RecordAnswer`.
    """
    classes = list(classes)
    if found.record_class != RECORD_CLASSES[0]:
        label = AF_LABEL
    else:
        others = np.asarray(probabilities, dtype=float).copy()
        others[classes.index(AF_LABEL)] = -np.inf
        label = classes[int(np.argmax(others))]
    return RecordAnswer(label, found.af_burden, found.record_class, found)


class LongRecordAnswer:
    """The answer of records longer than the networks' training length, from their episodes (the module's rule).

    What :func:`~ecgrhythm.inference.streaming.classify_files` takes as `long_records=`.

    Args:
        classifier: a loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier`.
        params: the episode finder's settings.

    Attributes:
        after_s: records longer than this many seconds are answered from their episodes
            (:func:`training_length_s`; infinite for a model that cannot find episodes, or gives several labels
            per record, whose labels the rule does not make).
    """

    def __init__(self, classifier, params: EpisodeParams = DEFAULT_PARAMS):
        self.classifier = classifier
        self.params = params
        answers = finds_episodes(classifier) and not classifier.architecture_.multilabel
        self.after_s = training_length_s(classifier) if answers else math.inf

    def applies(self, duration_s: float) -> bool:
        """Whether a record of `duration_s` seconds is answered from its episodes."""
        return duration_s > self.after_s

    def __call__(self, source, probabilities: np.ndarray, *, lead=None, progress=None) -> RecordAnswer:
        """The answer of one long record.

        Args:
            source: the record read whole (an :class:`~ecgrhythm.records.EcgRecord`), or an open stream of it
                (:func:`~ecgrhythm.records.long_records.open_long_record`).
            probabilities: float array `(n_classes,)`, its whole-record probabilities.
            lead: the lead to find the episodes on (as the episode finder takes it).
            progress: `progress(done_s, total_s)` as the episode finder takes it.
        """
        find = record_episodes if isinstance(source, EcgRecord) else stream_episodes
        found = find(self.classifier, source, lead, self.params, progress=progress)
        return record_answer(probabilities, self.classifier.classes_, found)
