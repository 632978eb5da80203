"""Argument checks shared by every stage, with the error wording of the rest of the package."""

from __future__ import annotations

import numpy as np


def check_positive_int(name: str, value, *, optional: bool = False) -> None:
    """Raise `ValueError` unless `value` is a whole number of at least 1 (`None` too when `optional`).

    Python and NumPy integers pass; `bool`, floats (even `2.0`) and strings do not.
    """
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        expected = "a positive integer or None" if optional else "a positive integer"
        raise ValueError(f"Invalid argument `{name}`: expected {expected}. Received: {name}={value!r}")


def checked_split(split) -> dict[str, list[str]]:
    """The train/validation split `{"train": [names], "val": [names]}` of a model, as parsed JSON, checked.

    Returns:
        A new dict with both keys (a missing one: no names), every name as a string.

    Raises:
        ValueError: `split` is not such a mapping (the caller names where it came from).
    """
    if not isinstance(split, dict) or not all(isinstance(split.get(k, []), list) for k in ("train", "val")):
        raise ValueError("expected {'train': [names], 'val': [names]}")
    return {k: [str(v) for v in split.get(k, [])] for k in ("train", "val")}
