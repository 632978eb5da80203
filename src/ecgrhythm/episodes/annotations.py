"""Reading rhythm annotations: AF episodes of WFDB records from their `.atr` files.

Rhythm changes are annotations whose aux note names the new rhythm, as in
the CPSC 2021 and MIT-BIH AF data: `(AFIB` or `(AFL` starts AF, any other
rhythm note (`(N`, ...) ends it. The record class comes from the header
comment (`non atrial fibrillation`, `persistent atrial fibrillation`,
`paroxysmal atrial fibrillation`), or else from the episodes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ecgrhythm.records import RecordError
from ecgrhythm.scoring.episodes import RECORD_CLASSES

__all__ = ["RhythmAnnotations", "read_rhythm_annotations", "AF_NOTES"]

AF_NOTES = ("(AFIB", "(AFL")
_HEADER_CLASSES = {"non atrial fibrillation": 0, "persistent atrial fibrillation": 1, "paroxysmal atrial fibrillation": 2}


@dataclasses.dataclass(frozen=True)
class RhythmAnnotations:
    """The AF truth of one record.

    Attributes:
        record_name: the record's name.
        fs: sampling rate in Hz.
        n_samples: the record's length.
        samples: int array `(n_annotations,)`, the sample of every annotation
            (beats and rhythm marks: the CPSC 2021 scorer's `beat_loc`).
        af_starts: int array `(n_episodes,)`, indices into `samples` of AF onset marks.
        af_ends: int array `(n_episodes,)`, indices into `samples` of AF end marks.
        record_class: 0 (non-AF), 1 (persistent) or 2 (paroxysmal), see `RECORD_CLASSES`.
    """

    record_name: str
    fs: float
    n_samples: int
    samples: np.ndarray
    af_starts: np.ndarray
    af_ends: np.ndarray
    record_class: int

    def af_intervals(self) -> np.ndarray:
        """AF episodes as `[onset, end]` samples, int array `(n_episodes, 2)`."""
        return np.stack([self.samples[self.af_starts], np.minimum(self.samples[self.af_ends], self.n_samples - 1)], axis=1).reshape(-1, 2)

    @property
    def class_name(self) -> str:
        return RECORD_CLASSES[self.record_class]


def read_rhythm_annotations(path, extension: str = "atr") -> RhythmAnnotations:
    """Read the rhythm annotations beside a WFDB header.

    Args:
        path: the record's `.hea` file (or its path without extension).
        extension: annotation file extension.

    Raises:
        RecordError: the header or annotation file is missing, unreadable or damaged (no
            annotations, samples out of order or outside the record, no signal length).
    """
    base = Path(path).with_suffix("") if Path(path).suffix.lower() == ".hea" else Path(path)
    ann_file = base.with_name(f"{base.name}.{extension}")
    if not ann_file.is_file():
        raise RecordError(ann_file, f"no .{extension} annotation file beside the header: episode evaluation needs rhythm annotations")
    import wfdb

    try:
        header = wfdb.rdheader(str(base))
        ann = wfdb.rdann(str(base), extension)
    except Exception as exc:
        raise RecordError(ann_file, f"cannot read the annotations ({type(exc).__name__}: {exc})") from None
    samples = np.asarray(ann.sample, dtype=int)
    if samples.size == 0:
        raise RecordError(ann_file, "the annotation file holds no annotations: episode evaluation needs its beats and rhythm notes")
    if header.sig_len is None or header.fs is None:
        raise RecordError(base.with_suffix(".hea"), "the header declares no signal length or sampling rate: add them to the record line")
    n_samples = int(header.sig_len)
    if samples.min() < 0 or samples.max() > n_samples or np.any(np.diff(samples) < 0):
        raise RecordError(ann_file, f"the annotations are not sorted sample numbers within the record's {n_samples} samples: the file is damaged")
    notes = [(note or "").strip() for note in (ann.aux_note or [""] * len(samples))]
    starts, ends, in_af = [], [], False
    for i, note in enumerate(notes):
        if note in AF_NOTES and not in_af:
            starts.append(i)
            in_af = True
        elif note.startswith("(") and note not in AF_NOTES and in_af:
            ends.append(i)
            in_af = False
    if in_af:
        ends.append(len(samples) - 1)
    comments = " ".join(header.comments or []).lower()
    classes = [c for text, c in _HEADER_CLASSES.items() if text in comments]
    if classes:
        record_class = classes[0]
    elif not starts:
        record_class = 0
    else:
        whole = len(starts) == 1 and samples[starts[0]] == 0 and samples[ends[0]] >= n_samples - 1
        record_class = 1 if whole else 2
    return RhythmAnnotations(
        base.name, float(header.fs), n_samples, samples, np.asarray(starts, dtype=int), np.asarray(ends, dtype=int), record_class
    )
