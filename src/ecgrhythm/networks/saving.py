"""A model folder: configuration JSON, weights, and checksums, written atomically.

Layout of a model folder::

    config.json          classes, leads (`n_leads`; the network takes `PreprocessConfig.n_channels(n_leads)` channels),
                         preprocessing, architecture (its network's name), training metadata
    model.weights.h5     Keras weights (no code: loading runs nothing from the file)
    member1.weights.h5   ... further networks of an ensemble (optional; see below)
    checksums.json       SHA-256 of config.json and every weights file, verified on load
    split.json           names of the training and validation records (optional; see :mod:`ecgrhythm.networks.split`)
    training_log.csv     per-epoch log of the training run (written by `ecgrhythm.training.trainer`)
    checkpoint/          the run's resumable state (written by `ecgrhythm.training.trainer`)

Weights are loaded into a network rebuilt from `config.json` by its family
(:mod:`ecgrhythm.networks.registry`), so a model folder never deserialises code. A folder may hold several networks of one architecture
whose probabilities are averaged: `config.json` then lists their weights files
as `"members"` (the first is `model.weights.h5`; absent means that file alone);
:func:`assemble_ensemble` writes such a folder. An optional `"temperature"`
(one number, or one per class; absent means 1) scales the probabilities as
`softmax(log p / T)`; with `"temperature_by": "predicted_class"` it holds one per class and each
row is scaled by the entry of its predicted class, which keeps every label (absent: each class's
column by its own entry). An optional `"class_prior"` (one positive number per class, summing to 1) multiplies
the probabilities before the temperature (see :func:`ecgrhythm.scoring.calibration.apply_class_prior`);
:func:`set_calibration` writes them into a folder. A new folder is written to a temporary sibling and
renamed into place, so it is either complete or absent; saving into an existing
model folder replaces its files one by one with `checksums.json` last (until
then the folder reads as incomplete) and leaves any other file in it alone.
Nothing is ever written into a folder that holds other things and is not a
model folder (see :func:`check_output_folder`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ecgrhythm.config import PreprocessConfig
from ecgrhythm.networks.family import NetworkConfig
from ecgrhythm.networks.limits import MAX_JSON_BYTES, MAX_MEMBERS, MAX_WEIGHTS_BYTES, check_file_size, checked_model_config
from ecgrhythm.networks.registry import build_network, config_from_dict
from ecgrhythm.networks.split import SPLIT_FILE, load_split, split_text
from ecgrhythm.scoring.calibration import (
    CALIBRATION_KEYS,
    TEMPERATURE_BY_PREDICTED_CLASS,
    checked_calibration,
    checked_class_prior,
    checked_temperature,
)

__all__ = [
    "save_model_dir",
    "read_config",
    "load_model_dir",
    "load_networks",
    "check_output_folder",
    "ModelFolderError",
    "WEIGHTS_FILE",
    "CONFIG_FILE",
    "CHECKPOINT_DIR",
    "LOG_FILE",
    "assemble_ensemble",
    "set_calibration",
    "MAX_MEMBERS",
    "is_finished",
]

WEIGHTS_FILE = "model.weights.h5"
CONFIG_FILE = "config.json"
CHECKSUM_FILE = "checksums.json"
LOG_FILE = "training_log.csv"
CHECKPOINT_DIR = "checkpoint"
FORMAT_VERSION = 1


class ModelFolderError(ValueError):
    """A model folder that is missing, incomplete, altered or of an unknown format."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_model_folder(path: Path) -> bool:
    """Whether `path` is a model folder of ours: finished (config and weights) or a run in progress (checkpoint)."""
    return ((path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()) or (path / CHECKPOINT_DIR).is_dir()


def is_finished(path) -> bool:
    """Whether the model folder at `path` was written to the end: `checksums.json` is placed last (see `_place`)."""
    return (Path(path) / CHECKSUM_FILE).is_file()


def check_output_folder(path) -> None:
    """Refuse a model output folder that exists and is neither empty nor a model folder.

    A missing or empty folder, or a model folder (finished, or holding a
    training checkpoint), may be written into; anything else (a data folder,
    a folder of runs) is refused before anything is read or written.

    Raises:
        FileExistsError: naming how many entries the folder holds and a few of them.
    """
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir():
        raise FileExistsError(f"output folder {path} is a file, not a folder: choose a new or empty folder, or a model folder")
    if _is_model_folder(path):
        return
    with os.scandir(path) as entries:
        names = sorted(entry.name for entry in entries)
    if names:
        shown = ", ".join(names[:3])
        raise FileExistsError(
            f"output folder {path} holds {len(names):,} other {'entry' if len(names) == 1 else 'entries'} such as {shown}, and is not a model "
            f"folder ({CONFIG_FILE} with {WEIGHTS_FILE}, or {CHECKPOINT_DIR}/): nothing was written; choose a new or empty folder"
        )


def save_model_dir(
    model, path, *, classes, preprocess: PreprocessConfig, architecture: NetworkConfig, metadata=None, thresholds=None, extra_files=None
) -> Path:
    """Write a complete model folder at `path`: a new folder, or over the files of a model folder there.

    Args:
        model: the trained `keras.Model`.
        path: destination folder.
        classes: class names, in output order.
        preprocess: preprocessing the model expects.
        architecture: the model's architecture (its family's config).
        metadata: JSON-serialisable facts about training (scores, times, ...).
        thresholds: per-class decision thresholds of a multi-label model.
        extra_files: mapping of file name to text, written into the folder too.

    Returns:
        The folder path.

    Raises:
        FileExistsError: `path` holds other things and is not a model folder (see :func:`check_output_folder`).
    """
    path = Path(path)
    check_output_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(path)
    try:
        n_channels = int(model.input["signal"].shape[-1])
        n_leads = n_channels - preprocess.interval_channels  # config.json counts the leads; the RR channel follows them
        if getattr(model, "optimizer", None) is not None:
            # a compiled model would also save its optimizer state: ship the weights alone
            clean = build_network(n_channels, len(classes), architecture)
            clean.set_weights(model.get_weights())
            model = clean
        model.save_weights(tmp / WEIGHTS_FILE)
        config = {
            "format_version": FORMAT_VERSION,
            "classes": list(classes),
            "n_leads": n_leads,
            "preprocess": preprocess.to_dict(),
            "model": architecture.to_dict(),
            "metadata": metadata or {},
        }
        if thresholds is not None:
            if len(thresholds) != len(classes):
                raise ValueError(f"{len(thresholds)} thresholds for {len(classes)} classes")
            config["thresholds"] = [float(t) for t in thresholds]
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        _place(tmp, path, {name: _sha256(tmp / name) for name in (CONFIG_FILE, WEIGHTS_FILE)})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _place(tmp: Path, path: Path, sums: dict) -> None:
    """Write `sums` (file name to SHA-256) as `tmp/checksums.json`, then put `tmp`'s files at `path`: the folder
    itself if `path` is new, else file by file with `checksums.json` last (until then the folder reads as incomplete)."""
    (tmp / CHECKSUM_FILE).write_text(json.dumps(sums, indent=2) + "\n", encoding="utf-8")
    if path.is_dir():
        (path / CHECKSUM_FILE).unlink(missing_ok=True)
        for name in [*(n for n in os.listdir(tmp) if n != CHECKSUM_FILE), CHECKSUM_FILE]:
            os.replace(tmp / name, path / name)
        tmp.rmdir()
    else:
        os.replace(tmp, path)


def _members(path: Path, config: dict) -> list[str]:
    """The weights files of a folder's networks: `config["members"]`, by default `model.weights.h5` alone."""
    members = config.get("members", [WEIGHTS_FILE])
    if (
        not isinstance(members, list)
        or not 1 <= len(members) <= MAX_MEMBERS
        or members[0] != WEIGHTS_FILE
        or len(set(members)) != len(members)
        or not all(isinstance(m, str) and m.endswith(".weights.h5") and Path(m).name == m for m in members)
    ):
        raise ModelFolderError(
            f'{path}: invalid "members" in {CONFIG_FILE}: expected 1 to {MAX_MEMBERS} distinct *.weights.h5 file names in the folder, '
            f"{WEIGHTS_FILE} first. Received: {members if not isinstance(members, list) or len(members) <= 10 else f'{len(members):,} names'!r}"
        )
    return members


def read_config(path: Path) -> dict:
    """`config.json` of a complete model folder whose files match their checksums, as stored (JSON values)."""
    for name in (CONFIG_FILE, WEIGHTS_FILE, CHECKSUM_FILE):
        if not (path / name).is_file():
            raise ModelFolderError(f"{path}: not a complete model folder ({name} is missing)")
    try:
        for name in (CONFIG_FILE, CHECKSUM_FILE):
            check_file_size(path / name, MAX_JSON_BYTES, ModelFolderError)
        sums = json.loads((path / CHECKSUM_FILE).read_text(encoding="utf-8"))
        if not isinstance(sums, dict) or _sha256(path / CONFIG_FILE) != sums.get(CONFIG_FILE):
            raise ModelFolderError(f"{path}: {CONFIG_FILE} does not match its checksum; the model folder was altered or damaged")
        config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        if config.get("format_version") != FORMAT_VERSION:
            raise ModelFolderError(f"{path}: unknown model format version {config.get('format_version')!r}")
        for name in _members(path, config):
            if not (path / name).is_file():
                raise ModelFolderError(f"{path}: not a complete model folder ({name} is missing)")
            check_file_size(path / name, MAX_WEIGHTS_BYTES, ModelFolderError)
            if _sha256(path / name) != sums.get(name):
                raise ModelFolderError(f"{path}: {name} does not match its checksum; the model folder was altered or damaged")
        try:
            config.update(checked_calibration(config, CONFIG_FILE))
        except ValueError as exc:
            raise ModelFolderError(f"{path}: {exc}; write the calibration again with 'ecgrhythm calibrate'") from None
        if checked_model_config(config)[1].multilabel and config["class_prior"] is not None:
            raise ModelFolderError(f'{path}: invalid "class_prior" in {CONFIG_FILE}: a multi-label model\'s sigmoid outputs take none; remove it')
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, ModelFolderError):
            raise
        raise ModelFolderError(f"{path}: invalid model configuration in {CONFIG_FILE}: {exc}") from None
    return config


