"""Training: seeded stratified split, class weighting, early stopping on the CinC score, resume.

A run is a plan (:func:`~ecgrhythm.training.plan.plan_run`: settings, seeding, data, split, loss and
the compiled network), a checkpoint (:class:`~ecgrhythm.training.checkpoint.Checkpoint`,
`OUTPUT/checkpoint/`, written after every epoch) and the epoch loop (early stopping,
best weights). A run killed at any point continues with `resume=True` from the
last finished epoch and, with the same seed, follows the same path as an
uninterrupted run. The finished model folder (see :mod:`ecgrhythm.networks.saving`) holds
the best epoch's weights. Progress goes to this module's logger.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ecgrhythm.config import PreprocessConfig, TrainConfig
from ecgrhythm.networks.family import NetworkConfig
from ecgrhythm.networks.registry import default_config
from ecgrhythm.networks.saving import LOG_FILE, check_output_folder, save_model_dir
from ecgrhythm.networks.split import SPLIT_FILE
from ecgrhythm.preprocessing.batching import WindowSequence
from ecgrhythm.training.checkpoint import Checkpoint, RunState
from ecgrhythm.training.data import LabelledData
from ecgrhythm.training.history import log_text
from ecgrhythm.training.parallel import check_batch_size, data_parallel, is_primary, same_on_every_process
from ecgrhythm.training.plan import TrainingPlan, plan_run
from ecgrhythm.training.teacher import Teacher
from ecgrhythm.utils.io import atomic_write_text
from ecgrhythm.utils.machine import describe as describe_machine

__all__ = ["train", "fit_epoch", "cosine_learning_rate", "TrainResult", "NonFiniteLossError"]

logger = logging.getLogger(__name__)


class NonFiniteLossError(ValueError):
    """The training loss or the network's weights became NaN or infinite: the run stops, its checkpoint keeps the last finite epoch."""


def cosine_learning_rate(base: float, epoch: int, epochs: int, floor: float = 0.02) -> float:
    """Learning rate of `epoch` (0-based) on a cosine decay from `base` to `floor * base`."""
    return base * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * epoch / epochs)))


def fit_epoch(model, sequence: WindowSequence, epoch: int, config: TrainConfig, verbose: int = 0):
    """Train one epoch (0-based `epoch`) on the cosine schedule, with that epoch's windows.

    A batch whose loss is NaN or infinite ends the epoch there (`keras.callbacks.TerminateOnNaN`); the epoch's
    loss is then not finite, which :func:`train` refuses.

    Returns:
        The `keras.callbacks.History` of the epoch.
    """
    import keras

    model.optimizer.learning_rate.assign(cosine_learning_rate(config.learning_rate, epoch, config.epochs))
    sequence.set_epoch(epoch)
    return model.fit(sequence, epochs=1, verbose=verbose, shuffle=False, callbacks=[keras.callbacks.TerminateOnNaN()])


def _check_finite(loss: float, values: list[np.ndarray], epoch: int, run: RunState, checkpoint: Checkpoint) -> None:
    """Refuse an epoch whose loss or weights are not finite, before it is checkpointed (so the checkpoint keeps the last finite one)."""
    if np.isfinite(loss) and all(np.isfinite(v).all() for v in values if np.issubdtype(v.dtype, np.floating)):
        return
    kept = f"the checkpoint in {checkpoint.folder} keeps epoch {run.epoch + 1}" if run.epoch >= 0 else "no epoch was kept"
    what = f"the training loss is {loss}" if not np.isfinite(loss) else "the network's weights are not all finite"
    raise NonFiniteLossError(
        f"epoch {epoch + 1}: {what}: training diverged and stopped, and no model was saved ({kept}); lower `learning_rate` and start a new run"
    )


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


def _stops_early(tc: TrainConfig, run: RunState, epoch: int) -> bool:
    """Whether `tc.patience` epochs have passed without a better validation score before `epoch`."""
    best = run.best
    return tc.patience is not None and best["score"] is not None and best["epoch"] >= 0 and epoch - best["epoch"] > tc.patience


def _log_epoch(plan: TrainingPlan, run: RunState, score: float | None, seconds: float) -> None:
    if score is None:
        logger.info("  no validation records (every record trains); %.0f s", seconds)
        return
    kind = "macro F1" if plan.data.multilabel else "CinC score"
    logger.info("  val %s %.4f (best %.4f at epoch %d); %.0f s", kind, score, run.best["score"], run.best["epoch"] + 1, seconds)


