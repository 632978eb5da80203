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
import json
from pathlib import Path

import numpy as np

from ecgrhythm.training.folds import FOLDS_FILE, RECIPE_FILE
from ecgrhythm.training.oof import LAST_OOF_FILE, finished_oof, read_oof

__all__ = ["Teacher", "read_teacher"]


@dataclasses.dataclass(frozen=True, eq=False)
class Teacher:
    """A teacher's probabilities per record, and the share of the training target they take.

    Attributes:
        sources: the files and folders read, as given.
        classes: the probability columns, in order.
        probabilities: record name to its probabilities `(n_classes,)`, averaged over the sources, summing to 1.
        labels: record name to the label its sources were scored against.
        weight: share of the teacher in each target, in (0, 1]; the label has the rest.
        class_weighting: how the teacher's networks weighted the classes (`TrainConfig.class_weighting`), from the
            folders' `crossval.json`; None when only CSV files were given (taken to be trained as the student is).
    """

    sources: tuple[str, ...]
    classes: tuple[str, ...]
    probabilities: dict
    labels: dict
    weight: float
    class_weighting: str | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of the probabilities (to 6 decimals, records sorted): a run resumes only with the same teacher."""
        text = "".join(f"{name}," + ",".join(f"{p:.6f}" for p in self.probabilities[name]) + "\n" for name in sorted(self.probabilities))
        return hashlib.sha256(",".join(self.classes).encode() + b"\n" + text.encode()).hexdigest()

    def settings(self) -> dict:
        """What fixes a run trained on this teacher (a resumed run must match): the weight and the probabilities' digest."""
        return {"weight": self.weight, "records": len(self.probabilities), "sha256": self.digest}

    def check(self, names, labels, classes, class_weighting: str) -> None:
        """Refuse to teach records it cannot: those of other classes, labels or class weighting, or records it lacks.

        Args:
            names: the training records' names.
            labels: their class indices `(n,)` into `classes`.
            classes: the training data's classes.
            class_weighting: the student's `TrainConfig.class_weighting`.

        Raises:
            ValueError: what does not match, naming the teacher's sources.
        """
        labels = np.asarray(labels)
        if labels.ndim != 1:
            raise ValueError("a teacher's probabilities train a model of one label per record, not a multi-label one")
        if tuple(classes) != self.classes:
            raise ValueError(f"the teacher {list(self.sources)} has classes {list(self.classes)}, the training records {list(classes)}")
        if self.class_weighting not in (None, class_weighting):
            raise ValueError(
                f"the teacher {list(self.sources)} was trained with class_weighting {self.class_weighting!r}, the student with "
                f"{class_weighting!r}: its probabilities would not agree with the labels' part of the targets"
            )
        missing = [n for n in names if n not in self.probabilities]
        if missing:
            raise ValueError(
                f"the teacher {list(self.sources)} has no probabilities for {len(missing)} training record(s), such as "
                f"{', '.join(missing[:3])}: give a teacher of every training record"
            )
        other = [f"{n} ({self.labels[n]} there, {classes[y]} here)" for n, y in zip(names, labels) if self.labels[n] != classes[y]]
        if other:
            raise ValueError(
                f"the teacher {list(self.sources)} was scored against other labels for {len(other)} record(s), such as {', '.join(other[:3])}"
            )

    def targets(self, names, labels, classes, class_weighting: str = "balanced") -> np.ndarray:
        """Training targets of the records `names` with class indices `labels`: `(len(names), n_classes)` float32.

        Raises:
            ValueError: as :meth:`check`.
        """
        self.check(names, labels, classes, class_weighting)
        soft = np.stack([self.probabilities[n] for n in names]) if len(names) else np.zeros((0, len(classes)))
        hard = np.eye(len(classes))[np.asarray(labels, dtype=int)]
        return ((1 - self.weight) * hard + self.weight * soft).astype(np.float32)


