"""Calibrating a model folder on the probabilities of records it never trained on (what `ecgrhythm calibrate` does).

The probabilities (:class:`HeldOut`) are a cross-validation's out-of-fold ones or those `ecgrhythm evaluate`
wrote for the records a model held out (:func:`read_predictions`). :func:`open_model` reads the model folder to
calibrate; :meth:`ModelToCalibrate.prepare` checks the probabilities against it and, for a prior correction,
takes the class frequencies of their records; :meth:`CalibrationPlan.fit` fits the temperature on them and writes
the calibration into the folder's `config.json`.

Example:
    >>> held = read_predictions("runs/evaluate/predictions.csv")  # doctest: +SKIP
    >>> plan = open_model("models/mine").prepare(held, per_predicted_class=True)  # doctest: +SKIP
    >>> plan.fit().ece_after  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from ecgrhythm.networks.saving import load_model_dir, set_calibration
from ecgrhythm.networks.split import load_split
from ecgrhythm.scoring.calibration import apply_class_prior, apply_temperature, class_frequencies, fit_temperature, top_class_calibration
from ecgrhythm.scoring.crossval import cross_fitted_ece, prior_correction_scores

__all__ = ["HeldOut", "read_predictions", "open_model", "ModelToCalibrate", "CalibrationPlan", "CalibrationResult", "CROSS_FIT_FOLDS"]

CROSS_FIT_FOLDS = 5  # the seeded folds of a predictions.csv, for its cross-fitted ECE


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Probabilities of records a model never trained on.

    Attributes:
        path: the file they were read from (an `oof.csv`, `oof-last.csv` or `predictions.csv`).
        names: record names, `n` of them.
        folds: int array `(n,)`, the fold of each record (for cross-fitted estimates).
        truth: the true label of each record.
        probabilities: float array `(n, n_classes)`.
        classes: class names, the columns of `probabilities`.
        origin: what the rows come from, for messages: the cross-validation folder, or `path`.
    """

    path: Path
    names: list[str]
    folds: np.ndarray
    truth: list[str]
    probabilities: np.ndarray
    classes: list[str]
    origin: str | Path | None = None

    @property
    def targets(self) -> np.ndarray:
        """The class index of each record's true label, int array `(n,)`."""
        return np.array([self.classes.index(t) for t in self.truth])

    def _rows(self, keep: np.ndarray) -> HeldOut:
        return dataclasses.replace(
            self,
            names=[n for n, k in zip(self.names, keep) if k],
            folds=self.folds[keep],
            truth=[t for t, k in zip(self.truth, keep) if k],
            probabilities=self.probabilities[keep],
        )