def _run_epochs(plan: TrainingPlan, checkpoint: Checkpoint, run: RunState, verbose: int, on_epoch) -> None:
    """Train from the epoch after `run.epoch` until the last one or early stopping; checkpoint and log each epoch."""
    tc, model = plan.train_config, plan.model
    for epoch in range(run.epoch + 1, tc.epochs):
        if _stops_early(tc, run, epoch):
            logger.info("stopping early: no better validation score in %d epochs", tc.patience)
            break
        t0 = time.perf_counter()
        logger.info("Epoch %d/%d", epoch + 1, tc.epochs)
        fit = fit_epoch(model, plan.sequence, epoch, tc, verbose=verbose)
        t1 = time.perf_counter()
        loss, values = float(fit.history["loss"][-1]), [v.numpy() for v in model.variables]
        _check_finite(loss, values, epoch, run, checkpoint)
        score, f1, extras = plan.validate() if len(plan.val_idx) else (None, {}, {})  # no validation: the last epoch is kept
        t2 = time.perf_counter()
        run.train_seconds += t2 - t0
        row = {"epoch": epoch + 1, "loss": round(loss, 5), plan.score_name: None if score is None else round(score, 5)}
        row.update({f"val_f1_{c}": round(v, 5) for c, v in f1.items()})
        row.update({"fit_seconds": round(t1 - t0, 2), "val_seconds": round(t2 - t1, 2)})
        run.history.append(row)
        run.epoch = epoch
        if score is None or score > run.best["score"]:
            run.best, run.best_values = {"epoch": epoch, "score": score, "f1": f1, "extras": extras}, values
        _log_epoch(plan, run, score, t2 - t0)
        checkpoint.save(plan.settings, run, values, [v.numpy() for v in model.optimizer.variables])
        if checkpoint.writes:
            atomic_write_text(checkpoint.output_dir / LOG_FILE, log_text(run.history))
        if on_epoch is not None:
            on_epoch(row)


