"""Training: seeded stratified split, class weighting, early stopping on the CinC score, resume.

A run is a plan (:func:`plan_run`: settings, seeding, data, split, loss and the
network from :func:`compile_network`), a checkpoint (:class:`~ecgrhythm.training.checkpoint.Checkpoint`,
`OUTPUT/checkpoint/`, written after every epoch) and the epoch loop (early stopping,
best weights). A run killed at any point continues with `resume=True` from the
last finished epoch and, with the same seed, follows the same path as an
uninterrupted run. The finished model folder (see :mod:`ecgrhythm.networks.saving`) holds
the best epoch's weights. Progress goes to this module's logger.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ecgrhythm.config import ModelConfig, PreprocessConfig, TrainConfig, portable_path
from ecgrhythm.inference.forward import predict_signals
from ecgrhythm.networks.saving import LOG_FILE, SPLIT_FILE, split_text
from ecgrhythm.preprocessing.batching import WindowSequence, bucket_lengths, window_length
from ecgrhythm.scoring.metrics import score_probabilities
from ecgrhythm.training.checkpoint import Checkpoint, RunState
from ecgrhythm.training.data import LabelledData, load_labelled, stratified_split
from ecgrhythm.training.parallel import process_rows
from ecgrhythm.utils.io import atomic_write_text
from ecgrhythm.utils.machine import describe as describe_machine

__all__ = ["train", "plan_run", "compile_network", "training_window", "TrainingPlan", "fit_epoch", "TrainResult", "read_log", "score_column"]

logger = logging.getLogger(__name__)


def class_weights(labels, n_classes: int, method: str) -> np.ndarray:
    """Per-class loss weights: `n / (n_classes * count)` for `"balanced"`, ones for `"none"`."""
    if method == "none":
        return np.ones(n_classes)
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    return np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)


def positive_weights(targets: np.ndarray, method: str, cap: float = 50.0) -> np.ndarray:
    """Multi-label loss weight of the positives of each class: `negatives / positives`, capped.

    Rare codes get heavier positives, so the network does not learn to never predict them.
    """
    if method == "none":
        return np.ones(targets.shape[1])
    pos = targets.sum(axis=0)
    return np.clip((len(targets) - pos) / np.maximum(pos, 1), 1.0, cap)


def weighted_binary_crossentropy(pos_weight):
    """Binary cross-entropy with the positives of class `k` weighted by `pos_weight[k]`."""
    from keras import ops

    weight = np.asarray(pos_weight, dtype="float32")

    def loss(y_true, y_pred):
        eps = 1e-7
        p = ops.clip(y_pred, eps, 1 - eps)
        y = ops.cast(y_true, p.dtype)
        terms = -(weight * y * ops.log(p) + (1 - y) * ops.log(1 - p))
        return ops.mean(terms, axis=-1)

    return loss


def cosine_learning_rate(base: float, epoch: int, epochs: int, floor: float = 0.02) -> float:
    """Learning rate of `epoch` (0-based) on a cosine decay from `base` to `floor * base`."""
    return base * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * epoch / epochs)))


def fit_epoch(model, sequence: WindowSequence, epoch: int, config: TrainConfig, verbose: int = 0):
    """Train one epoch (0-based `epoch`) on the cosine schedule, with that epoch's windows.

    Returns:
        The `keras.callbacks.History` of the epoch.
    """
    model.optimizer.learning_rate.assign(cosine_learning_rate(config.learning_rate, epoch, config.epochs))
    sequence.set_epoch(epoch)
    return model.fit(sequence, epochs=1, verbose=verbose, shuffle=False)


@dataclasses.dataclass
class TrainResult:
    """What a training run produced: the model folder, its best validation scores and its history.

    Without validation records `best_epoch` is the last epoch and `best_score` is None.
    """

    model_dir: Path
    best_epoch: int
    best_score: float | None
    val_f1: dict
    history: list


def _log_text(history: list[dict]) -> str:
    """The per-epoch log as CSV text."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


