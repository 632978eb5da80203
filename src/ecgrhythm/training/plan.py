"""A training run set up and ready for its epochs: settings, seeding, data, split, loss and the compiled network.

:func:`plan_run` fixes everything a run depends on before its first epoch; its `settings` are what a
resumed run must match (see :class:`~ecgrhythm.training.checkpoint.Checkpoint`).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ecgrhythm.config import PreprocessConfig, TrainConfig, portable_path
from ecgrhythm.inference.forward import predict_signals
from ecgrhythm.networks.family import NetworkConfig
from ecgrhythm.networks.registry import build_network
from ecgrhythm.networks.split import split_text
from ecgrhythm.preprocessing.batching import WindowSequence, bucket_lengths, window_length
from ecgrhythm.scoring.metrics import score_probabilities
from ecgrhythm.training.data import LabelledData, load_labelled, stratified_split
from ecgrhythm.training.history import score_column
from ecgrhythm.training.losses import loss_and_weights
from ecgrhythm.training.parallel import process_rows
from ecgrhythm.training.teacher import Teacher

__all__ = ["plan_run", "compile_network", "training_window", "TrainingPlan"]


def compile_network(n_leads: int, n_classes: int, architecture: NetworkConfig, train_config: TrainConfig, loss="sparse_categorical_crossentropy"):
    """Build the network `architecture` describes and compile it for training (Adam, optimiser variables built).

    Args:
        n_leads: input channels of the signals `(n_samples, n_leads)`.
        n_classes: output classes.
        architecture: the network, its family's config (see :func:`ecgrhythm.networks.registry.build_network`).
        train_config: gives the initial learning rate.
        loss: a Keras loss (name or function).

    Returns:
        The compiled `keras.Model`, with inputs `{"signal", "mask"}` and output `(batch, n_classes)`.
    """
    import keras

    model = build_network(n_leads, n_classes, architecture)
    model.compile(optimizer=keras.optimizers.Adam(train_config.learning_rate), loss=loss)
    model.optimizer.build(model.trainable_variables)
    return model


@dataclasses.dataclass
class TrainingPlan:
    """A run set up and ready for its epochs: settings, data, split and the compiled network.

    Attributes:
        settings: what fixes the run (JSON-serialisable; the data folder as :func:`~ecgrhythm.config.portable_path`).
        data: the labelled, preprocessed records.
        train_idx, val_idx: record indices `(n_train,)` and `(n_val,)` of the split.
        preprocess: the preprocessing applied (leads fixed for multi-lead data).
        architecture: the network, `multilabel` set from the data.
        train_config: how it is trained.
        model: the compiled network.
        sequence: the training windows.
        buckets: padded lengths (samples) of validation batches.
        split_text: the split as `split.json` text.
        teacher: the probabilities the targets mix with the labels, or None (:mod:`ecgrhythm.training.teacher`).
    """

    settings: dict
    data: LabelledData
    train_idx: np.ndarray
    val_idx: np.ndarray
    preprocess: PreprocessConfig
    architecture: NetworkConfig
    train_config: TrainConfig
    model: object
    sequence: WindowSequence
    buckets: tuple
    split_text: str
    teacher: Teacher | None = None

    @property
    def score_name(self) -> str:
        return score_column(self.data.multilabel)

    def validate(self):
        """`(score, F1 per class, extras)` of the network on the validation records (see :func:`score_probabilities`)."""
        val_signals = [self.data.signals[i] for i in self.val_idx]
        probs = predict_signals(self.model, val_signals, self.buckets)
        return score_probabilities(self.data.targets[self.val_idx], probs, self.data.classes, self.data.multilabel)


def plan_run(
    data_dir,
    pre: PreprocessConfig,
    arch: NetworkConfig,
    tc: TrainConfig,
    *,
    limit=None,
    labels="auto",
    classes=None,
    unlabelled="drop",
    data: LabelledData | None = None,
    val_names=None,
    teacher: Teacher | None = None,
) -> TrainingPlan:
    """Seed, read the data, split it, choose the loss and compile the network.

    Args:
        data_dir: folder with records and a `REFERENCE.csv`, or records whose headers carry SNOMED-CT `# Dx:`
            codes (multi-label: sigmoid outputs, weighted binary cross-entropy, per-class thresholds tuned on
            validation; see :func:`~ecgrhythm.training.data.load_labelled`).
        pre, arch, tc: the preprocessing, the network (its family's config) and how it is trained.
        limit: use only the first `limit` labelled records.
        labels, classes, unlabelled: label source and classes (see :func:`~ecgrhythm.training.data.load_labelled`).
        data: the records of `data_dir` as :func:`~ecgrhythm.training.data.load_labelled` read them with these
            settings, when the caller has them already (several runs on one data set).
        val_names: names of the validation records (the others train); default: a stratified
            split of `tc.val_fraction` of the records.
        teacher: train on targets mixing each record's label with these probabilities
            (:mod:`ecgrhythm.training.teacher`); its settings join the run's.

    Returns:
        The :class:`TrainingPlan`.

    Raises:
        ValueError: a multi-label run without validation records, `val_names` that are not some of the records, or a
            teacher that cannot teach the training records (:meth:`~ecgrhythm.training.teacher.Teacher.check`).
    """
    import keras

    settings = {
        "preprocess": pre.to_dict(),
        "model": arch.to_dict(),
        "train": tc.to_dict(),
        "limit": limit,
        "data": portable_path(data_dir),
        "labels": labels,
        "classes": classes if isinstance(classes, (str, type(None))) else list(classes),
        "unlabelled": unlabelled,
    }
    if teacher is not None:
        settings["teacher"] = teacher.settings()
    keras.utils.set_random_seed(tc.seed)
    if data is None:
        data = load_labelled(data_dir, pre, labels=labels, classes=classes, limit=limit, unlabelled=unlabelled)
    pre, arch = data.preprocess, dataclasses.replace(arch, multilabel=data.multilabel)
    train_idx, val_idx = stratified_split(data.targets, tc.val_fraction, tc.seed) if val_names is None else _named_split(data.names, val_names)
    if data.multilabel and not len(val_idx):
        raise ValueError("a multi-label model tunes its decision thresholds on validation records: give a val_fraction above 0")
    y_train = data.targets[train_idx]
    loss, sample_weight = loss_and_weights(y_train, len(data.classes), data.multilabel, tc.class_weighting)
    if teacher is not None:
        y_train, loss = teacher.targets([data.names[i] for i in train_idx], y_train, data.classes, tc.class_weighting), "categorical_crossentropy"
    sequence = WindowSequence(
        [data.signals[i] for i in train_idx],
        y_train,
        window=training_window(pre, tc, arch.downsampling),
        batch_size=min(tc.batch_size, len(train_idx)),
        sample_weight=sample_weight,
        seed=tc.seed,
        augment=tc.augment,
        fs=pre.fs,
        interval_channels=pre.interval_channels,
        rows=process_rows(),
    )
    model = compile_network(data.signals[0].shape[1], len(data.classes), arch, tc, loss)
    split = split_text([data.names[i] for i in train_idx], [data.names[i] for i in val_idx])
    buckets = bucket_lengths(pre.fs, arch.downsampling)
    return TrainingPlan(settings, data, train_idx, val_idx, pre, arch, tc, model, sequence, buckets, split, teacher)


def training_window(pre: PreprocessConfig, tc: TrainConfig, downsampling: int) -> int:
    """Samples of the window cut from each training record at `pre.fs`, a multiple of `downsampling`.

    Whole records give random windows of about `tc.window_s` (:func:`~ecgrhythm.preprocessing.batching.window_length`);
    a fixed input length (`pre.fixed_length_s`) gives the whole input, `pre.fixed_samples` rounded up to a
    multiple of `downsampling` (the few samples over it padded and masked, as at inference), and `tc.window_s` is unused.
    """
    if pre.fixed_samples is None:
        return window_length(tc.window_s, pre.fs, downsampling)
    return int(math.ceil(pre.fixed_samples / downsampling)) * downsampling


def _named_split(names, val_names) -> tuple[np.ndarray, np.ndarray]:
    """`(train_idx, val_idx)` with the records named in `val_names` for validation and the others for training."""
    chosen = set(val_names)
    missing = chosen.difference(names)
    if missing:
        raise ValueError(
            f"{len(missing)} validation records are not among the labelled records, such as {sorted(missing)[:3]}; "
            f"pass names of records of the data folder"
        )
    is_val = np.array([n in chosen for n in names])
    if is_val.all() or not is_val.any():
        raise ValueError("the validation records must be some but not all of the labelled records")
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