def load_networks(path):
    """Load every network of a model folder written by :func:`save_model_dir` or :func:`assemble_ensemble`.

    Returns:
        `(networks, config)`: the `keras.Model` of each member with its weights (one for a plain folder),
        and the parsed `config.json` with `preprocess` and `model` as config objects, `temperature` set
        (1.0 when the folder has none), `temperature_by` set (None when absent, else "predicted_class") and
        `class_prior` set (None when absent).

    Raises:
        ModelFolderError: files are missing, checksums do not match, or the format is unknown.
    """
    path = Path(path)
    config = read_config(path)
    config["preprocess"], config["model"] = checked_model_config(config)
    networks = []
    for name in _members(path, config):
        try:
            network = build_network(config["preprocess"].n_channels(config["n_leads"]), len(config["classes"]), config["model"])
        except ValueError as exc:
            raise ModelFolderError(f"{path}: {exc}") from None
        network.load_weights(path / name)
        networks.append(network)
    return networks, config


def load_model_dir(path):
    """Load a model folder written by :func:`save_model_dir`.

    Returns:
        `(model, config)`: the (first) `keras.Model` with its weights, and the parsed `config.json` as :func:`load_networks` gives it.

    Raises:
        ModelFolderError: files are missing, checksums do not match, or the format is unknown.
    """
    networks, config = load_networks(path)
    return networks[0], config