def read_log(model_dir) -> list[dict]:
    """The per-epoch log (`training_log.csv`) of a model folder: one dict per epoch, its values as written (strings).

    Raises:
        FileNotFoundError: the folder has no log (a model trained by this package writes one).
    """
    path = Path(model_dir) / LOG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a model folder trained by 'ecgrhythm train' or 'ecgrhythm crossval'")
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def score_column(multilabel: bool) -> str:
    """The validation score's column in the training log and its key in the model's metadata."""
    return "val_macro_f1" if multilabel else "val_cinc_score"


def compile_network(n_leads: int, n_classes: int, architecture: ModelConfig, train_config: TrainConfig, loss="sparse_categorical_crossentropy"):
    """Build the network `architecture` names and compile it for training (Adam, optimiser variables built).

    Args:
        n_leads: input channels of the signals `(n_samples, n_leads)`.
        n_classes: output classes.
        architecture: the network (see :func:`ecgrhythm.networks.cnn_lstm.build_network`).
        train_config: gives the initial learning rate.
        loss: a Keras loss (name or function).

    Returns:
        The compiled `keras.Model`, with inputs `{"signal", "mask"}` and output `(batch, n_classes)`.
    """
    import keras

    from ecgrhythm.networks.cnn_lstm import build_network

    model = build_network(n_leads, n_classes, architecture)
    model.compile(optimizer=keras.optimizers.Adam(train_config.learning_rate), loss=loss)
    model.optimizer.build(model.trainable_variables)
    return model


