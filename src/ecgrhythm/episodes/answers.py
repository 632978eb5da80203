"""One answer per record: a record's label and its AF episodes follow one rule, so they never contradict each other.

The networks were trained and calibrated on whole CinC 2017 records of 9 to 61 s and take at most
:func:`training_length_s` seconds in one piece (the longest batch bucket: 65 s for the shipped model). A longer
record is classified in chunks whose probabilities are averaged by length, so AF that covers part of it is
diluted: on the cpsc2021 sample a record 66 % in AF came out `O` (P(A) = 0.26 with the three networks shipped before the single network; 0.25 with it) and one in persistent AF `N`,
while the episode finder (:mod:`ecgrhythm.episodes.finder`) found the AF. The rule, for a model that finds
episodes and gives one label per record (:func:`finds_episodes`), on records of any length:

- **Longer than the training length: the label follows the episodes.** The record's AF burden and CPSC 2021 class
  (`non-AF`, `paroxysmal`, `persistent`) are those of its episodes (the `episodes --summary` row of the same
  record); its label is `A` when they hold AF, else the most probable of the other classes by the whole-record
  probabilities.
- **At or under it (every CinC 2017 record): the episodes follow the label.** The label is the networks' (the most
  probable class); when the finder disagrees, its episodes are made to agree (:func:`agreeing_episodes`): a record
  labelled `A` in which no AF was found is one AF episode (persistent AF, burden 1) with the record's P(A); in a
  record labelled otherwise, the AF episodes become stretches of its label with its probability.

So the label is `A` exactly when the episodes hold AF, on every record, in `ecgrhythm classify`, `ecgrhythm
episodes` (and its pictures), the service and :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.predict_records`.
The probabilities stay the networks' over the whole record (calibrated, as for any record): a long record labelled
`A` may have a small P(A) (AF in part of it), and a long non-AF record its largest probability on `A`; its class
says which rule gave the label. Only long records get an AF burden and class in `classify`'s table: a short
record's label needs no episodes, so `classify` does not look for them.

Why short records go the networks' way, from `scripts/long_record_rule.py` (all 7,249 CinC 2017 records, in-sample:
the shipped model was trained on them, so the scores only indicate what changes). The networks' labels and the
finder's episodes (the beats method, with its R-R tagger and P waves) disagree on 266 records: on 224 the finder found
AF the networks did not call (40 of them `A` in `REFERENCE.csv`; irregular R-R intervals of "other rhythm" records),
on 42 the networks said `A` and the finder found no AF (30 of them `A`). Letting the episodes decide every record
would change those 266 labels and the CinC 2017 score from 0.8847 to 0.8408; letting an AF episode of at least 20 s
(30 s) overrule the networks would change 163 (145) labels, for a score of 0.8576 (0.8587); only episodes of 40 s or
more (19 records, 6 of them `A`) would leave it near (0.8830). With the windows method the same held (130 records, 0.8847 to 0.8708), and with
the three networks shipped before: 152 records, 0.9162 to 0.8818. Where the two disagree on records
the networks were made for, the networks are mostly right, so they decide, and no CinC 2017 label changes. What it costs: `data_92_12` of the cpsc2021 sample
(49 s, paroxysmal AF in its annotations) is labelled `O` by the networks, and its 14.5 s AF episode is dropped.

A model that cannot find episodes (several leads, no `A` class, or a fixed input length) or gives several labels
per record answers every record with its networks, and its episodes (if any) are left as the finder gives them.

:class:`LongRecordAnswer` is the rule as every route takes it: :func:`~ecgrhythm.inference.streaming.classify_files`
(`long_records=`, which `ecgrhythm classify` and the Ray engine pass), `predict_records` (`long_records=` too), the service
(:mod:`ecgrhythm.service.payload`) and `ecgrhythm episodes` (:meth:`LongRecordAnswer.agreeing`);
:func:`~ecgrhythm.inference.signals.answered_prediction` builds the predictions of every route from its answers.

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
    >>> round(prediction.af_burden[0], 4), prediction.probabilities[0].round(2)   # the networks' P(A) is 0.25
    (0.6484, array([0.14, 0.25, 0.61, 0.  ]))
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ecgrhythm.episodes.finder import Episode, RecordEpisodes
from ecgrhythm.episodes.leads import find_episodes
from ecgrhythm.episodes.params import AF_LABEL, DEFAULT_PARAMS, EpisodeParams
from ecgrhythm.records import EcgRecord
from ecgrhythm.scoring.episodes import RECORD_CLASSES

__all__ = ["RecordAnswer", "LongRecordAnswer", "record_answer", "agreeing_episodes", "training_length_s", "finds_episodes"]


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
    """The record-level answer of a record by the rule (see the module docstring).

    Attributes:
        label: the record's label: `A` exactly when `episodes` hold AF.
        af_burden: share of the record's time in AF episodes, 0 to 1.
        record_class: CPSC 2021 class of the record: `non-AF`, `paroxysmal` or `persistent`.
        episodes: the :class:`~ecgrhythm.episodes.finder.RecordEpisodes` agreeing with `label` (the finder's, or
            made to agree with the networks' label for a record they saw whole).
    """

    label: str
    af_burden: float
    record_class: str
    episodes: RecordEpisodes


def record_answer(
    probabilities: np.ndarray, classes, found: RecordEpisodes, *, whole: bool = False, strong_af_s: float | None = None
) -> RecordAnswer:
    """The rule of the module docstring: a record's label, and the episodes that agree with it.

    Args:
        probabilities: float array `(n_classes,)`, the record's whole-record probabilities, columns `classes`.
        classes: the model's classes, with `A`.
        found: the record's episodes, as the finder gives them.
        whole: the record is no longer than the networks' training length (:func:`training_length_s`), so the
            networks saw it whole, as they saw their training records.
        strong_af_s: for such a record, an AF episode at least this long decides its label against the networks
            (`None`, the rule: never; `scripts/long_record_rule.py` measures what other values would do).

    Returns:
        The record's :class:`RecordAnswer`: its label, and its episodes with their AF burden and class, which agree
        with the label (`A` exactly when they hold AF).
    """
    classes = list(classes)
    probabilities = np.asarray(probabilities, dtype=float)
    holds_af = found.record_class != RECORD_CLASSES[0]
    strong = holds_af and strong_af_s is not None and found.longest_af_s >= strong_af_s
    if whole and not strong:  # the networks' label, and the episodes made to agree with it
        label = classes[int(np.argmax(probabilities))]
        found = agreeing_episodes(found, label, probabilities, classes)
    elif holds_af:
        label = AF_LABEL
    else:
        others = probabilities.copy()
        others[classes.index(AF_LABEL)] = -np.inf
        label = classes[int(np.argmax(others))]
    return RecordAnswer(label, found.af_burden, found.record_class, found)


def agreeing_episodes(found: RecordEpisodes, label: str, probabilities: np.ndarray, classes) -> RecordEpisodes:
    """The episodes of a record made to agree with its label `label` (the networks' for a record they saw whole).

    A record labelled `A` in which no AF was found is AF throughout: one AF episode, with the record's P(A). In a
    record labelled otherwise, its AF episodes become stretches of `label` with the record's probability of it
    (joined to neighbouring stretches of that label). Episodes that agree already are returned unchanged.

    Args:
        found: the record's episodes.
        label: its label.
        probabilities: float array `(n_classes,)`, its whole-record probabilities.
        classes: their columns.
    """
    p = float(probabilities[list(classes).index(label)])
    holds_af = found.record_class != RECORD_CLASSES[0]
    if (label == AF_LABEL) == holds_af:
        return found
    if label == AF_LABEL:
        return dataclasses.replace(found, episodes=[Episode(0.0, found.duration_s, AF_LABEL, p)])
    episodes = []
    for e in found.episodes:
        e = Episode(e.start_s, e.end_s, label, p) if e.label == AF_LABEL else e
        if episodes and episodes[-1].label == e.label:  # joined: the probability weighted by time
            last = episodes.pop()
            weight = (last.end_s - last.start_s, e.end_s - e.start_s)
            e = Episode(last.start_s, e.end_s, e.label, float(np.average([last.probability, e.probability], weights=weight)))
        episodes.append(e)
    return dataclasses.replace(found, episodes=episodes)


class LongRecordAnswer:
    """The rule of the module docstring for one classifier: long records answered from their episodes, the episodes
    of the others made to agree with the networks' label.

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
            source: the record read whole (an :class:`~ecgrhythm.records.EcgRecord` with all its leads), or an open
                stream of it (:func:`~ecgrhythm.records.long_records.open_long_record`).
            probabilities: float array `(n_classes,)`, its whole-record probabilities.
            lead: the lead to find the episodes on (as the episode finder takes it); `None`: chosen per stretch
                (:func:`~ecgrhythm.episodes.leads.find_episodes`).
            progress: `progress(done_s, total_s)` as the episode finder takes it.
        """
        found = find_episodes(self.classifier, source, lead, self.params, progress=progress)  # the lead chosen per stretch
        return record_answer(probabilities, self.classifier.classes_, found)

    def decide(self, probabilities: np.ndarray, found: RecordEpisodes) -> RecordAnswer | None:
        """The rule on a record whose episodes are found already: its label, and its episodes agreeing with it.

        Args:
            probabilities: float array `(n_classes,)`, its whole-record probabilities.
            found: its episodes, as the finder gives them.

        Returns:
            The answer; `None` for a model whose labels the rule does not make (several labels per record).
        """
        if math.isinf(self.after_s):
            return None
        return record_answer(probabilities, self.classifier.classes_, found, whole=not self.applies(found.duration_s))

    def answer(self, record: EcgRecord, probabilities: np.ndarray, lead=None) -> RecordAnswer | None:
        """The answer of a record read whole (all its leads, `lead` as :meth:`RhythmClassifier.choose_lead` takes it), or
        `None` when the rule leaves it the networks' answer (:meth:`applies`): no episodes are found for it then."""
        return self(record, probabilities, lead=lead) if self.applies(record.duration_s) else None

    def agreeing(self, found: RecordEpisodes, record: EcgRecord | None = None) -> RecordEpisodes:
        """The episodes `ecgrhythm episodes` gives: those of the finder for a record the rule answers from them, else
        (a record the networks see whole) made to agree with the networks' label on `record`, its lead read whole."""
        if math.isinf(self.after_s) or self.applies(found.duration_s):
            return found
        if record is None:
            raise ValueError(f"{found.record_name}: a record of {found.duration_s:g} s is answered by the networks: pass it as `record`")
        probabilities = self.classifier.predict_prepared([self.classifier.prepare(record)])[0]
        return self.decide(probabilities, found).episodes
