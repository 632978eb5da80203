"""Cross-validation: seeded stratified folds, one resumable training per fold, out-of-fold probabilities.

Layout of a cross-validation folder::

    crossval.json        the recipe (preprocessing, network, training settings) and the fold seed
    folds.json           the folds: record names of each, with the seed and classes that fixed them
    fold0/ ... foldK/    one model folder per fold (see :mod:`ecgrhythm.saving`), trained on the other
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
report of a finished cross-validation is :mod:`ecgrhythm.crossval_report`; it keeps a copy of the
folder without its networks (:func:`keep_run`: a few hundred kB), from which the report and the
calibration can be made again, and which, copied back into a lost folder, lets a rerun go on with the
folds not yet finished.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ._io import atomic_write, atomic_write_text
from .config import ModelConfig, PreprocessConfig, TrainConfig
from .labelled import LabelledData, load_labelled
from .saving import CHECKPOINT_DIR, is_finished

__all__ = [
    "make_folds",
    "Folds",
    "read_folds",
    "run_crossval",
    "CrossvalResult",
    "read_oof",
    "oof_text",
    "pooled_oof_text",
    "pool_oof",
    "finished_in_every",
    "claim_folder",
    "fold_dir",
    "FOLDS_FILE",
    "OOF_FILE",
    "LAST_OOF_FILE",
    "RECIPE_FILE",
    "last_epoch_network",
    "keep_run",
]

logger = logging.getLogger(__name__)

FOLDS_FILE = "folds.json"
RECIPE_FILE = "crossval.json"
OOF_FILE = "oof.csv"
LAST_OOF_FILE = "oof-last.csv"  # the out-of-fold probabilities of each fold network's last epoch


@dataclasses.dataclass
class Folds:
    """The folds of a cross-validation.

    Attributes:
        folds: record names of each fold, `n_folds` disjoint lists covering the records.
        seed: the seed that fixed them.
        classes: the class names.
        labels: record name to its class name.
    """

    folds: list[list[str]]
    seed: int
    classes: tuple[str, ...]
    labels: dict[str, str]

    @property
    def digest(self) -> str:
        """SHA-256 of the fold assignment: two cross-validations are paired fold by fold when their digests match."""
        return hashlib.sha256(json.dumps(self.folds).encode()).hexdigest()

    def to_text(self) -> str:
        return (
            json.dumps(
                {
                    "n_folds": len(self.folds),
                    "seed": self.seed,
                    "classes": list(self.classes),
                    "digest": self.digest,
                    "folds": self.folds,
                    "labels": self.labels,
                }
            )
            + "\n"
        )


def make_folds(data: LabelledData, n_folds: int, seed: int) -> Folds:
    """Seeded stratified folds of single-label records: each fold holds about `1 / n_folds` of every class.

    Args:
        data: the labelled records (one label each).
        n_folds: number of folds, at least 2 and at most the records of the rarest class.
        seed: fixes the shuffle; the same records and seed give the same folds.

    Returns:
        The :class:`Folds`, each fold's names in the data's order.

    Raises:
        ValueError: multi-label data, or `n_folds` out of range.
    """
    from sklearn.model_selection import StratifiedKFold

    if data.multilabel:
        raise ValueError("cross-validation takes records with one label each (a REFERENCE.csv folder); this folder's labels are header codes")
    counts = np.bincount(data.targets)
    smallest = int(counts[counts > 0].min())
    if not 2 <= n_folds <= smallest:
        raise ValueError(f"Invalid argument `folds`: expected 2 to {smallest} (records of the rarest class present). Received: folds={n_folds}")
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    folds = [[data.names[i] for i in np.sort(held_out)] for _, held_out in splitter.split(np.zeros(len(data.targets)), data.targets)]
    labels = {name: data.classes[t] for name, t in zip(data.names, data.targets)}
    return Folds(folds, int(seed), tuple(data.classes), labels)


def read_folds(output) -> Folds:
    """The folds saved in a cross-validation folder (its `folds.json`).

    Raises:
        FileNotFoundError: the folder has no `folds.json`.
        ValueError: the file is not a folds file.
    """
    path = Path(output) / FOLDS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: write the folds with 'ecgrhythm crossval --output {Path(output)} --folds-only'")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Folds([list(map(str, f)) for f in raw["folds"]], int(raw["seed"]), tuple(raw["classes"]), dict(raw["labels"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a folds file ({exc}); remove it to write the folds again") from None


def fold_dir(output, k: int) -> Path:
    """The model folder of fold `k` (0-based)."""
    return Path(output) / f"fold{k}"


def finished_in_every(members) -> tuple[Folds, list[int]]:
    """`(folds, finished)`: the folds shared by the cross-validation folders `members` and the folds whose `oof.csv`
    every member has, in order.

    Raises:
        ValueError: a member has other folds than the first, or no fold is finished in every member.
    """
    members = [Path(m) for m in members]
    folds = read_folds(members[0])
    for member in members[1:]:
        if read_folds(member).digest != folds.digest:
            raise ValueError(f"{member}: other folds than {members[0]}")
    finished = [k for k in range(len(folds.folds)) if all((fold_dir(m, k) / OOF_FILE).is_file() for m in members)]
    if not finished:
        raise ValueError(f"no fold is finished in every one of {[str(m) for m in members]}: run their cross-validations first")
    return folds, finished


def _recipe(pre: PreprocessConfig, arch: ModelConfig, tc: TrainConfig, *, n_folds: int, fold_seed: int, limit, labels, classes) -> dict:
    return {
        "preprocess": pre.to_dict(),
        "model": arch.to_dict(),
        "train": tc.to_dict(),
        "folds": n_folds,
        "fold_seed": fold_seed,
        "limit": limit,
        "labels": labels,
        "classes": classes if isinstance(classes, (str, type(None))) else list(classes),
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
                f"rerun it with the same options, or choose another --output"
            )
    if folds_path.is_file() and read_folds(output).folds != folds.folds:
        raise ValueError(f"{folds_path}: the saved folds differ from those of these records (the data folder changed?); choose another --output")
    if not recipe_path.is_file():
        atomic_write_text(recipe_path, json.dumps(recipe, indent=2) + "\n")
    if not folds_path.is_file():
        atomic_write_text(folds_path, folds.to_text())


def oof_text(names, fold: int, truth, probabilities: np.ndarray, classes) -> str:
    """Out-of-fold rows `record,fold,true_label,<one probability column per class>` as CSV text (with the header)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["record", "fold", "true_label", *classes])
    for name, label, row in zip(names, truth, probabilities):
        writer.writerow([name, fold, label, *(f"{p:.6f}" for p in row)])
    return out.getvalue()