def read_predictions(path) -> HeldOut:
    """The rows of an `ecgrhythm evaluate` predictions.csv, in seeded folds (`CROSS_FIT_FOLDS` of them) for the cross-fitted ECE.

    Raises:
        ValueError: naming `path`: it cannot be read, is not such a file, or holds a probability that is not a number.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ValueError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    header = list(rows[0]) if rows else []
    if "true_label" not in header:
        raise ValueError(f"{path}: not a predictions.csv of 'ecgrhythm evaluate' (columns record,label,true_label,[lead,]<classes>)")
    classes = header[header.index("lead" if "lead" in header else "true_label") + 1 :]
    try:
        probs = np.array([[float(r[c]) for c in classes] for r in rows])
    except (TypeError, ValueError):
        raise ValueError(f"{path}: a probability is not a number") from None
    truth = [r["true_label"] for r in rows]
    folds = np.random.default_rng(0).permutation(len(truth)) % CROSS_FIT_FOLDS
    return HeldOut(Path(path), [r["record"] for r in rows], folds, truth, probs, classes)


def open_model(model_dir) -> ModelToCalibrate:
    """The model folder to calibrate, its networks and `config.json` checked by loading them.

    Raises:
        ModelFolderError: the folder is missing, incomplete or altered.
    """
    _, config = load_model_dir(model_dir)
    return ModelToCalibrate(model_dir, config)


@dataclasses.dataclass(frozen=True)
class ModelToCalibrate:
    """A model folder, as it was named, and its parsed `config.json` (from :func:`open_model`)."""

    model_dir: str | Path
    config: dict

    def leave_out_validation(self, held: HeldOut) -> tuple[HeldOut, int]:
        """`held` less the rows of the records the model validates on (its `split.json`), and how many were left out.

        Raises:
            ValueError: every row is a validation record.
        """
        validation = set((load_split(self.model_dir) or {"val": []})["val"])
        keep = np.array([n not in validation for n in held.names])
        if not keep.any():
            raise ValueError(f"every row of {held.origin or held.path} is a validation record of {self.model_dir}: nothing is left to fit on")
        return held._rows(keep), int((~keep).sum())

    def prepare(self, held: HeldOut, *, per_class: bool = False, per_predicted_class: bool = False, prior_correction: bool = False):
        """Check `held` against the model and take the class prior of its records; nothing is fitted or written yet.

        Args:
            held: the probabilities to fit on.
            per_class: one temperature per class (each column scaled by its own).
            per_predicted_class: one temperature per predicted class (each record scaled by that of its argmax).
            prior_correction: multiply the probabilities by the class frequencies of `held` first (for networks trained
                with balanced class weights).

        Returns:
            A :class:`CalibrationPlan`.

        Raises:
            ValueError: the model has other classes than `held`; or, with `prior_correction`, its networks were trained
                without balanced class weights or some class has no record in `held`.
        """
        if list(self.config["classes"]) != held.classes:
            raise ValueError(
                f"{self.model_dir} has the classes {self.config['classes']}, {held.path} has {held.classes}: "
                "calibrate a model of the cross-validated recipe"
            )
        prior = None
        if prior_correction:
            self._check_balanced()
            try:
                prior = class_frequencies(held.targets, len(held.classes))
            except ValueError as exc:
                raise ValueError(f"`prior_correction`: no class prior from {held.path}: {exc}") from None
        return CalibrationPlan(self.model_dir, held, per_class, per_predicted_class, prior)

    def _check_balanced(self) -> None:
        """Refuse a prior correction for a model whose networks were trained without balanced class weights."""
        metadata = self.config.get("metadata", {})
        members = [m.get("metadata", {}) for m in metadata.get("ensemble_of", [])] or [metadata]
        weightings = {m.get("train_config", {}).get("class_weighting") for m in members}
        if weightings - {"balanced", None}:
            raise ValueError(
                f"`prior_correction` applies to networks trained with balanced class weights; {self.model_dir} has networks trained with "
                f"class_weighting {sorted(w for w in weightings if w)}, whose outputs already hold the training prior"
            )


@dataclasses.dataclass(frozen=True)
class CalibrationResult:
    """What :meth:`CalibrationPlan.fit` wrote and measured.

    Attributes:
        temperature: the temperature, a 0-d array or one per class.
        class_prior: the class prior `(n_classes,)` applied before it, or None.
        ece_before: top-class ECE of the probabilities as they were.
        ece_after: top-class ECE after the calibration, in-sample.
        ece_cross_fitted: top-class ECE with the calibration fitted on the other folds of each fold; NaN with one fold.
        config_file: the `config.json` written.
    """

    temperature: np.ndarray
    class_prior: np.ndarray | None
    ece_before: float
    ece_after: float
    ece_cross_fitted: float
    config_file: Path


@dataclasses.dataclass(frozen=True)
class CalibrationPlan:
    """A checked calibration of a model folder, ready to fit (from :meth:`ModelToCalibrate.prepare`)."""

    model_dir: str | Path
    held: HeldOut
    per_class: bool
    per_predicted_class: bool
    class_prior: np.ndarray | None

    def prior_scores(self) -> tuple[list[float], list[float]]:
        """Per fold, the score of the argmax labels before and after the cross-fitted prior correction (each fold's prior
        from the other folds), see :func:`~ecgrhythm.scoring.crossval.prior_correction_scores`."""
        held = self.held
        return prior_correction_scores(held.probabilities, held.targets, held.folds, held.classes)

    def fit(self) -> CalibrationResult:
        """Fit the temperature (on the prior-corrected probabilities, with a prior) and write the calibration into the folder."""
        held, targets = self.held, self.held.targets
        mode = {"per_class": self.per_class, "per_predicted_class": self.per_predicted_class}
        before = top_class_calibration(held.probabilities, targets).ece
        probs = held.probabilities if self.class_prior is None else apply_class_prior(held.probabilities, self.class_prior)
        temperature = fit_temperature(probs, targets, **mode)
        after = top_class_calibration(apply_temperature(probs, temperature, per_predicted_class=self.per_predicted_class), targets).ece
        cross = cross_fitted_ece(held.probabilities, targets, held.folds, **mode, class_prior=self.class_prior is not None)
        set_calibration(self.model_dir, temperature, per_predicted_class=self.per_predicted_class, class_prior=self.class_prior)
        return CalibrationResult(temperature, self.class_prior, before, after, cross, Path(self.model_dir) / "config.json")