def _metadata(plan: TrainingPlan, run: RunState, data_dir, started: float, n_devices: int) -> dict:
    """The facts about the run that the model folder's `config.json` keeps as `metadata`."""
    portable, extras = plan.settings["data"], run.best["extras"]
    return {
        "data": {"name": Path(data_dir).resolve().name, "path": None if Path(portable).is_absolute() else portable},
        "n_train": int(len(plan.train_idx)),
        "n_val": int(len(plan.val_idx)),
        "skipped_records": len(plan.data.failures),
        "unlabelled_records_left_out": len(plan.data.unlabelled),
        "label_source": plan.data.source,
        "seed": plan.train_config.seed,
        "train_config": plan.train_config.to_dict(),
        **({"teacher": {**plan.settings["teacher"], "sources": list(plan.teacher.sources)}} if plan.teacher is not None else {}),
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


def _save(plan: TrainingPlan, run: RunState, data_dir, output_dir: Path, started: float, n_devices: int = 1) -> None:
    """Write the model folder with the network's weights, those of the best epoch (the checkpoint stays in it)."""

    files = {LOG_FILE: log_text(run.history) if run.history else None, SPLIT_FILE: plan.split_text}
    save_model_dir(
        plan.model,
        output_dir,
        classes=plan.data.classes,
        preprocess=plan.preprocess,
        architecture=plan.architecture,
        metadata=_metadata(plan, run, data_dir, started, n_devices),
        thresholds=run.best["extras"].get("thresholds"),
        extra_files={k: v for k, v in files.items() if v},
    )


def _open_checkpoint(output_dir: Path, resume: bool) -> Checkpoint:
    """The run's checkpoint, once `output_dir` is known to be one a run may write (see :func:`train`'s Raises)."""

    check_output_folder(output_dir)
    checkpoint = Checkpoint(output_dir, writes=is_primary())
    if checkpoint.folder.exists() and not resume:
        raise FileExistsError(f"{checkpoint.folder} exists: continue that run with `resume=True`, or choose another `output_dir`")
    return checkpoint


def _start_run(plan: TrainingPlan, checkpoint: Checkpoint, resume: bool) -> RunState:
    """Restore the checkpoint's state into the network (`resume` and one is there), or begin a new run; every process agrees."""

    resuming = resume and checkpoint.has_state
    # every process has checked the output folder before process 0 writes into it
    same_on_every_process(resuming, f"whether {checkpoint.folder} holds a run to resume (every process must see it)")
    run = checkpoint.restore(plan.model, plan.settings, plan.split_text) if resuming else checkpoint.begin(plan.model, plan.split_text)
    same_on_every_process(run.epoch, f"the last finished epoch in {checkpoint.folder}")
    return run


def train(
    data_dir,
    output_dir,
    *,
    preprocess_config: PreprocessConfig | None = None,
    model_config: NetworkConfig | None = None,
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
    teacher: Teacher | None = None,
) -> TrainResult:
    """Train a classifier on a labelled folder and write the best model to `output_dir`.

    Progress (one line per epoch and its validation score) goes to this module's logger at INFO.

    Args:
        data_dir: folder of labelled records (see :func:`~ecgrhythm.training.plan.plan_run`).
        output_dir: model folder to write: a new or empty folder, or a model folder (other files in it
            are kept); anything else is refused before the data is read. `output_dir/checkpoint` holds
            the resumable state and `output_dir/training_log.csv` the per-epoch log.
        preprocess_config, model_config, train_config: settings (defaults if None); `model_config` is the
            config of any registered network family (default: the CNN + LSTM's `ModelConfig()`).
        resume: continue from `output_dir/checkpoint` (settings must match).
        limit, labels, classes, unlabelled, data, val_names, teacher: which records train and validate, and a
            teacher's probabilities mixed into their targets, as for :func:`~ecgrhythm.training.plan.plan_run`.
        verbose: 1 shows Keras' progress bar (with terminal codes: for a terminal), 2 one plain line per epoch
            (for a log file), 0 is silent.
        on_epoch: called with each finished epoch's log row once its checkpoint is written; an exception
            raised there stops the run, which `resume=True` continues from the next epoch.
        devices: `None` for one device, or device names from :func:`ecgrhythm.training.parallel.resolve_devices`
            to train data-parallel over (each batch split across them; the count is not part of the run's
            settings that a resume checks). In a multi-process run (:func:`ecgrhythm.training.parallel.join_processes`)
            every process calls this with the same arguments; only process 0 writes `output_dir`, and a
            resume needs the checkpoint visible to every process.

    Returns:
        A :class:`TrainResult`.

    Raises:
        FileExistsError: `output_dir` holds other things, or a checkpoint without `resume`.
        ValueError: the batch does not split evenly over `devices`, or the processes of a
            multi-process run disagree on the checkpoint to resume from, or the checkpoint to resume from is
            damaged or states an impossible epoch (naming the file).
        NonFiniteLossError: the loss or the weights became NaN or infinite (no model is saved; the checkpoint
            keeps the last finite epoch).

    Example:
        >>> import ecgrhythm
        >>> quick = ecgrhythm.TrainConfig(epochs=2)                  # a run of seconds, to try it: not a useful model
        >>> result = ecgrhythm.train("../shared/data/cinc2017", "runs/mine", train_config=quick, limit=64)  # doctest: +SKIP
        >>> sorted(p.name for p in result.model_dir.iterdir())  # doctest: +SKIP
        ['checkpoint', 'checksums.json', 'config.json', 'model.weights.h5', 'split.json', 'training_log.csv']
        >>> ecgrhythm.RhythmClassifier.load("runs/mine").classes_  # doctest: +SKIP
        ['N', 'A', 'O', '~']
    """

    output_dir = Path(output_dir)
    checkpoint = _open_checkpoint(output_dir, resume)
    started = time.perf_counter()
    recipe = (preprocess_config or PreprocessConfig(), model_config or default_config(), train_config or TrainConfig())
    with data_parallel(devices):  # the network is built and trained with its variables on the devices
        chosen = {"limit": limit, "labels": labels, "classes": classes, "unlabelled": unlabelled, "data": data, "val_names": val_names}
        plan = plan_run(data_dir, *recipe, **chosen, teacher=teacher)
        check_batch_size(plan.sequence.batch_size, devices)
        run = _start_run(plan, checkpoint, resume)
        _run_epochs(plan, checkpoint, run, verbose, on_epoch)
        for var, value in zip(plan.model.variables, run.best_values, strict=True):
            var.assign(value)
    if checkpoint.writes:  # outside the distribution: the network that is saved is built without collective steps
        _save(plan, run, data_dir, output_dir, started, len(devices or ()) or 1)
    same_on_every_process(run.best["epoch"], "the best epoch")  # no process returns before process 0 has written the model
    return TrainResult(output_dir, run.best["epoch"] + 1, run.best["score"], run.best["f1"], run.history)
