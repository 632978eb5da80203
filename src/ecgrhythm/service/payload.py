"""Parts of the service's classification response that need no web framework: the signal to draw, the AF episodes and
the picture of a long record's rhythm."""

from __future__ import annotations

import base64
import logging

import numpy as np

from ecgrhythm.records import EcgRecord

__all__ = ["display_signal", "episodes_payload", "picture_payload", "DISPLAY_FS", "MAX_DISPLAY_VALUES", "MAX_PICTURE_BYTES"]

logger = logging.getLogger(__name__)

DISPLAY_FS = 250.0
MAX_DISPLAY_VALUES = 2_000_000
MAX_PICTURE_BYTES = 500_000  # a PNG over this is left out of the response (the pictures are some 60 KB)


def display_signal(record: EcgRecord) -> dict:
    """The record in mV for drawing: at most 250 Hz and about 2 million values in all."""
    from ecgrhythm.preprocessing.pipeline import resample

    budget = MAX_DISPLAY_VALUES / (record.n_leads * record.duration_s)
    target = min(record.fs, DISPLAY_FS, budget)
    values = record.signal if target >= record.fs else resample(record.signal, record.fs, target)
    fs = len(values) / record.duration_s if values is not record.signal else record.fs
    return {"fs": round(float(fs), 6), "leads": list(record.sig_name), "values": np.round(values.T.astype(np.float64), 4).tolist()}


def episodes_payload(classifier, record: EcgRecord, probabilities: np.ndarray, *, lead=None):
    """The record-level answer and the AF episodes of one record read whole (all its leads; `lead` as the model takes it).

    Returns:
        `(payload, found)`: `payload` is `{"label", "episodes", "af_burden", "record_class"}`, with the episodes of
        :func:`ecgrhythm.episodes.leads.find_episodes` (the lead chosen per stretch of a long record), each with its
        `lead`, and their AF burden (`None`s for a model that cannot find
        AF episodes: several leads, no `A` class), and the label and `record_class` of
        :class:`~ecgrhythm.episodes.answers.LongRecordAnswer`, as `ecgrhythm classify` gives them (for a record the
        rule answers from its episodes, `A` when they hold AF, else the most probable other class, with its CPSC
        2021 class; for the others the most probable class of `probabilities`, its whole-record probabilities
        `(n_classes,)`, with `record_class` `None`); `found` is the :class:`~ecgrhythm.episodes.finder.RecordEpisodes`
        (`None` without episodes), for :func:`picture_payload`.
    """
    from ecgrhythm.episodes.answers import LongRecordAnswer, finds_episodes
    from ecgrhythm.episodes.leads import LeadEpisodes, find_episodes

    label = classifier.labels_from_proba(probabilities[None])[0]
    if not finds_episodes(classifier):
        return {"label": label, "episodes": None, "af_burden": None, "record_class": None}, None
    rule = LongRecordAnswer(classifier)
    found = find_episodes(classifier, record, lead, per_stretch=rule.applies(record.duration_s))  # as `ecgrhythm episodes`
    answer = rule.decide(probabilities, found)
    found = found if answer is None else answer.episodes  # they agree with the label
    payload = {
        "label": label if answer is None else answer.label,
        "episodes": [
            {
                "start_s": round(e.start_s, 3),
                "end_s": round(e.end_s, 3),
                "label": e.label,
                "probability": round(e.probability, 4),
                "lead": found.episode_lead(e) if isinstance(found, LeadEpisodes) else found.lead,
            }
            for e in found.episodes
        ],
        "af_burden": round(found.af_burden, 4),
        "record_class": answer.record_class if answer is not None and rule.applies(record.duration_s) else None,
    }
    return payload, found


def picture_payload(classifier, found, record: EcgRecord) -> str | None:
    """The picture of `ecgrhythm episodes --plot` (:func:`ecgrhythm.episodes.plot.plot_png`) of a record the networks
    do not answer alone (one longer than their training length, :class:`~ecgrhythm.episodes.answers.LongRecordAnswer`),
    as a `data:image/png;base64,...` URL; `None` for the others, without episodes, or when the PNG would be over
    `MAX_PICTURE_BYTES`.

    The drawing takes about a second whatever the record's length (the strip of its episodes and 8 s of ECG; matplotlib
    is imported then, never for short records). The page's Content-Security-Policy takes `data:` images.
    """
    from ecgrhythm.episodes.answers import LongRecordAnswer

    if found is None or not LongRecordAnswer(classifier).applies(record.duration_s):
        return None
    from ecgrhythm.episodes.plot import plot_png

    png = plot_png(found, record)
    if len(png) > MAX_PICTURE_BYTES:
        logger.warning("%s: its picture is %d bytes, over %d: left out of the response", record.record_name, len(png), MAX_PICTURE_BYTES)
        return None
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
