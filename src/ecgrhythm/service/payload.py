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


def episodes_payload(classifier, record: EcgRecord, lead=None) -> dict:
    """`{"episodes": [...], "af_burden": share}` of :func:`ecgrhythm.episodes.finder.record_episodes`, or `None`s for
    a model that cannot find AF episodes (several leads, or no `A` class)."""
    from ecgrhythm.episodes.finder import AF_LABEL, record_episodes

    if classifier.n_leads_ != 1 or AF_LABEL not in classifier.classes_:
        return {"episodes": None, "af_burden": None}
    found = record_episodes(classifier, record, lead)
    return {
        "episodes": [
            {"start_s": round(e.start_s, 3), "end_s": round(e.end_s, 3), "label": e.label, "probability": round(e.probability, 4)}
            for e in found.episodes
        ],
        "af_burden": round(found.af_burden, 4),
    }
