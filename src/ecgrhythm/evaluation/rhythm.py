"""Scoring a model on a labelled folder: classify its records, leave out the training records, score the rest.

The scores themselves are in :mod:`ecgrhythm.scoring.metrics`, the tables, figures and
JSON in :mod:`ecgrhythm.evaluation.reports`.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ecgrhythm.config import portable_path
from ecgrhythm.records.labels import read_folder_labels
from ecgrhythm.scoring.metrics import evaluate_predictions, multilabel_report

__all__ = ["evaluate_folder"]

logger = logging.getLogger(__name__)


def evaluate_folder(classifier, data_dir, *, exclude_training: bool = True, fs: float | None = None, lead=None, on_failure=None):
    """Classify the labelled records of a folder and score them.

    By default the records the model was trained on (`classifier.training_split()["train"]`:
    its folder's `split.json`, or an ONNX file's metadata) are left out, so the score is a held-out score. When the model
    trained on every labelled record of the folder (a model trained on all records, `val_fraction=0`, on its own
    data; or any model on a folder of its training records only), they are all scored, with a warning, and
    `info["held_out"]` is false (`info["all_records_trained"]` true).

    Args:
        classifier: a loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier` (of a model folder or an `.onnx` file).
        data_dir: folder with records and `REFERENCE.csv` (`record,label` rows), or, for a
            multi-label model, records whose headers carry SNOMED-CT `# Dx:` codes.
        exclude_training: leave out the model's training records.
        fs: sampling rate (Hz) of record files without a header.
        lead: lead name or index a single-lead model takes from multi-lead records (default: lead I, else the first, unless it is unusable and another is clean).
        on_failure: called as `on_failure(path, reason)` for each record that
            cannot be scored, as it happens (for progress output).

    Returns:
        `(report, prediction, truth)`: the :class:`~ecgrhythm.scoring.metrics.EvaluationReport`
        (with the top-class calibration of the probabilities) or
        :class:`~ecgrhythm.scoring.metrics.MultilabelReport` (its `info` says how many
        records were labelled, excluded, unreadable and scored, and whether the
        score is held out), the
        :class:`~ecgrhythm.inference.classifier.Prediction` of the scored records and
        their true labels, in the same order.

    Raises:
        RecordError: the folder or its `REFERENCE.csv` cannot be read.
        ValueError: no labelled record could be scored, or the model's split (`split.json`, or its metadata) is invalid.
    """
    data_dir = Path(data_dir)
    folder, reference, paths = _labelled_records(classifier, data_dir)
    held_out = _leave_out_training(classifier, data_dir, paths, exclude_training)
    failures = _Failures(on_failure)
    for path, reason in folder.failures:
        failures.add(path, reason)
    usable = _usable_records(classifier, held_out.paths, reference, failures)
    prediction = _classify(classifier, usable, failures, fs=fs, lead=lead)
    if not prediction.names:
        raise ValueError(
            f"{data_dir}: no labelled record could be scored: {len(failures.rows)} could not be read or classified (each reported above), "
            f"{held_out.excluded} left out as the model's training records (`exclude_training=False` scores them too)"
        )
    info = {
        "data": str(data_dir),
        "model": portable_path(classifier.model_dir_),
        "held_out": held_out.held_out,
        "all_records_trained": held_out.all_trained,
        "labelled_records": len(held_out.paths) + held_out.excluded + len(folder.failures),
        "excluded_training_records": held_out.excluded,
        "failed_records": len(failures.rows),
        "failures": failures.rows,
    }
    failed = {f["path"] for f in failures.rows}
    truth = [reference[p.stem] for p in usable if str(p) not in failed]  # predictions keep input order
    return _score(classifier, prediction, truth, info)


@dataclasses.dataclass(frozen=True)
class _HeldOut:
    """The labelled records to score, less the model's training records, and how many were left out."""

    paths: list
    excluded: int
    held_out: bool
    all_trained: bool