def read_teacher(sources, weight: float = 0.5) -> Teacher:
    """Read a teacher: the probabilities of `sources` averaged per record (see the module docstring).

    Args:
        sources: out-of-fold CSV files and cross-validation folders (their folds' `oof-last.csv`, every fold finished),
            each of the same records.
        weight: share of the teacher in each training target, in (0, 1].

    Returns:
        A :class:`Teacher`.

    Raises:
        ValueError: no source, a weight out of range, a source given twice, a source that is not such a file or folder,
            sources with other classes, records, labels or class weightings.
        FileNotFoundError: a source is missing, or a folder's cross-validation is unfinished.
    """
    sources = [Path(s) for s in ([sources] if isinstance(sources, (str, Path)) else sources)]
    if not sources:
        raise ValueError("Invalid argument `sources`: expected at least one out-of-fold CSV or cross-validation folder. Received: []")
    if not 0 < weight <= 1:
        raise ValueError(f"Invalid argument `weight`: expected the teacher's share of the target, in (0, 1]. Received: weight={weight!r}")
    if len({s.resolve() for s in sources}) < len(sources):
        raise ValueError(f"the teacher's sources {[str(s) for s in sources]} name one twice: each counts once")
    tables = [_read_source(s) for s in sources]
    probabilities, labels, classes, _ = tables[0]
    for source, (other, other_labels, other_classes, _) in zip(sources[1:], tables[1:]):
        if other_classes != classes:
            raise ValueError(f"{source}: its classes {list(other_classes)} differ from those of {sources[0]} {list(classes)}")
        if other.keys() != probabilities.keys() or other_labels != labels:
            differ = sorted(set(other) ^ set(probabilities)) or [n for n in labels if other_labels[n] != labels[n]]
            raise ValueError(f"{source}: its records or their labels differ from those of {sources[0]}, such as {', '.join(differ[:3])}")
    weightings = {w for table in tables for w in table[3]}
    if len(weightings) > 1:
        raise ValueError(f"the teacher's sources {[str(s) for s in sources]} were trained with different class weightings {sorted(weightings)}")
    mean = {n: sum(t[0][n] for t in tables) / len(tables) for n in sorted(probabilities)}
    normalised = {n: p / p.sum() for n, p in mean.items()}
    return Teacher(tuple(str(s) for s in sources), classes, normalised, labels, float(weight), next(iter(weightings), None))


def _read_source(source: Path) -> tuple[dict, dict, tuple[str, ...], set]:
    """`({record: probabilities}, {record: label}, classes, class weightings)` of one out-of-fold CSV or cross-validation folder."""
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such out-of-fold CSV or cross-validation folder")
    if source.is_dir():
        try:
            names, _, truth, probs, classes = finished_oof(source, partial=False, filename=LAST_OOF_FILE)
        except FileNotFoundError:
            if not (source / FOLDS_FILE).is_file():
                raise
            raise FileNotFoundError(
                f"{source}: a teacher needs every fold's {LAST_OOF_FILE}, and some are missing: finish that cross-validation first "
                "(`ecgrhythm crossval` with its options)"
            ) from None
        weightings = _class_weightings(json.loads((source / RECIPE_FILE).read_text()))
    else:
        (names, _, truth, probs, classes), weightings = read_oof(source), set()
    if np.any(probs.sum(axis=1) <= 0):
        raise ValueError(f"{source}: a record's probabilities are all 0")
    return dict(zip(names, probs.astype(np.float64))), dict(zip(names, truth)), tuple(classes), weightings


def _class_weightings(recipe) -> set:
    """Every `train.class_weighting` in a `crossval.json` recipe (an ensemble's lists its members' recipes)."""
    if isinstance(recipe, dict):
        found = {recipe["train"]["class_weighting"]} if isinstance(recipe.get("train"), dict) and "class_weighting" in recipe["train"] else set()
        return found.union(*(_class_weightings(v) for v in recipe.values()))
    if isinstance(recipe, list):
        return set().union(*(_class_weightings(v) for v in recipe))
    return set()
