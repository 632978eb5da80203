"""Training: seeded stratified split, class weighting, early stopping on the CinC score, resume.

A training run keeps its state in `OUTPUT/checkpoint/` after every epoch
(weights, optimiser state, history, best weights), so a run killed at any point
continues with `resume=True` from the last finished epoch and, with the same
seed, follows the same path as an uninterrupted run. The finished model folder
(see :mod:`ecgrhythm.saving`) holds the best epoch's weights.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from ._io import atomic_write, atomic_write_text
from ._machine import describe as describe_machine
from .batching import WindowSequence, bucket_lengths, window_length
from .config import ModelConfig, PreprocessConfig, TrainConfig
from .inference import predict_signals
from .labelled import load_labelled, stratified_split
from .metrics import score_probabilities
from .saving import SPLIT_FILE

__all__ = ["train", "fit_epoch", "TrainResult"]

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "training_log.csv"


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
    """What a training run produced: the model folder, its best validation scores and its history."""

    model_dir: Path
    best_epoch: int
    best_score: float
    val_f1: dict
    history: list


def _score(model, signals, targets, classes, buckets, multilabel):
    """Validation score, per-class F1 and extras (confusion matrix, or tuned thresholds)."""
    return score_probabilities(targets, predict_signals(model, signals, buckets), classes, multilabel)


STATE_FILE = "state.npz"


def _save_checkpoint(path: Path, state: dict, groups: dict) -> None:
    """Write the whole training state as one file, atomically: a kill leaves the old or the new state."""
    arrays = {f"{name}_{i}": np.asarray(a) for name, values in groups.items() for i, a in enumerate(values)}
    buffer = io.BytesIO()
    np.savez(buffer, state=np.array(json.dumps(state)), **arrays)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())


def _load_checkpoint(path: Path, sizes: dict) -> tuple[dict, dict]:
    """The state and array groups written by `_save_checkpoint`; `sizes` gives each group's expected length."""
    with np.load(path, allow_pickle=False) as data:
        state = json.loads(str(data["state"]))
        groups = {}
        for name, size in sizes.items():
            found = sum(1 for key in data.files if key.startswith(f"{name}_"))
            if found != size:
                raise ValueError(f"{path}: the checkpoint holds {found} {name} arrays, the network has {size}; it was made by another version")
            groups[name] = [data[f"{name}_{i}"] for i in range(size)]
    return state, groups


def _assign(variables, values) -> None:
    for var, value in zip(variables, values, strict=True):
        var.assign(value)


def _aside(output_dir: Path) -> Path:
    """Where the checkpoint waits while the finished model folder replaces `output_dir`."""
    return output_dir.parent / f".{output_dir.name}.checkpoint"


def _find_checkpoint(output_dir: Path) -> Path:
    """The checkpoint folder of a run, put back in place if a kill left it beside the output."""
    ckpt, aside = output_dir / CHECKPOINT_DIR, _aside(output_dir)
    if not (ckpt / STATE_FILE).is_file() and (aside / STATE_FILE).is_file():
        output_dir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(ckpt, ignore_errors=True)
        shutil.move(str(aside), ckpt)
    return ckpt