def read_oof(path) -> tuple[list[str], np.ndarray, list[str], np.ndarray, list[str]]:
    """An out-of-fold CSV (a fold's or the pooled `oof.csv`).

    Returns:
        `(names, folds (n,), true labels, probabilities (n, n_classes), classes)`.

    Raises:
        ValueError: the file is not such a CSV.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows or rows[0][:3] != ["record", "fold", "true_label"] or len(rows) < 2:
        raise ValueError(f"{path}: not an out-of-fold probability file (record,fold,true_label,<classes> with one row per record)")
    classes = rows[0][3:]
    try:
        probs = np.array([[float(v) for v in r[3:]] for r in rows[1:]], dtype=float).reshape(len(rows) - 1, len(classes))
        folds = np.array([int(r[1]) for r in rows[1:]])
    except ValueError as exc:
        raise ValueError(f"{path}: not an out-of-fold probability file ({exc})") from None
    return [r[0] for r in rows[1:]], folds, [r[2] for r in rows[1:]], probs, classes


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
        A :class:`ecgrhythm.inference.RhythmClassifier`.

    Raises:
        FileNotFoundError: the folder has no checkpoint (not a single network's fold folder, or its checkpoint was removed).
        ValueError: the checkpoint is unreadable or does not fit the network, or its kept weights are not the folder's
            (it belongs to another run).
    """
    from .checkpoint import STATE_FILE
    from .inference import RhythmClassifier

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
    probs = clf.predict_proba([data.signals[index[n]] for n in names], calibrated=False)
    atomic_write_text(model_dir / filename, oof_text(names, k, [folds.labels[n] for n in names], probs, data.classes))