def _new_sibling(path: Path) -> Path:
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model folder is an ordinary folder
    return tmp


def assemble_ensemble(model_dirs, output) -> Path:
    """Write a model folder whose networks are those of `model_dirs` (one each), their probabilities averaged.

    The folders must be plain model folders (one network each) with the same classes, preprocessing,
    architecture and leads; the first gives `config.json`, and its metadata records each member's folder
    name and metadata. The calibration (`temperature`, `temperature_by`, `class_prior`), if any, is left out: fit
    one on the ensemble's own probabilities.
    When every folder has a `split.json`, the ensemble's counts as training records those any member trained
    on, and as validation records those every member validated on and none trained on (for the models of
    all the folds of a cross-validation: every record trained, none left to validate).

    Args:
        model_dirs: 1 to :data:`MAX_MEMBERS` model folders.
        output: the folder to write: new or empty, or a model folder (its other files are kept).

    Returns:
        The folder path.

    Raises:
        ValueError: too many or too few folders, or folders that differ (named with the difference).
        ModelFolderError: a folder is incomplete or altered.
        FileExistsError: `output` holds other things (see :func:`check_output_folder`).
    """
    model_dirs, output = [Path(d) for d in model_dirs], Path(output)
    if not 1 <= len(model_dirs) <= MAX_MEMBERS:
        raise ValueError(f"an ensemble holds 1 to {MAX_MEMBERS} networks; {len(model_dirs)} model folders were given")
    check_output_folder(output)
    configs = [read_config(d) for d in model_dirs]
    for d, config in zip(model_dirs, configs):
        if len(_members(d, config)) != 1:
            raise ValueError(f"{d} already holds {len(config['members'])} networks: pass the folders of single networks")
        for key in ("classes", "n_leads", "preprocess", "model"):
            if config[key] != configs[0][key]:
                raise ValueError(f"{d}: its {key!r} differs from that of {model_dirs[0]}; an ensemble's networks must match")
    names = [WEIGHTS_FILE, *(f"member{i}.weights.h5" for i in range(1, len(model_dirs)))]
    config = {k: v for k, v in configs[0].items() if k not in CALIBRATION_KEYS}
    config["members"] = names
    config["metadata"] = {"ensemble_of": [{"folder": d.name, "metadata": c.get("metadata", {})} for d, c in zip(model_dirs, configs)]}
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_sibling(output)
    try:
        for d, name in zip(model_dirs, names):
            shutil.copyfile(d / WEIGHTS_FILE, tmp / name)
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        splits = [load_split(d) for d in model_dirs]
        if all(s is not None for s in splits):
            trained = set().union(*(s["train"] for s in splits))
            (tmp / SPLIT_FILE).write_text(split_text(sorted(trained), sorted(set.intersection(*(set(s["val"]) for s in splits)) - trained)))
        _place(tmp, output, {name: _sha256(tmp / name) for name in (CONFIG_FILE, *names)})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output