class _Failures:
    """The records that cannot be scored, as `{"path", "reason"}` rows, each passed on to `on_failure` as it happens."""

    def __init__(self, on_failure):
        self.rows, self.on_failure = [], on_failure

    def add(self, path, reason) -> None:
        self.rows.append({"path": str(path), "reason": reason})
        if self.on_failure is not None:
            self.on_failure(str(path), reason)


def _labelled_records(classifier, data_dir: Path):
    """`(folder labels, truth by record name, labelled record files)` in the kind of labels the model predicts."""
    multilabel = classifier.architecture_.multilabel
    folder = read_folder_labels(data_dir, multilabel=multilabel)
    if multilabel:
        reference = {name: folder.classes_of(name) & set(classifier.classes_) for name, codes in folder.labels.items() if codes}
        if not reference:
            raise ValueError(f"{data_dir}: no record header carries a 'Dx:' line; a multi-label model is scored on records with SNOMED-CT codes")
    else:
        reference = folder.labels
    paths = [p for p in folder.paths if p.stem in reference]
    if not paths:
        raise ValueError(f"{data_dir}: none of its records is labelled (REFERENCE.csv or header 'Dx:' codes); pass a folder of labelled records")
    return folder, reference, paths


def _leave_out_training(classifier, data_dir: Path, paths: list, exclude_training: bool) -> _HeldOut:
    """Leave out the records the model trained on, unless it trained on them all (then all are kept, with a warning)."""
    model_dir = classifier.model_dir_
    split = classifier.training_split() if exclude_training else None  # without exclusion, even a model with an invalid split is scored
    if split is None:
        if exclude_training:
            logger.warning(
                "%s has no %s: the records the model was trained on are unknown, so the score may not be a held-out score",
                model_dir,
                classifier.split_source,
            )
        return _HeldOut(paths, 0, False, False)
    trained = set(split["train"])
    kept = [p for p in paths if p.stem not in trained]
    if kept:
        return _HeldOut(kept, len(paths) - len(kept), True, False)
    logger.warning(  # a model trained on every record (val_fraction 0): nothing here is held out
        "%s trained on every one of the %d labelled records of %s, so all are scored: NOT a held-out score "
        "(a cross-validation of the model's recipe estimates that)",
        model_dir,
        len(paths),
        data_dir,
    )
    return _HeldOut(paths, 0, False, True)


def _usable_records(classifier, paths: list, reference: dict, failures: _Failures) -> list:
    """The records whose label is one of the model's classes; the others are failures."""
    if classifier.architecture_.multilabel:
        return list(paths)
    usable = []
    for p in paths:
        if reference[p.stem] in classifier.classes_:
            usable.append(p)
        else:
            failures.add(p, f"label {reference[p.stem]!r} in REFERENCE.csv is not one of the model's classes {classifier.classes_}")
    return usable


def _classify(classifier, paths: list, failures: _Failures, *, fs, lead):
    """The :class:`~ecgrhythm.inference.classifier.Prediction` of the records that can be classified, in input order."""
    from ecgrhythm.inference.streaming import classify_files

    prediction, _ = classify_files(classifier, paths, fs=fs, lead=lead, on_failure=failures.add)
    return prediction


def _score(classifier, prediction, truth: list, info: dict):
    """`(report, prediction, truth)`: the truth of a multi-label model as its classes joined by spaces (`-` for none)."""
    classes = classifier.classes_
    if classifier.architecture_.multilabel:
        targets = np.array([[c in present for c in classes] for present in truth], dtype=float)
        report = multilabel_report(targets, prediction.probabilities, classes, classifier.thresholds_, info=info)
        truth = [" ".join(c for c in classes if c in present) or "-" for present in truth]
    else:
        report = evaluate_predictions(truth, prediction.labels, classes, probabilities=prediction.probabilities, info=info)
    return report, prediction, truth
