"""`split.json`: the names of the records a model was trained and validated on.

Training writes it into the model folder (and its checkpoint folder); evaluation reads it to leave out
the records a model was trained on, and an ONNX export carries it in its metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

from ecgrhythm.networks.limits import MAX_SPLIT_BYTES, check_file_size
from ecgrhythm.utils.io import atomic_write_text
from ecgrhythm.utils.validation import checked_split

__all__ = ["SPLIT_FILE", "split_text", "write_split", "load_split"]

SPLIT_FILE = "split.json"


def split_text(train_names, val_names) -> str:
    """The text of a `split.json`: `{"train": [names], "val": [names]}` on one line."""
    return json.dumps({"train": [str(n) for n in train_names], "val": [str(n) for n in val_names]}) + "\n"


def write_split(folder, train_names, val_names) -> Path:
    """Write `folder/split.json` (the training and validation record names), atomically.

    Returns:
        The path written.
    """
    path = Path(folder) / SPLIT_FILE
    atomic_write_text(path, split_text(train_names, val_names))
    return path


def load_split(
    model_dir, *, fix: str = "repair it, or score every record, the training records too (`exclude_training=False`)"
) -> dict[str, list[str]] | None:
    """The train/validation split a model folder records (`split.json`, written by training).

    Args:
        model_dir: the model folder.
        fix: how to get past an invalid `split.json`, for the error message.

    Returns:
        `{"train": [names], "val": [names]}`, or `None` when the folder has no `split.json`.

    Raises:
        ValueError: `split.json` exists but is not such a mapping.
    """
    path = Path(model_dir) / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        check_file_size(path, MAX_SPLIT_BYTES)
        return checked_split(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: invalid split file ({exc}); {fix}") from None