def set_calibration(path, temperature, *, per_predicted_class: bool = False, class_prior=None) -> Path:
    """Write a calibration into a model folder's `config.json`: a temperature, and optionally a class prior.

    `temperature` is one positive number, or one per class. With `per_predicted_class`, it has one entry per
    class, applied to the rows predicted as that class (`"temperature_by": "predicted_class"`, see
    :func:`ecgrhythm.scoring.calibration.apply_temperature`); without, that key is removed. `class_prior` (one positive
    number per class, summing to 1) multiplies the probabilities before the temperature
    (:func:`ecgrhythm.scoring.calibration.apply_class_prior`); None removes any the folder had.

    `config.json` and `checksums.json` are replaced together (the folder reads as incomplete in between,
    never as altered); the weights are not touched.

    Returns:
        The folder path.

    Raises:
        ModelFolderError: the folder is incomplete or altered.
        ValueError: the temperature is not positive or has the wrong length, the prior is not a distribution
            over the classes, or the model is multi-label (its sigmoid outputs are not calibrated this way).
    """
    path = Path(path)
    config = read_config(path)
    if config_from_dict(config["model"]).multilabel:
        raise ValueError(f"{path} is a multi-label model: temperature scaling and prior correction of softmax probabilities do not apply to it")
    array, n_classes = np.asarray(temperature, dtype=float), len(config["classes"])
    try:  # the rule a stored temperature is read back with
        config["temperature"], _ = checked_temperature(
            array.tolist(), TEMPERATURE_BY_PREDICTED_CLASS if per_predicted_class else None, n_classes, "the argument"
        )
    except ValueError:
        expected = f"{n_classes} positive numbers (one per predicted class)" if per_predicted_class else f"one positive number or {n_classes}"
        raise ValueError(f"Invalid argument `temperature`: expected {expected}. Received: {array.tolist()}") from None
    prior = class_prior.tolist() if isinstance(class_prior, np.ndarray) else class_prior
    try:
        prior = checked_class_prior(None if prior is None else list(prior), n_classes, "the argument")
    except (TypeError, ValueError):
        raise ValueError(f"Invalid argument `class_prior`: expected {n_classes} positive numbers summing to 1. Received: {class_prior!r}") from None
    for key in CALIBRATION_KEYS[1:]:
        config.pop(key, None)
    if per_predicted_class:
        config["temperature_by"] = TEMPERATURE_BY_PREDICTED_CLASS
    if prior is not None:
        config["class_prior"] = prior
    tmp = _new_sibling(path)
    try:
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        sums = {CONFIG_FILE: _sha256(tmp / CONFIG_FILE), **{name: _sha256(path / name) for name in _members(path, config)}}
        _place(tmp, path, sums)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