def run_crossval(
    data_dir,
    output,
    *,
    n_folds: int = 5,
    fold_seed: int = 0,
    preprocess_config: PreprocessConfig | None = None,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    limit: int | None = None,
    labels: str = "auto",
    classes=None,
    only=None,
    folds_only: bool = False,
    verbose: int = 0,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> CrossvalResult:
    """Cross-validate a training recipe: one training per fold, each validated (and its best epoch chosen) on its held-out fold.

    Args:
        data_dir: folder of records with a `REFERENCE.csv`.
        output: the cross-validation folder (see the module docstring); rerunning continues it.
        n_folds: number of folds.
        fold_seed: fixes the folds (kept apart from the training seed, so recipes are compared on the same folds).
        preprocess_config, model_config, train_config: the recipe, as for :func:`ecgrhythm.training.train`
            (`train_config.val_fraction` is unused: each fold's validation records are the fold).
        limit: use only the first `limit` labelled records.
        labels, classes: as for :func:`ecgrhythm.labelled.load_labelled`.
        only: 0-based folds to run (default: all), to spread the folds over machines.
        folds_only: write `crossval.json` and `folds.json` and train nothing.
        verbose: Keras' progress bar (1) or none (0).
        on_epoch: called with `(fold, log row)` after each epoch (an exception there stops the run; rerunning resumes).

    Returns:
        A :class:`CrossvalResult`.

    Raises:
        ValueError: settings or folds differ from those the folder was started with, or `only` names no fold.
    """
    from .inference import RhythmClassifier
    from .training import train

    output = Path(output)
    chosen = range(n_folds) if only is None else sorted(set(only))
    if any(not 0 <= k < n_folds for k in chosen):
        raise ValueError(f"Invalid argument `fold`: expected fold numbers 0 to {n_folds - 1}. Received: {list(chosen)}")
    pre, arch, tc = preprocess_config or PreprocessConfig(), model_config or ModelConfig(), train_config or TrainConfig()
    data = load_labelled(data_dir, pre, labels=labels, classes=classes, limit=limit)
    folds = make_folds(data, n_folds, fold_seed)
    claim_folder(output, _recipe(pre, arch, tc, n_folds=n_folds, fold_seed=fold_seed, limit=limit, labels=labels, classes=classes), folds)
    trained = []
    for k in [] if folds_only else chosen:
        model_dir = fold_dir(output, k)
        done = (model_dir / OOF_FILE).is_file()
        if not done and not is_finished(model_dir):
            logger.info(
                "fold %d of %d: training on %d records, validating on %d", k + 1, n_folds, len(data.names) - len(folds.folds[k]), len(folds.folds[k])
            )
            train(
                data_dir,
                model_dir,
                preprocess_config=pre,
                model_config=arch,
                train_config=tc,
                resume=True,
                limit=limit,
                labels=labels,
                classes=classes,
                verbose=verbose,
                data=data,
                val_names=folds.folds[k],
                on_epoch=None if on_epoch is None else (lambda row, k=k: on_epoch(k, row)),
            )
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
    from .saving import CONFIG_FILE, LOG_FILE

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


def pool_oof(output: Path, n_folds: int) -> Path | None:
    """Write `output/oof.csv` once every fold's `oof.csv` is there (their rows in fold order), and then
    `output/oof-last.csv` if every fold has its `oof-last.csv`. A pooled file whose folds are not all there (one was
    removed to be trained again, or lost its last-epoch probabilities) is removed: it would hold what they replace.

    Returns:
        The pooled `oof.csv`, or `None` while some fold is unfinished.
    """
    if not _pool(output, n_folds, OOF_FILE):
        return None
    _pool(output, n_folds, LAST_OOF_FILE)
    return output / OOF_FILE


def _pool(output: Path, n_folds: int, filename: str) -> bool:
    """Write `output/filename` from every fold's file of that name, if all are there, else remove it; whether it did."""
    paths = [fold_dir(output, k) / filename for k in range(n_folds)]
    if not all(path.is_file() for path in paths):
        (output / filename).unlink(missing_ok=True)
        return False
    atomic_write_text(output / filename, pooled_oof_text([path.read_text(encoding="utf-8") for path in paths]))
    return True


def pooled_oof_text(texts) -> str:
    """One out-of-fold CSV text from several (:func:`oof_text`, one per fold, same classes): the first header, then every row in order."""
    parts = [text.splitlines(keepends=True) for text in texts]
    return "".join([parts[0][0], *(line for part in parts for line in part[1:])])
