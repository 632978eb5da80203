"""Distillation: a network trained on a teacher's probabilities beside the labels.

A teacher is one or more sets of class probabilities per record, averaged: out-of-fold CSVs
(`record,fold,true_label,<one column per class>`, as :mod:`ecgrhythm.training.oof` writes them) or
cross-validation folders, whose folds' last-epoch probabilities (`foldK/oof-last.csv`) are read. Out-of-fold
probabilities make an honest teacher: the network that gave a record's probabilities never trained on that record.

Each training record's target becomes `(1 - weight) * its label + weight * the teacher's probabilities`, under
categorical cross-entropy with the run's class weights. A network trained with balanced class weights, as the
teachers were, has the teacher's probabilities as its best answer whatever a record's weight, so the two parts
of the target agree; the validation records are still scored on their labels.

Cross-validating a student on a teacher's out-of-fold probabilities is slightly optimistic: the teacher network
that labelled a training record of fold `k` trained on fold `k`'s records, so some of what those records taught
it reaches the student. Only retraining the teachers within each fold removes that.

Example:
    >>> from ecgrhythm.training.teacher import read_teacher
    >>> teacher = read_teacher(["docs/results/crossval/seed1-lstm128/run"], weight=0.5)
    >>> teacher.classes, len(teacher.probabilities)
    (('N', 'A', 'O', '~'), 7249)
    >>> teacher.targets(["A00001"], [0], ["N", "A", "O", "~"]).round(3)
    array([[0.954, 0.   , 0.046, 0.   ]], dtype=float32)
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np

from ecgrhythm.training.oof import LAST_OOF_FILE, finished_oof, read_oof

__all__ = ["Teacher", "read_teacher"]


@dataclasses.dataclass(frozen=True)
class Teacher:
    """A teacher's probabilities per record, and the share of the training target they take.

    Attributes:
        sources: the files and folders read, as given.
        classes: the probability columns, in order.
        probabilities: record name to its probabilities `(n_classes,)`, averaged over the sources, summing to 1.
        weight: share of the teacher in each target, in (0, 1]; the label has the rest.
    """

    sources: tuple[str, ...]
    classes: tuple[str, ...]
    probabilities: dict
    weight: float

    @property
    def digest(self) -> str:
        """SHA-256 of the probabilities (to 6 decimals, records sorted): a run resumes only with the same teacher."""
        text = "".join(f"{name}," + ",".join(f"{p:.6f}" for p in self.probabilities[name]) + "\n" for name in sorted(self.probabilities))
        return hashlib.sha256(",".join(self.classes).encode() + b"\n" + text.encode()).hexdigest()

    def settings(self) -> dict:
        """What fixes a run trained on this teacher (a resumed run must match): the weight and the probabilities' digest."""
        return {"weight": self.weight, "records": len(self.probabilities), "sha256": self.digest}

    def targets(self, names, labels, classes) -> np.ndarray:
        """Training targets of the records `names` with class indices `labels`: `(len(names), n_classes)` float32.

        Raises:
            ValueError: `classes` are not the teacher's, in its order, or the teacher has no probabilities for a record.
        """
        if tuple(classes) != self.classes:
            raise ValueError(f"the teacher {list(self.sources)} has classes {list(self.classes)}, the training records {list(classes)}")
        missing = [n for n in names if n not in self.probabilities]
        if missing:
            raise ValueError(
                f"the teacher {list(self.sources)} has no probabilities for {len(missing)} training record(s), such as "
                f"{', '.join(missing[:3])}: give a teacher of every training record"
            )
        soft = np.stack([self.probabilities[n] for n in names]) if len(names) else np.zeros((0, len(classes)))
        hard = np.eye(len(classes))[np.asarray(labels, dtype=int)]
        return ((1 - self.weight) * hard + self.weight * soft).astype(np.float32)


def read_teacher(sources, weight: float = 0.5) -> Teacher:
    """Read a teacher: the probabilities of `sources` averaged per record (see the module docstring).

    Args:
        sources: out-of-fold CSV files and cross-validation folders (their folds' `oof-last.csv`, every fold finished).
        weight: share of the teacher in each training target, in (0, 1].

    Returns:
        A :class:`Teacher` of the records every source has.

    Raises:
        ValueError: no source, a weight out of range, a source that is not such a file or folder, sources with other
            classes, or sources with no record in common.
        FileNotFoundError: a source is missing, or a folder's cross-validation is unfinished.
    """
    sources = [Path(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources)]
    if not sources:
        raise ValueError("Invalid argument `sources`: expected at least one out-of-fold CSV or cross-validation folder. Received: []")
    if not 0 < weight <= 1:
        raise ValueError(f"Invalid argument `weight`: expected the teacher's share of the target, in (0, 1]. Received: weight={weight!r}")
    tables = [_read_source(s) for s in sources]
    classes = tables[0][1]
    for source, (_, other) in zip(sources, tables):
        if other != classes:
            raise ValueError(f"{source}: its classes {list(other)} differ from those of {sources[0]} {list(classes)}")
    common = set(tables[0][0]).intersection(*(t[0] for t in tables[1:]))
    if not common:
        raise ValueError(f"the teacher's sources {[str(s) for s in sources]} have no record in common")
    mean = {n: sum(t[0][n] for t in tables) / len(tables) for n in sorted(common)}
    return Teacher(tuple(str(s) for s in sources), classes, {n: p / p.sum() for n, p in mean.items()}, float(weight))


def _read_source(source: Path) -> tuple[dict, tuple[str, ...]]:
    """`({record: probabilities}, classes)` of one out-of-fold CSV or cross-validation folder."""
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such out-of-fold CSV or cross-validation folder")
    names, _, _, probs, classes = finished_oof(source, partial=False, filename=LAST_OOF_FILE) if source.is_dir() else read_oof(source)
    if np.any(probs.sum(axis=1) <= 0):
        raise ValueError(f"{source}: a record's probabilities are all 0")
    return dict(zip(names, probs.astype(np.float64))), tuple(classes)
