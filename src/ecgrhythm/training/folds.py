"""The folds of a cross-validation: seeded, stratified, written once to `folds.json` and read back.

A cross-validation folder (see :mod:`ecgrhythm.training.crossval`) keeps its folds in `folds.json`: the
record names of each fold, with the seed and classes that fixed them, so that every rerun, report and
ensemble of cross-validations uses the same records in the same folds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np

from ecgrhythm.training.data import LabelledData

__all__ = ["Folds", "make_folds", "read_folds", "fold_dir", "FOLDS_FILE", "RECIPE_FILE"]

FOLDS_FILE = "folds.json"
RECIPE_FILE = "crossval.json"  # the recipe of a cross-validation folder (:mod:`ecgrhythm.training.crossval`)


@dataclasses.dataclass
class Folds:
    """The folds of a cross-validation.

    Attributes:
        folds: record names of each fold, `n_folds` disjoint lists covering the records.
        seed: the seed that fixed them.
        classes: the class names.
        labels: record name to its class name.
    """

    folds: list[list[str]]
    seed: int
    classes: tuple[str, ...]
    labels: dict[str, str]

    @property
    def digest(self) -> str:
        """SHA-256 of the fold assignment: two cross-validations are paired fold by fold when their digests match."""
        return hashlib.sha256(json.dumps(self.folds).encode()).hexdigest()

    def to_text(self) -> str:
        return (
            json.dumps(
                {
                    "n_folds": len(self.folds),
                    "seed": self.seed,
                    "classes": list(self.classes),
                    "digest": self.digest,
                    "folds": self.folds,
                    "labels": self.labels,
                }
            )
            + "\n"
        )


def make_folds(data: LabelledData, n_folds: int, seed: int) -> Folds:
    """Seeded stratified folds of single-label records: each fold holds about `1 / n_folds` of every class.

    Args:
        data: the labelled records (one label each).
        n_folds: number of folds, at least 2 and at most the records of the rarest class.
        seed: fixes the shuffle; the same records and seed give the same folds.

    Returns:
        The :class:`Folds`, each fold's names in the data's order.

    Raises:
        ValueError: multi-label data, or `n_folds` out of range.
    """
    from sklearn.model_selection import StratifiedKFold

    if data.multilabel:
        raise ValueError("cross-validation takes records with one label each (a REFERENCE.csv folder); this folder's labels are header codes")
    counts = np.bincount(data.targets)
    smallest = int(counts[counts > 0].min())
    if not 2 <= n_folds <= smallest:
        raise ValueError(f"Invalid argument `n_folds`: expected 2 to {smallest} (records of the rarest class present). Received: n_folds={n_folds}")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = [[data.names[i] for i in np.sort(held_out)] for _, held_out in splitter.split(np.zeros(len(data.targets)), data.targets)]
    labels = {name: data.classes[t] for name, t in zip(data.names, data.targets)}
    return Folds(folds, int(seed), tuple(data.classes), labels)


def read_folds(output) -> Folds:
    """The folds saved in a cross-validation folder (its `folds.json`).

    Raises:
        FileNotFoundError: the folder has no `folds.json`.
        ValueError: the file is not a folds file.
    """
    path = Path(output) / FOLDS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {Path(output)} is not a cross-validation folder (its folds are written first, `folds_only=True` writes only them)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Folds([list(map(str, f)) for f in raw["folds"]], int(raw["seed"]), tuple(raw["classes"]), dict(raw["labels"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a folds file ({exc}); remove it to write the folds again") from None


def fold_dir(output, k: int) -> Path:
    """The model folder of fold `k` (0-based)."""
    return Path(output) / f"fold{k}"
