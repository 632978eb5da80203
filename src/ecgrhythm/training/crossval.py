"""Cross-validation: seeded stratified folds, one resumable training per fold, out-of-fold probabilities.

Layout of a cross-validation folder::

    crossval.json        the recipe (preprocessing, network, training settings) and the fold seed
    folds.json           the folds: record names of each, with the seed and classes that fixed them
    fold0/ ... foldK/    one model folder per fold (see :mod:`ecgrhythm.networks.saving`), trained on the other
                         folds with this fold as its validation records (early stopping and the best
                         epoch chosen on it, as `ecgrhythm train` does); `foldK/oof.csv` holds the
                         fold's out-of-fold probabilities once the fold is finished, and
                         `foldK/oof-last.csv` those of the network's last epoch (from its checkpoint):
                         what a network trained that many epochs and kept at the last scores
    oof.csv              every record's out-of-fold probabilities, once every fold is finished
    oof-last.csv         the same at each network's last epoch

Rerunning continues: a finished fold (its `oof.csv` written) is not trained again (the rerun
writes its `oof-last.csv` if missing, for the folds it runs), an interrupted one resumes from its
checkpoint, and a rerun with another recipe or other folds is refused. The
report of a finished cross-validation is :mod:`ecgrhythm.lab.crossval_report`; it keeps a copy of the
folder without its networks (:func:`keep_run`: a few hundred kB), from which the report and the
calibration can be made again, and which, copied back into a lost folder, lets a rerun go on with the
folds not yet finished.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ecgrhythm.config import PreprocessConfig, TrainConfig
from ecgrhythm.networks.family import NetworkConfig
from ecgrhythm.networks.registry import default_config
from ecgrhythm.networks.saving import CHECKPOINT_DIR, CONFIG_FILE, LOG_FILE, is_finished
from ecgrhythm.training.data import LabelledData, load_labelled
from ecgrhythm.training.folds import FOLDS_FILE, RECIPE_FILE, Folds, fold_dir, make_folds, read_folds
from ecgrhythm.training.oof import LAST_OOF_FILE, OOF_FILE, oof_text, pool_oof
from ecgrhythm.training.teacher import Teacher
from ecgrhythm.utils.io import atomic_write, atomic_write_text

__all__ = [
    "run_crossval",
    "CrossvalResult",
    "claim_folder",
    "RECIPE_FILE",
    "last_epoch_network",
    "keep_run",
]

logger = logging.getLogger(__name__)


def _recipe(pre: PreprocessConfig, arch: NetworkConfig, tc: TrainConfig, *, n_folds: int, fold_seed: int, teacher, limit, labels, classes) -> dict:
    return {
        "preprocess": pre.to_dict(),
        "model": arch.to_dict(),
        "train": tc.to_dict(),
        "folds": n_folds,
        "fold_seed": fold_seed,
        "limit": limit,
        "labels": labels,
        "classes": classes if isinstance(classes, (str, type(None))) else list(classes),
        **({"teacher": teacher.settings()} if teacher is not None else {}),
    }


def claim_folder(output: Path, recipe: dict, folds: Folds) -> None:
    """Write the recipe and the folds into `output`, or check that those there are the same."""
    output.mkdir(parents=True, exist_ok=True)
    recipe_path, folds_path = output / RECIPE_FILE, output / FOLDS_FILE
    if recipe_path.is_file():
        stored = json.loads(recipe_path.read_text(encoding="utf-8"))
        if stored != json.loads(json.dumps(recipe)):
            changed = sorted(k for k in set(stored) | set(recipe) if stored.get(k) != json.loads(json.dumps(recipe.get(k))))
            raise ValueError(
                f"{recipe_path}: this cross-validation was run with other settings ({', '.join(changed)} differ); "
                f"rerun it with the same settings, or choose another `output` folder"
            )
    if folds_path.is_file() and read_folds(output).folds != folds.folds:
        raise ValueError(
            f"{folds_path}: the saved folds differ from those of these records (the data folder changed?); choose another `output` folder"
        )
    if not recipe_path.is_file():
        atomic_write_text(recipe_path, json.dumps(recipe, indent=2) + "\n")
    if not folds_path.is_file():
        atomic_write_text(folds_path, folds.to_text())


@dataclasses.dataclass
class CrossvalResult:
    """What a call of :func:`run_crossval` left: the folds, which are finished, and the pooled file once all are.

    Attributes:
        output: the cross-validation folder.
        folds: its :class:`Folds`.
        finished: 0-based indices of the finished folds.
        trained: those this call trained (or resumed).
        oof_path: the pooled `oof.csv`, or `None` while some fold is unfinished.
    """

    output: Path
    folds: Folds
    finished: list[int]
    trained: list[int]
    oof_path: Path | None


def last_epoch_network(model_dir):
    """The fold network of `model_dir` with the weights of its last epoch, from its checkpoint.

    A fold's model folder keeps the epoch chosen on the fold itself; its `checkpoint/` also holds the weights
    after the last epoch, chosen by nothing, which are those a training on every record keeps
    (`ecgrhythm train --val-fraction 0`).

    Returns:
        A :class:`ecgrhythm.inference.classifier.RhythmClassifier`.

    Raises:
        FileNotFoundError: the folder has no checkpoint (not a single network's fold folder, or its checkpoint was removed).
        ValueError: the checkpoint is unreadable or does not fit the network, or its kept weights are not the folder's
            (it belongs to another run).
    """
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.training.checkpoint import STATE_FILE

    model_dir = Path(model_dir)
    path = model_dir / CHECKPOINT_DIR / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {model_dir} is not the fold folder of a single network trained by 'ecgrhythm crossval'")
    clf = RhythmClassifier.load(model_dir)
    variables = clf.model_.variables
    try:
        with np.load(path, allow_pickle=False) as state:
            kept = [state[f"best_{i}"] for i in range(len(variables))]
            last = [state[f"model_{i}"] for i in range(len(variables))]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a checkpoint of this fold's network ({type(exc).__name__}: {exc})") from None
    for variable, value, latest in zip(variables, kept, last, strict=True):
        if np.shape(value) != tuple(variable.shape) or np.shape(latest) != tuple(variable.shape):
            raise ValueError(f"{path}: not a checkpoint of this fold's network (a weight of another shape)")
        if "seed_generator" not in variable.path and not np.array_equal(np.asarray(variable), value):  # dropout's seeds are not saved
            raise ValueError(f"{model_dir}: its checkpoint's kept weights are not the folder's; the checkpoint belongs to another run")
    for variable, value in zip(variables, last, strict=True):
        variable.assign(value)
    return clf


def _write_fold_oof(model_dir: Path, filename: str, clf, data: LabelledData, folds: Folds, k: int) -> None:
    """Write `model_dir/filename`: `clf`'s probabilities (uncalibrated) of fold `k`'s records."""
    index = {n: i for i, n in enumerate(data.names)}
    names = folds.folds[k]
    probs = clf.predict_prepared([data.signals[index[n]] for n in names], calibrated=False)
    atomic_write_text(model_dir / filename, oof_text(names, k, [folds.labels[n] for n in names], probs, data.classes))


def run_crossval(
    data_dir,
    output,
    *,
    n_folds: int = 5,
    fold_seed: int = 0,
    preprocess_config: PreprocessConfig | None = None,
    model_config: NetworkConfig | None = None,
    train_config: TrainConfig | None = None,
    limit: int | None = None,
    labels: str = "auto",
    classes=None,
    only=None,
    folds_only: bool = False,
    verbose: int = 0,
    on_epoch: Callable[[int, dict], None] | None = None,
    teacher: Teacher | None = None,
) -> CrossvalResult:
    """Cross-validate a training recipe: one training per fold, each validated (and its best epoch chosen) on its held-out fold.

    Args:
        data_dir: folder of records with a `REFERENCE.csv`.
        output: the cross-validation folder (see the module docstring); rerunning continues it.
        n_folds: number of folds.
        fold_seed: fixes the folds (kept apart from the training seed, so recipes are compared on the same folds).
        preprocess_config, model_config, train_config: the recipe, as for :func:`ecgrhythm.training.trainer.train`
            (`train_config.val_fraction` is unused: each fold's validation records are the fold).
        limit: use only the first `limit` labelled records.
        labels, classes: as for :func:`ecgrhythm.training.data.load_labelled`.
        only: 0-based folds to run (default: all), to spread the folds over machines.
        folds_only: write `crossval.json` and `folds.json` and train nothing.
        verbose: Keras' progress bar (1, for a terminal), one plain line per epoch (2, for a log file) or none (0).
        on_epoch: called with `(fold, log row)` after each epoch (an exception there stops the run; rerunning resumes).
        teacher: probabilities mixed into every fold's training targets (:mod:`ecgrhythm.training.teacher`, whose
            docstring says why a teacher's out-of-fold probabilities make the estimate slightly optimistic).

    Returns:
        A :class:`CrossvalResult`.

    Raises:
        ValueError: settings or folds differ from those the folder was started with, `only` names no fold, or the
            teacher cannot teach the records (:meth:`~ecgrhythm.training.teacher.Teacher.check`).
    """
    from ecgrhythm.inference.classifier import RhythmClassifier
    from ecgrhythm.training.trainer import train

    output = Path(output)
    chosen = range(n_folds) if only is None else sorted(set(only))
    if any(not 0 <= k < n_folds for k in chosen):
        raise ValueError(f"Invalid argument `only` (the folds to run): expected fold numbers 0 to {n_folds - 1}. Received: only={list(chosen)}")
    pre, arch, tc = preprocess_config or PreprocessConfig(), model_config or default_config(), train_config or TrainConfig()
    data = load_labelled(data_dir, pre, labels=labels, classes=classes, limit=limit)
    folds = make_folds(data, n_folds, fold_seed)
    if teacher is not None:  # every record trains in some fold: refused before the folder is claimed for the recipe
        teacher.check(data.names, data.targets, data.classes, tc.class_weighting)
    selection = {"limit": limit, "labels": labels, "classes": classes}
    claim_folder(output, _recipe(pre, arch, tc, n_folds=n_folds, fold_seed=fold_seed, teacher=teacher, **selection), folds)
    recipe = {"preprocess_config": pre, "model_config": arch, "train_config": tc, "teacher": teacher, "data": data, **selection}
    trained = []
    for k in [] if folds_only else chosen:
        model_dir = fold_dir(output, k)
        done = (model_dir / OOF_FILE).is_file()
        if not done and not is_finished(model_dir):
            logger.info(
                "fold %d of %d: training on %d records, validating on %d", k + 1, n_folds, len(data.names) - len(folds.folds[k]), len(folds.folds[k])
            )
            fold_epoch = None if on_epoch is None else (lambda row, k=k: on_epoch(k, row))
            train(data_dir, model_dir, resume=True, verbose=verbose, val_names=folds.folds[k], on_epoch=fold_epoch, **recipe)
            trained.append(k)
        if not done:
            _write_fold_oof(model_dir, OOF_FILE, RhythmClassifier.load(model_dir), data, folds, k)  # the fold reads as finished
        if not (model_dir / LAST_OOF_FILE).is_file():  # also for folds finished before this file was written
            _write_last_epoch_oof(model_dir, data, folds, k)
    finished = [k for k in range(n_folds) if (fold_dir(output, k) / OOF_FILE).is_file()]
    return CrossvalResult(output, folds, finished, trained, pool_oof(output, n_folds))


def _write_last_epoch_oof(model_dir: Path, data: LabelledData, folds: Folds, k: int) -> None:
    """Write the fold's `oof-last.csv` (:func:`last_epoch_network`), or log why not where the fold has no usable checkpoint:
    the file is an extra, which must not stop the fold's `oof.csv` and the report."""
    try:
        clf = last_epoch_network(model_dir)
    except (FileNotFoundError, ValueError) as exc:
        logger.warning("fold %d: no %s written: %s", k, LAST_OOF_FILE, exc)
        return
    _write_fold_oof(model_dir, LAST_OOF_FILE, clf, data, folds, k)


def keep_run(output, dest) -> list[str]:
    """Copy what a cross-validation folder's report and calibration read, without its networks, into `dest` (same layout):
    `crossval.json`, `folds.json`, and of each finished fold its `config.json`, training log, `oof.csv` and `oof-last.csv`.

    Each file is written atomically. Files of `dest` that `output` lacks (folds kept from an earlier run of the same
    recipe on the same folds) are left as they are, so copying `dest` back into `output` restores every kept fold.

    Returns:
        The copied files, relative to `dest`.

    Raises:
        ValueError: `dest` holds the run of another recipe or other folds (nothing is copied).
    """

    output, dest = Path(output), Path(dest)
    for name in (RECIPE_FILE, FOLDS_FILE):
        kept = dest / name
        if kept.is_file() and kept.read_bytes() != (output / name).read_bytes():
            raise ValueError(f"{kept}: kept from another recipe or other folds than {output / name}; keep this run under another name")
    files = [RECIPE_FILE, FOLDS_FILE]
    for k in range(len(read_folds(output).folds)):
        fold = fold_dir(output, k)
        if (fold / OOF_FILE).is_file():  # finished
            files += [f"{fold.name}/{name}" for name in (CONFIG_FILE, LOG_FILE, OOF_FILE, LAST_OOF_FILE) if (fold / name).is_file()]
    for name in files:
        with atomic_write(dest / name, "wb") as f:
            f.write((output / name).read_bytes())
    return files
