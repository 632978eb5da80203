"""Training data: a labelled folder's records read, preprocessed and split.

:func:`load_labelled` reads the labels of a folder (:func:`ecgrhythm.records.labels.read_folder_labels`:
a `REFERENCE.csv`, or SNOMED-CT codes in the WFDB headers), then every labelled record, preprocessed for
the network; :func:`stratified_split` holds out validation records class by class.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.preprocessing.pipeline import preprocess
from ecgrhythm.records import RecordError, read_record
from ecgrhythm.records.labels import CINC2017_CLASSES, FolderLabels, choose_classes, read_folder_labels

__all__ = ["LabelledData", "load_labelled", "stratified_split"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class LabelledData:
    """Preprocessed records with labels.

    Attributes:
        names: record names.
        signals: float32 arrays `(n_i, n_leads)` at the model's rate.
        targets: class index of each record `(n,)`, or multi-hot `(n, n_classes)` float32.
        classes: class names.
        multilabel: whether `targets` is multi-hot.
        preprocess: the preprocessing applied (with the leads fixed for multi-lead data).
        failures: `(path, reason)` of records that could not be read.
        unlabelled: names of records left out for having none of the classes.
        source: the name of the label source the labels came from (:func:`~ecgrhythm.records.labels.read_folder_labels`).
    """

    names: list[str]
    signals: list[np.ndarray]
    targets: np.ndarray
    classes: tuple[str, ...]
    multilabel: bool
    preprocess: PreprocessConfig
    failures: list[tuple[str, str]]
    unlabelled: list[str] = dataclasses.field(default_factory=list)
    _: dataclasses.KW_ONLY
    source: str


def _with_leads(config: PreprocessConfig, paths) -> PreprocessConfig:
    """For multi-lead data without chosen leads, fix the leads to those of the first readable record."""
    if config.leads is not None:
        return config
    for path in paths:
        try:
            record = read_record(path)
        except RecordError:
            continue
        return dataclasses.replace(config, leads=record.sig_name) if record.n_leads > 1 else config
    return config


def _read_all(paths, config: PreprocessConfig, failures, limit=None):
    """Yield `(path, record, signal)` for the readable records, at most `limit` of them."""
    count = 0
    for path in paths:
        if limit is not None and count >= limit:
            return
        try:
            record = read_record(path)
            signal = preprocess(record, config)
        except RecordError as exc:
            failures.append((str(path), exc.reason))
            continue
        count += 1
        yield path, record, signal


def load_labelled(
    data_dir, config: PreprocessConfig, *, labels: str = "auto", classes=None, limit: int | None = None, unlabelled: str = "drop"
) -> LabelledData:
    """Read and preprocess the labelled records of a folder.

    Args:
        data_dir: folder of records with a `REFERENCE.csv` (one label per
            record) or with SNOMED-CT `# Dx:` codes in the headers (several).
        config: preprocessing to apply. For multi-lead data without `leads`,
            the leads of the first record are used (and required of all).
        labels: a label source of :func:`~ecgrhythm.records.labels.label_source_names`:
            `"auto"` (detect from the folder), `"reference"` or `"header"`.
        classes: class names: for `REFERENCE.csv` the label set (default N, A, O, ~);
            for header codes `"all"` (default), `"scored"` or a list.
        limit: read only the first `limit` labelled records (for quick runs).
        unlabelled: for header codes, `"drop"` records with none of the
            classes (default) or `"keep"` them as all-negative examples.

    Returns:
        The data; unreadable records are skipped and listed in `failures`.
    """
    data_dir = Path(data_dir)
    if unlabelled not in ("drop", "keep"):
        raise ValueError(f"Invalid argument `unlabelled`: expected 'drop' or 'keep'. Received: unlabelled={unlabelled!r}")
    folder = read_folder_labels(data_dir, labels)
    if folder.multilabel:
        data = _multi_label(folder, config, classes, limit, keep_unlabelled=unlabelled == "keep")
    else:
        data = _single_label(folder, config, classes, limit)
    if not data.names:
        raise RecordError(data_dir, "no labelled records could be read")
    for path, reason in data.failures:
        logger.warning("skipped %s: %s", path, reason)
    if data.unlabelled:
        logger.warning("left out %d records with none of the classes %s", len(data.unlabelled), list(data.classes))
    return data


def _single_label(folder: FolderLabels, config: PreprocessConfig, classes, limit) -> LabelledData:
    """One class index a record, from labels that name one class each; records of other labels are failures."""
    classes = tuple(classes or CINC2017_CLASSES)
    index = {c: i for i, c in enumerate(classes)}
    failures, paths = list(folder.failures), []
    for path in folder.paths:
        if folder.labels[path.stem] not in index:
            failures.append((str(path), f"label {folder.labels[path.stem]!r} is not one of {list(classes)}"))
            continue
        paths.append(path)
    config = _with_leads(config, paths)
    names, signals, targets = [], [], []
    for path, record, signal in _read_all(paths, config, failures, limit):
        names.append(record.record_name)
        signals.append(signal)
        targets.append(index[folder.labels[path.stem]])
    return LabelledData(names, signals, np.asarray(targets), classes, False, config, failures, source=folder.source)


def _multi_label(folder: FolderLabels, config: PreprocessConfig, classes, limit, *, keep_unlabelled: bool) -> LabelledData:
    """Multi-hot targets from codes, over the classes chosen among those seen (see :func:`choose_classes`)."""
    failures = list(folder.failures)
    config = _with_leads(config, folder.paths)
    rows = list(_read_all(folder.paths, config, failures, limit))
    code_lists = [folder.labels[path.stem] for path, _, _ in rows]
    classes = choose_classes(code_lists, classes or "all", folder.code_names, folder.scored)
    names, signals, targets, dropped = [], [], [], []
    for path, record, signal in rows:
        present = folder.classes_of(path.stem)
        target = np.array([c in present for c in classes], dtype=np.float32)
        if not target.any() and not keep_unlabelled:
            dropped.append(record.record_name)
            continue
        names.append(record.record_name)
        signals.append(signal)
        targets.append(target)
    targets = np.asarray(targets, dtype=np.float32).reshape(len(names), len(classes))
    return LabelledData(names, signals, targets, tuple(classes), True, config, failures, dropped, source=folder.source)


def stratified_split(labels, val_fraction: float, seed: int):
    """Seeded split of record indices into `(train_idx, val_idx)`.

    Stratified by class for one label per record; for multi-hot labels
    `(n, n_classes)` a plain seeded random split. A `val_fraction` of 0 puts every record in training.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    if val_fraction == 0:
        return idx, idx[:0]
    train_idx, val_idx = train_test_split(idx, test_size=val_fraction, stratify=labels if labels.ndim == 1 else None, random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)