def _loss(y_train, n_classes: int, multilabel: bool, method: str):
    """`(loss, sample_weight)`: weighted binary cross-entropy for multi-hot targets, else class-weighted samples."""
    if multilabel:
        return weighted_binary_crossentropy(positive_weights(y_train, method)), None
    return "sparse_categorical_crossentropy", class_weights(y_train, n_classes, method)[y_train]


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
    """

    settings: dict
    data: LabelledData
    train_idx: np.ndarray
    val_idx: np.ndarray
    preprocess: PreprocessConfig
    architecture: ModelConfig
    train_config: TrainConfig
    model: object
    sequence: WindowSequence
    buckets: tuple
    split_text: str

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
    arch: ModelConfig,
    tc: TrainConfig,
    *,
    limit=None,
    labels="auto",
    classes=None,
    unlabelled="drop",
    data: LabelledData | None = None,
    val_names=None,
) -> TrainingPlan:
    """Seed, read the data, split it, choose the loss and compile the network (arguments as for :func:`train`)."""
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
    keras.utils.set_random_seed(tc.seed)
    if data is None:
        data = load_labelled(data_dir, pre, labels=labels, classes=classes, limit=limit, unlabelled=unlabelled)
    pre, arch = data.preprocess, dataclasses.replace(arch, multilabel=data.multilabel)
    train_idx, val_idx = stratified_split(data.targets, tc.val_fraction, tc.seed) if val_names is None else _named_split(data.names, val_names)
    if data.multilabel and not len(val_idx):
        raise ValueError("a multi-label model tunes its decision thresholds on validation records: give a val_fraction above 0")
    y_train = data.targets[train_idx]
    loss, sample_weight = _loss(y_train, len(data.classes), data.multilabel, tc.class_weighting)
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
    return TrainingPlan(settings, data, train_idx, val_idx, pre, arch, tc, model, sequence, bucket_lengths(pre.fs, arch.downsampling), split)


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


def _run_epochs(plan: TrainingPlan, checkpoint: Checkpoint, run: RunState, verbose: int, on_epoch) -> None:
    """Train from the epoch after `run.epoch` until the last one or early stopping; checkpoint and log each epoch."""
    tc, model = plan.train_config, plan.model
    for epoch in range(run.epoch + 1, tc.epochs):
        if tc.patience is not None and run.best["score"] is not None and run.best["epoch"] >= 0 and epoch - run.best["epoch"] > tc.patience:
            logger.info("stopping early: no better validation score in %d epochs", tc.patience)
            break
        t0 = time.perf_counter()
        logger.info("Epoch %d/%d", epoch + 1, tc.epochs)
        fit = fit_epoch(model, plan.sequence, epoch, tc, verbose=verbose)
        t1 = time.perf_counter()
        score, f1, extras = plan.validate() if len(plan.val_idx) else (None, {}, {})  # no validation: the last epoch is kept
        t2 = time.perf_counter()
        run.train_seconds += t2 - t0
        row = {"epoch": epoch + 1, "loss": round(float(fit.history["loss"][-1]), 5), plan.score_name: None if score is None else round(score, 5)}
        row.update({f"val_f1_{c}": round(v, 5) for c, v in f1.items()})
        row.update({"fit_seconds": round(t1 - t0, 2), "val_seconds": round(t2 - t1, 2)})
        run.history.append(row)
        run.epoch = epoch
        values = [v.numpy() for v in model.variables]
        if score is None or score > run.best["score"]:
            run.best, run.best_values = {"epoch": epoch, "score": score, "f1": f1, "extras": extras}, values
        if score is None:
            logger.info("  no validation records (every record trains); %.0f s", t2 - t0)
        else:
            logger.info(
                "  val %s %.4f (best %.4f at epoch %d); %.0f s",
                "macro F1" if plan.data.multilabel else "CinC score",
                score,
                run.best["score"],
                run.best["epoch"] + 1,
                t2 - t0,
            )
        checkpoint.save(plan.settings, run, values, [v.numpy() for v in model.optimizer.variables])
        if checkpoint.writes:
            atomic_write_text(checkpoint.output_dir / LOG_FILE, _log_text(run.history))
        if on_epoch is not None:
            on_epoch(row)


def _save(plan: TrainingPlan, run: RunState, data_dir, output_dir: Path, started: float, n_devices: int = 1) -> None:
    """Write the model folder with the network's weights, those of the best epoch (the checkpoint stays in it)."""
    from ecgrhythm.networks.saving import save_model_dir

    portable, extras = plan.settings["data"], run.best["extras"]
    metadata = {
        "data": {"name": Path(data_dir).resolve().name, "path": None if Path(portable).is_absolute() else portable},
        "n_train": int(len(plan.train_idx)),
        "n_val": int(len(plan.val_idx)),
        "skipped_records": len(plan.data.failures),
        "unlabelled_records_left_out": len(plan.data.unlabelled),
        "label_source": "header" if plan.data.multilabel else "reference",
        "seed": plan.train_config.seed,
        "train_config": plan.train_config.to_dict(),
        "limit": plan.settings["limit"],
        "best_epoch": run.best["epoch"] + 1,
        "epochs_run": len(run.history),
        plan.score_name: run.best["score"],
        "val_f1": run.best["f1"],
        **{k: v for k, v in extras.items() if k != "thresholds"},
        "parameters": int(plan.model.count_params()),
        "train_seconds": round(run.train_seconds, 1),
        "devices": n_devices,
        "wall_seconds_this_session": round(time.perf_counter() - started, 1),
        "machine": describe_machine(),
    }
    files = {LOG_FILE: _log_text(run.history) if run.history else None, SPLIT_FILE: plan.split_text}
    save_model_dir(
        plan.model,
        output_dir,
        classes=plan.data.classes,
        preprocess=plan.preprocess,
        architecture=plan.architecture,
        metadata=metadata,
        thresholds=extras.get("thresholds"),
        extra_files={k: v for k, v in files.items() if v},
    )


