"""Scoring a model on a labelled folder: classify its records, leave out the training records, score the rest.

The scores themselves are in :mod:`ecgrhythm.scoring.metrics`, the tables, figures and
JSON in :mod:`ecgrhythm.evaluation.reports`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ecgrhythm.records.labels import class_names_of, dx_mapping, read_folder_labels
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
        classifier: a loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier` (or
            :class:`~ecgrhythm.inference.onnx_backend.OnnxClassifier`).
        data_dir: folder with records and `REFERENCE.csv` (`record,label` rows), or, for a
            multi-label model, records whose headers carry SNOMED-CT `# Dx:` codes.
        exclude_training: leave out the model's training records.
        fs: sampling rate (Hz) of record files without a header.
        lead: lead name or index a single-lead model takes from multi-lead records (default: lead I, else the first).
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
    from ecgrhythm.inference.classifier import Prediction
    from ecgrhythm.inference.streaming import iter_classify_files

    data_dir = Path(data_dir)
    multilabel = classifier.architecture_.multilabel
    folder = read_folder_labels(data_dir, "header" if multilabel else "reference")
    if multilabel:
        code_names, _ = dx_mapping(data_dir)
        reference = {name: class_names_of(codes, code_names) & set(classifier.classes_) for name, codes in folder.labels.items() if codes}
        if not reference:
            raise ValueError(f"{data_dir}: no record header carries a 'Dx:' line; a multi-label model is scored on records with SNOMED-CT codes")
    else:
        reference = folder.labels
    paths = [p for p in folder.paths if p.stem in reference]
    if not paths:
        raise ValueError(f"{data_dir}: none of its records is labelled (REFERENCE.csv or header 'Dx:' codes); pass a folder of labelled records")
    model_dir = classifier.model_dir_
    split = classifier.training_split() if exclude_training else None  # --all-records scores even a model with an invalid split
    excluded, all_trained = 0, False
    if split is not None:
        trained = set(split["train"])
        kept = [p for p in paths if p.stem not in trained]
        all_trained = not kept
        if all_trained:  # a model trained on every record (val_fraction 0): nothing here is held out
            logger.warning(
                "%s trained on every one of the %d labelled records of %s, so all are scored: NOT a held-out score "
                "(a cross-validation of the model's recipe estimates that)",
                model_dir,
                len(paths),
                data_dir,
            )
        else:
            excluded, paths = len(paths) - len(kept), kept
    elif exclude_training:
        logger.warning(
            "%s has no %s: the records the model was trained on are unknown, so the score may not be a held-out score",
            model_dir,
            classifier.split_source,
        )
    failures = []

    def fail(path, reason):
        failures.append({"path": str(path), "reason": reason})
        if on_failure is not None:
            on_failure(str(path), reason)

    for path, reason in folder.failures:
        fail(path, reason)

    usable = []
    for p in paths:
        if multilabel or reference[p.stem] in classifier.classes_:
            usable.append(p)
        else:
            fail(p, f"label {reference[p.stem]!r} in REFERENCE.csv is not one of the model's classes {classifier.classes_}")
    names, labels, probs, leads = [], [], [], []
    for prediction, bad in iter_classify_files(classifier, usable, fs=fs, lead=lead):
        for path, reason in bad:
            fail(path, reason)
        names += prediction.names
        labels += prediction.labels
        probs.append(prediction.probabilities)
        leads += prediction.leads
    if not names:
        raise ValueError(
            f"{data_dir}: no labelled record could be scored: {len(failures)} could not be read or classified (each reported above), "
            f"{excluded} left out as the model's training records (--all-records scores them too)"
        )
    info = {
        "data": str(data_dir),
        "model": str(model_dir),
        "held_out": bool(split is not None and not all_trained),
        "all_records_trained": all_trained,
        "labelled_records": len(paths) + excluded + len(folder.failures),
        "excluded_training_records": excluded,
        "failed_records": len(failures),
        "failures": failures,
    }
    failed = {f["path"] for f in failures}
    truth = [reference[p.stem] for p in usable if str(p) not in failed]  # predictions keep input order
    probs = np.concatenate(probs)
    if multilabel:
        targets = np.array([[c in present for c in classifier.classes_] for present in truth], dtype=float)
        report = multilabel_report(targets, probs, classifier.classes_, classifier.thresholds_, info=info)
        truth = [" ".join(c for c in classifier.classes_ if c in present) or "-" for present in truth]
    else:
        report = evaluate_predictions(truth, labels, classifier.classes_, probabilities=probs, info=info)
    return report, Prediction(names, labels, probs, list(classifier.classes_), leads), truth
