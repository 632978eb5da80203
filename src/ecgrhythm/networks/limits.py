"""Bounds on what a model folder or an exported model states, checked before anything is read whole or built.

A model's `config.json` (in a model folder, or in an exported file's metadata) sets how much memory and time
loading and classifying take: the classes and leads size the network's input and output, the architecture its
layers (bounded by each family's config, see :mod:`ecgrhythm.networks.family`), the members how many networks
are averaged. :func:`checked_model_config` checks those numbers; :func:`check_file_size` caps a folder's files
before they are read or hashed. The bounds are far above the project's own models (4 classes, 1 lead, 3
networks of 1.25 MB in the shipped folder; 12 leads in the CinC 2021 data), and far below what would take
gigabytes.

Example:
>>> checked_model_config({"classes": ["N", "A"], "n_leads": 1, "preprocess": {"fs": 150.0}, "model": {"lstm_units": 8}})[1].lstm_units
8
>>> checked_model_config({"classes": ["N", "A"], "n_leads": 10**9, "preprocess": {}, "model": {}})
Traceback (most recent call last):
...
ValueError: Invalid argument `n_leads`: expected an integer from 1 to 64. Received: n_leads=1000000000
"""

from __future__ import annotations

import math
import numbers
from pathlib import Path

from ecgrhythm.config import PreprocessConfig, check_argument
from ecgrhythm.networks.family import NetworkConfig, check_whole
from ecgrhythm.networks.registry import config_from_dict

__all__ = [
    "checked_model_config",
    "check_file_size",
    "MAX_CLASSES",
    "MAX_MODEL_LEADS",
    "MAX_MEMBERS",
    "MAX_JSON_BYTES",
    "MAX_SPLIT_BYTES",
    "MAX_WEIGHTS_BYTES",
]

MAX_CLASSES = 256  # output classes: far above what ECG data sets label (the PhysioNet 2021 challenge scored some 30)
MAX_MODEL_LEADS = 64  # input leads: as many as a record may hold (ecgrhythm.records.core.MAX_LEADS); an ECG has at most 15
MAX_MEMBERS = 5  # networks averaged by one model folder or exported file at most
MAX_JSON_BYTES = 1 << 20  # config.json and checksums.json: the shipped ones are 4 KB and 362 bytes
MAX_SPLIT_BYTES = 64 << 20  # split.json: 72 KB for the 8,528 CinC 2017 names; this holds some 5 million
MAX_WEIGHTS_BYTES = 256 << 20  # one weights file: the largest network within the family bounds is about 220 MB; the shipped 1.25 MB


def check_file_size(path, limit: int, error: type[Exception] = ValueError) -> None:
    """Refuse a file over `limit` bytes before it is read.

    Raises:
        error: `PATH: N bytes, over the limit of M bytes for such a file ...`.
    """
    size = Path(path).stat().st_size
    if size > limit:
        raise error(f"{path}: {size:,} bytes, over the limit of {limit:,} bytes for such a file; it is not a model file of ecgrhythm")


def checked_model_config(config: dict) -> tuple[PreprocessConfig, NetworkConfig]:
    """The preprocessing and architecture of a model's `config.json`, its numbers checked against the bounds first.

    Args:
        config: the parsed `config.json`: `classes` (1 to :data:`MAX_CLASSES` distinct names), `n_leads` (1 to
            :data:`MAX_MODEL_LEADS`), optional `thresholds` (one in [0, 1] per class), `preprocess` and `model`.

    Returns:
        `(preprocess, architecture)`: a :class:`~ecgrhythm.config.PreprocessConfig` and the family's config.

    Raises:
        ValueError: a value out of bounds or of the wrong kind, naming the field (the caller names the file).
        KeyError: a field is missing.
    """
    classes = config["classes"]
    check_argument(
        isinstance(classes, list) and 1 <= len(classes) <= MAX_CLASSES and len(set(map(str, classes))) == len(classes),
        "classes",
        f"a list of 1 to {MAX_CLASSES} distinct class names",
        classes if not isinstance(classes, list) or len(classes) <= 10 else f"{len(classes):,} entries",
    )
    check_argument(all(isinstance(c, str) and 0 < len(c) <= 64 for c in classes), "classes", "names of 1 to 64 characters", classes)
    check_whole("n_leads", config["n_leads"], 1, MAX_MODEL_LEADS)
    thresholds = config.get("thresholds")
    check_argument(
        thresholds is None
        or (
            isinstance(thresholds, list)
            and len(thresholds) == len(classes)
            and all(isinstance(t, numbers.Real) and not isinstance(t, bool) and math.isfinite(t) and 0 <= t <= 1 for t in thresholds)
        ),
        "thresholds",
        f"none, or {len(classes)} numbers in [0, 1] (one per class)",
        thresholds,
    )
    for key in ("preprocess", "model"):
        check_argument(isinstance(config[key], dict), key, "a mapping of settings", type(config[key]).__name__)
    return PreprocessConfig.from_dict(config["preprocess"]), config_from_dict(config["model"])