def train(
    data_dir,
    output_dir,
    *,
    preprocess_config: PreprocessConfig | None = None,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    resume: bool = False,
    limit: int | None = None,
    labels: str = "auto",
    classes=None,
    unlabelled: str = "drop",
    verbose: int = 1,
    on_epoch: Callable[[dict], None] | None = None,
    devices=None,
    data: LabelledData | None = None,
    val_names=None,
) -> TrainResult:
    """Train a classifier on a labelled folder and write the best model to `output_dir`.

    Progress (one line per epoch and its validation score) goes to this module's logger at INFO.

    Args:
        data_dir: folder with records and a `REFERENCE.csv`, or records whose
            headers carry SNOMED-CT `# Dx:` codes (multi-label; see `load_labelled`).
        output_dir: model folder to write: a new or empty folder, or a model
            folder (other files in it are kept); anything else is refused
            before the data is read. `output_dir/checkpoint` holds the
            resumable state and `output_dir/training_log.csv` the per-epoch log.
        preprocess_config, model_config, train_config: settings (defaults if None);
            `model_config.network` names the network family.
        resume: continue from `output_dir/checkpoint` (settings must match).
        limit: use only the first `limit` labelled records.
        labels, classes, unlabelled: label source and classes (see `load_labelled`).
            Header codes train a multi-label model (sigmoid outputs, weighted
            binary cross-entropy, per-class thresholds tuned on validation).
        verbose: 1 shows Keras' progress bar, 0 is silent.
        on_epoch: called with each finished epoch's log row once its checkpoint
            is written; an exception raised there stops the run, which
            `resume=True` continues from the next epoch.
        devices: `None` for one device, or device names from
            :func:`ecgrhythm.training.parallel.resolve_devices` to train data-parallel over
            (each batch split across them; the count is not part of the
            run's settings that a resume checks). In a multi-process run
            (:func:`ecgrhythm.training.parallel.join_processes`) every process calls this
            with the same arguments; only process 0 writes `output_dir`, and a
            resume needs the checkpoint visible to every process.
        data: the records of `data_dir` as :func:`~ecgrhythm.training.data.load_labelled` read them with these
            settings, when the caller has them already (several runs on one data set).
        val_names: names of the validation records (the others train); default: a stratified
            split of `train_config.val_fraction` of the records.

    Returns:
        A :class:`TrainResult`.

    Raises:
        FileExistsError: `output_dir` holds other things, or a checkpoint without `resume`.
        ValueError: the batch does not split evenly over `devices`, or the processes of a
            multi-process run disagree on the checkpoint to resume from.
    """
    from ecgrhythm.networks.saving import check_output_folder
    from ecgrhythm.training.parallel import check_batch_size, data_parallel, is_primary, same_on_every_process

    output_dir = Path(output_dir)
    check_output_folder(output_dir)
    checkpoint = Checkpoint(output_dir, writes=is_primary())
    if checkpoint.folder.exists() and not resume:
        raise FileExistsError(f"{checkpoint.folder} exists: pass --resume to continue that run, or choose another --output")
    started = time.perf_counter()
    with data_parallel(devices):  # the network is built and trained with its variables on the devices
        plan = plan_run(
            data_dir,
            preprocess_config or PreprocessConfig(),
            model_config or ModelConfig(),
            train_config or TrainConfig(),
            limit=limit,
            labels=labels,
            classes=classes,
            unlabelled=unlabelled,
            data=data,
            val_names=val_names,
        )
        check_batch_size(plan.sequence.batch_size, devices)
        resuming = resume and checkpoint.has_state
        # every process has checked the output folder before process 0 writes into it
        same_on_every_process(resuming, f"whether {checkpoint.folder} holds a run to resume (every process must see it)")
        if resuming:
            run = checkpoint.restore(plan.model, plan.settings, plan.split_text)
        else:
            run = checkpoint.begin(plan.model, plan.split_text)
        same_on_every_process(run.epoch, f"the last finished epoch in {checkpoint.folder}")
        _run_epochs(plan, checkpoint, run, verbose, on_epoch)
        for var, value in zip(plan.model.variables, run.best_values, strict=True):
            var.assign(value)
    if checkpoint.writes:  # outside the distribution: the network that is saved is built without collective steps
        _save(plan, run, data_dir, output_dir, started, len(devices or ()) or 1)
    same_on_every_process(run.best["epoch"], "the best epoch")  # no process returns before process 0 has written the model
    return TrainResult(output_dir, run.best["epoch"] + 1, run.best["score"], run.best["f1"], run.history)