def _log_text(history: list[dict]) -> str:
    """The per-epoch log as CSV text."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(history[0]))
    writer.writeheader()
    writer.writerows(history)
    return out.getvalue()


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
) -> TrainResult:
    """Train a classifier on a labelled folder and write the best model to `output_dir`.

    Args:
        data_dir: folder with records and a `REFERENCE.csv`, or records whose
            headers carry SNOMED-CT `# Dx:` codes (multi-label; see `load_labelled`).
        output_dir: model folder to write; `output_dir/checkpoint` holds the
            resumable state and `output_dir/training_log.csv` the per-epoch log.
        preprocess_config, model_config, train_config: settings (defaults if None).
        resume: continue from `output_dir/checkpoint` (settings must match).
        limit: use only the first `limit` labelled records.
        labels, classes, unlabelled: label source and classes (see `load_labelled`).
            Header codes train a multi-label model (sigmoid outputs, weighted
            binary cross-entropy, per-class thresholds tuned on validation).
        verbose: 1 shows Keras' progress bar, 0 is silent.

    Returns:
        A :class:`TrainResult`.
    """
    import keras

    from .models import build_lstm_classifier
    from .saving import save_model_dir

    pre = preprocess_config or PreprocessConfig()
    arch = model_config or ModelConfig()
    tc = train_config or TrainConfig()
    output_dir = Path(output_dir)
    ckpt = _find_checkpoint(output_dir)
    settings = {"preprocess": pre.to_dict(), "model": arch.to_dict(), "train": tc.to_dict(), "limit": limit, "data": str(Path(data_dir).resolve()),
                "labels": labels, "classes": classes if isinstance(classes, (str, type(None))) else list(classes), "unlabelled": unlabelled}
    resuming = resume and (ckpt / STATE_FILE).is_file()
    if ckpt.exists() and not resume:
        raise FileExistsError(f"{ckpt} exists: pass --resume to continue that run, or choose another --output")

    keras.utils.set_random_seed(tc.seed)
    started = time.perf_counter()
    data = load_labelled(data_dir, pre, labels=labels, classes=classes, limit=limit, unlabelled=unlabelled)
    pre, multilabel = data.preprocess, data.multilabel
    score_name = "val_macro_f1" if multilabel else "val_cinc_score"
    arch = dataclasses.replace(arch, multilabel=multilabel)
    train_idx, val_idx = stratified_split(data.targets, tc.val_fraction, tc.seed)
    y_train, y_val = data.targets[train_idx], data.targets[val_idx]
    if multilabel:
        loss, sample_weight = weighted_binary_crossentropy(positive_weights(y_train, tc.class_weighting)), None
    else:
        loss = "sparse_categorical_crossentropy"
        sample_weight = class_weights(y_train, len(data.classes), tc.class_weighting)[y_train]
    window = window_length(tc.window_s, pre.fs, arch.downsampling)
    sequence = WindowSequence(
        [data.signals[i] for i in train_idx],
        y_train,
        window=window,
        batch_size=min(tc.batch_size, len(train_idx)),
        sample_weight=sample_weight,
        seed=tc.seed,
    )
    val_signals = [data.signals[i] for i in val_idx]
    buckets = bucket_lengths(pre.fs, arch.downsampling)

    n_leads = data.signals[0].shape[1]
    model = build_lstm_classifier(n_leads, len(data.classes), arch)
    model.compile(optimizer=keras.optimizers.Adam(tc.learning_rate), loss=loss)
    model.optimizer.build(model.trainable_variables)

    history: list[dict] = []
    best = {"epoch": -1, "score": -1.0, "f1": {}, "extras": {}}
    best_values = [v.numpy() for v in model.variables]
    start_epoch, train_seconds = 0, 0.0
    split_text = json.dumps({"train": [data.names[i] for i in train_idx], "val": [data.names[i] for i in val_idx]}) + "\n"
    if resuming:
        sizes = {"model": len(model.variables), "optimizer": len(model.optimizer.variables), "best": len(model.variables)}
        state, groups = _load_checkpoint(ckpt / STATE_FILE, sizes)
        if state["settings"] != json.loads(json.dumps(settings)):
            raise ValueError(f"{ckpt}: the checkpoint was made with other settings; train without --resume or with the same settings")
        if (ckpt / SPLIT_FILE).read_text() != split_text:
            raise ValueError(f"{ckpt}: the data folder has changed since the run started (another train/validation split); start a new run")
        _assign(model.variables, groups["model"])
        _assign(model.optimizer.variables, groups["optimizer"])
        best_values = groups["best"]
        history, best = state["history"], state["best"]
        start_epoch, train_seconds = state["epoch"] + 1, state["train_seconds"]
        logger.info("resuming at epoch %d (best %.4f at epoch %d)", start_epoch + 1, best["score"], best["epoch"] + 1)
    else:
        ckpt.mkdir(parents=True, exist_ok=True)
        atomic_write_text(ckpt / SPLIT_FILE, split_text)

    for epoch in range(start_epoch, tc.epochs):
        if best["epoch"] >= 0 and epoch - best["epoch"] > tc.patience:
            break
        t0 = time.perf_counter()
        if verbose:
            print(f"Epoch {epoch + 1}/{tc.epochs}", flush=True)
        fit = fit_epoch(model, sequence, epoch, tc, verbose=verbose)
        t1 = time.perf_counter()
        score, f1, extras = _score(model, val_signals, y_val, data.classes, buckets, multilabel)
        t2 = time.perf_counter()
        train_seconds += t2 - t0
        row = {"epoch": epoch + 1, "loss": round(float(fit.history["loss"][-1]), 5), score_name: round(score, 5)}
        row.update({f"val_f1_{c}": round(v, 5) for c, v in f1.items()})
        row.update({"fit_seconds": round(t1 - t0, 2), "val_seconds": round(t2 - t1, 2)})
        history.append(row)
        values = [v.numpy() for v in model.variables]
        if score > best["score"]:
            best, best_values = {"epoch": epoch, "score": score, "f1": f1, "extras": extras}, values
        if verbose:
            print(f"  val {'macro F1' if multilabel else 'CinC score'} {score:.4f} (best {best['score']:.4f} at epoch {best['epoch'] + 1}); {t2 - t0:.0f} s", flush=True)
        state = {"settings": settings, "epoch": epoch, "history": history, "best": best, "train_seconds": train_seconds}
        groups = {"model": values, "optimizer": [v.numpy() for v in model.optimizer.variables], "best": best_values}
        _save_checkpoint(ckpt / STATE_FILE, state, groups)
        atomic_write_text(output_dir / LOG_FILE, _log_text(history))

    _assign(model.variables, best_values)
    extras_scores = best["extras"]
    metadata = {
        "data": str(data_dir),
        "n_train": int(len(train_idx)),
        "n_val": int(len(val_idx)),
        "skipped_records": len(data.failures),
        "unlabelled_records_left_out": len(data.unlabelled),
        "label_source": "header" if multilabel else "reference",
        "seed": tc.seed,
        "train_config": tc.to_dict(),
        "limit": limit,
        "best_epoch": best["epoch"] + 1,
        "epochs_run": len(history),
        score_name: best["score"],
        "val_f1": best["f1"],
        **{k: v for k, v in extras_scores.items() if k != "thresholds"},
        "parameters": int(model.count_params()),
        "train_seconds": round(train_seconds, 1),
        "wall_seconds_this_session": round(time.perf_counter() - started, 1),
        "machine": describe_machine(),
    }
    files = {LOG_FILE: _log_text(history) if history else None, SPLIT_FILE: split_text}
    state_dir = _aside(output_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    shutil.move(str(ckpt), state_dir)  # keep the state out of the folder being replaced (a resume finds it there)
    try:
        save_model_dir(model, output_dir, classes=data.classes, preprocess=pre, architecture=arch, metadata=metadata,
                       thresholds=extras_scores.get("thresholds"), extra_files={k: v for k, v in files.items() if v})
    except BaseException:
        shutil.move(str(state_dir), ckpt)
        raise
    shutil.move(str(state_dir), output_dir / CHECKPOINT_DIR)
    return TrainResult(output_dir, best["epoch"] + 1, best["score"], best["f1"], history)
