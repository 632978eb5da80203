"""Parts of the service's classification response that need no web framework: the signal to draw and the AF episodes."""

from __future__ import annotations

import numpy as np

from ecgrhythm.records import EcgRecord

__all__ = ["display_signal", "episodes_payload", "DISPLAY_FS", "MAX_DISPLAY_VALUES"]

DISPLAY_FS = 250.0
MAX_DISPLAY_VALUES = 2_000_000


def display_signal(record: EcgRecord) -> dict:
    """The record in mV for drawing: at most 250 Hz and about 2 million values in all."""
    from ecgrhythm.preprocessing.pipeline import resample

    budget = MAX_DISPLAY_VALUES / (record.n_leads * record.duration_s)
    target = min(record.fs, DISPLAY_FS, budget)
    values = record.signal if target >= record.fs else resample(record.signal, record.fs, target)
    fs = len(values) / record.duration_s if values is not record.signal else record.fs
    return {"fs": round(float(fs), 6), "leads": list(record.sig_name), "values": np.round(values.T.astype(np.float64), 4).tolist()}


def episodes_payload(classifier, record: EcgRecord, probabilities: np.ndarray) -> dict:
    """The record-level answer and the AF episodes of one record (read whole, the lead the model takes).

    `{"label", "episodes", "af_burden", "record_class"}`: the episodes of
    :func:`ecgrhythm.episodes.finder.record_episodes` and their AF burden (`None`s for a model that cannot find
    AF episodes: several leads, no `A` class); the label is that of :mod:`ecgrhythm.episodes.answers`, as
    `ecgrhythm classify` gives it: for a record longer than the networks' training length, `A` when its episodes
    hold AF, else the most probable other class, with `record_class` its CPSC 2021 class; for the others the most
    probable class of `probabilities` (its whole-record probabilities, `(n_classes,)`), with `record_class` `None`.
    """
    from ecgrhythm.episodes.answers import LongRecordAnswer, finds_episodes, record_answer
    from ecgrhythm.episodes.finder import record_episodes

    label = classifier.labels_from_proba(probabilities[None])[0]
    if not finds_episodes(classifier):
        return {"label": label, "episodes": None, "af_burden": None, "record_class": None}
    found = record_episodes(classifier, record)
    record_class = None
    if LongRecordAnswer(classifier).applies(record.duration_s):
        answer = record_answer(probabilities, classifier.classes_, found)
        label, record_class = answer.label, answer.record_class
    return {
        "label": label,
        "episodes": [
            {"start_s": round(e.start_s, 3), "end_s": round(e.end_s, 3), "label": e.label, "probability": round(e.probability, 4)}
            for e in found.episodes
        ],
        "af_burden": round(found.af_burden, 4),
        "record_class": record_class,
    }
