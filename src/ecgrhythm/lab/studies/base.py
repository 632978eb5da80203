"""What every study shares: the budget, a variant, the study class and its registry.

A study is one class: its question, the variants it runs (fixed, or planned
from the scores so far), how a variant changes the run (the variant's fields),
and what its answer adds to the report. Register it with :func:`register_study`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import numpy as np

from ecgrhythm.config import TrainConfig
from ecgrhythm.networks.cnn_lstm import ModelConfig
from ecgrhythm.preprocessing.pipeline import bandpass, normalize

__all__ = ["Budget", "Variant", "Study", "STUDIES", "register_study", "BASE_MODEL", "FULL_BUDGET_MODEL", "STUDY_FS", "MAX_SEED", "pm"]

MAX_SEED = 10**6
# The network and rate every study starts from, fixed here so that changing a default of `train`
# does not change what a study command measures: one BiLSTM layer of 64 units after six conv blocks, at 150 Hz.
BASE_MODEL = ModelConfig(conv_filters=(16, 32, 48, 64, 96, 128), conv_kernel=7, lstm_layers=1, lstm_units=64, bidirectional=True, dropout=0.3)
STUDY_FS = 150.0
# The network of the full-budget runs: the shipped model's (models/cinc2017), fixed here for the same reason.
# Full-budget runs are `ecgrhythm crossval` folds trained with the shipped recipe and one change (see `fullbudget`).
FULL_BUDGET_MODEL = ModelConfig(conv_filters=(8, 16, 24, 32, 48, 64), conv_kernel=7, lstm_layers=2, lstm_units=64, bidirectional=True, dropout=0.3)


@dataclasses.dataclass(frozen=True)
class Budget:
    """What every run of a study gets: the same data, epochs and optimiser.

    Args:
        epochs: epochs of each run (cosine learning-rate decay over them).
        train_records: size of the fixed stratified subset of the training
            part that every run trains on (all of it if larger).
        val_fraction: share of the folder held out (stratified) for validation.
        split_seed: seed of the split and of the subset (the run seeds vary
            only the weights and the windows).
        batch_size, window_s, learning_rate: as in :class:`TrainConfig`.
    """

    epochs: int = 4
    train_records: int = 2000
    val_fraction: float = 0.15
    split_seed: int = 0
    batch_size: int = 32
    window_s: float = 20.0
    learning_rate: float = 1e-3

    def __post_init__(self):
        self.train_config(0)  # the same checks as training
        if self.val_fraction == 0:
            raise ValueError("Invalid argument `val_fraction`: a study scores every run on its validation records; expected a fraction in (0, 1)")
        if self.train_records < 2:
            raise ValueError(f"Invalid argument `train_records`: expected at least 2. Received: train_records={self.train_records!r}")

    def train_config(self, seed: int) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            window_s=self.window_s,
            learning_rate=self.learning_rate,
            val_fraction=self.val_fraction,
            seed=seed,
        )


@dataclasses.dataclass(frozen=True)
class Variant:
    """One setting of the factor under study.

    Attributes:
        name: short label used in reports.
        params: the factor's values as recorded in the store.
        normalization: per-record method (see :func:`ecgrhythm.preprocessing.pipeline.normalize`)
            or `"global"`: one offset and scale for the whole data set,
            measured on the training records.
        bandpass: band-pass filter `(low, high)` in Hz, or `None`.
        length: how records of different lengths reach the network (a name in `LENGTHS`).
        model: the network.
    """

    name: str
    params: dict
    normalization: str = "zscore"
    bandpass: tuple[float, float] | None = None
    length: str = "bucket_mask"
    model: ModelConfig = BASE_MODEL

    def signals(self, signals: list[np.ndarray], fs: float, train_idx) -> list[np.ndarray]:
        """`signals` `(n_i, n_leads)` filtered and normalised as this variant says (`"global"` scales by the `train_idx` records)."""
        if self.bandpass is not None:
            signals = [bandpass(s, fs, *self.bandpass) for s in signals]
        if self.normalization != "global":
            return [normalize(s, self.normalization) for s in signals]
        train = np.concatenate([signals[i] for i in train_idx])
        center, scale = train.mean(axis=0), max(float(train.std()), 1e-6)
        return [((s - center) / scale).astype(np.float32) for s in signals]


class Study:
    """A study: subclass, set the class attributes, give `variants`, `distributions` and `compared`, and register it.

    Attributes:
        name: the study's name (CLI argument, store study name, report file names).
        question: what the study answers.
        factor: what changes between runs, in words.
        reference: the variant that is ecgrhythm's default (or the procedure's start).

    The runs on cross-validation folds (the full budget) train the shipped recipe with one change:
    :meth:`full_budget_variants` are those changes and :meth:`full_budget_reference` the shipped recipe itself.
    """

    name: ClassVar[str]
    question: ClassVar[str]
    factor: ClassVar[str]
    reference: ClassVar[str]

    def variants(self) -> list[Variant]:
        """Every variant the study can run."""
        raise NotImplementedError

    def plan(self, means: dict[str, float], margin: float) -> list[Variant]:
        """The variants to run given the mean scores of the finished ones (`means`: name -> mean); all of them by default."""
        return self.variants()

    def distributions(self) -> dict:
        """The Optuna distribution of each parameter in the variants' `params`."""
        raise NotImplementedError

    def full_budget_variants(self) -> list[Variant]:
        """The variants as full-budget runs make them: on the shipped network (`FULL_BUDGET_MODEL`) by default."""
        return [dataclasses.replace(v, model=FULL_BUDGET_MODEL) for v in self.variants()]

    def full_budget_reference(self) -> str:
        """The full-budget variant that is the shipped recipe (the reference of the full-budget runs)."""
        return self.reference

    def same_setting(self, a: dict, b: dict) -> bool:
        """Whether two variants' configs (as in the report rows) set the study's factor alike, across budgets."""
        return {k: v for k, v in a.items() if k != "model"} == {k: v for k, v in b.items() if k != "model"}

    def answer(self, complete: list[dict], close: list[dict], margin: float, reference: str) -> list[str]:
        """Lines the study adds to the report's answer, from the summaries of the complete variants and those within
        the margin, given the budget's `reference` variant."""
        return []

    def compared(self, setup: dict) -> list[str]:
        """The variants in words (markdown lines), given the study's recorded setup."""
        return [f"- `{v.name}`" for v in self.variants()]


STUDIES: dict[str, Study] = {}


def register_study(cls: type[Study]) -> type[Study]:
    """Class decorator: make `cls` a study the runner, the store, the report and the CLI know by `cls.name`."""
    STUDIES[cls.name] = cls()
    return cls


def pm(mean: float, sd: float) -> str:
    """`mean ± sd` to 3 decimals (the mean alone when `sd` is NaN)."""
    return f"{mean:.3f}" if math.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"
