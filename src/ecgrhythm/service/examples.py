"""The example records the service's page offers: a few records of a folder, with their `REFERENCE.csv` labels."""

from __future__ import annotations

import logging
from pathlib import Path

from ecgrhythm.records import RecordError, find_records, read_reference

__all__ = ["find_examples", "N_EXAMPLES"]

logger = logging.getLogger(__name__)

N_EXAMPLES = 8


def find_examples(folder=None, n: int = N_EXAMPLES) -> dict[str, tuple[Path, str | None]]:
    """Up to `n` records of `folder`, as many of each reference class as fit (two each of the four CinC 2017 classes).

    Args:
        folder: folder of records (default: the CinC 2017 data of :func:`ecgrhythm.config.default_data_dir`).
        n: the most records to offer.

    Returns:
        Record name to `(record file, reference label or None)`, in the folder's order; empty when the
        folder is missing. Labels come from the folder's `REFERENCE.csv`; one that cannot be read is
        ignored with a warning, and slots that no class fills are filled in index order.
    """
    if folder is None:
        from ecgrhythm.config import default_data_dir

        root = default_data_dir()
        folder = root / "cinc2017" if root is not None else None
    if folder is None or not Path(folder).is_dir():
        return {}
    folder = Path(folder)
    paths = [p for p in find_records([folder]) if p.is_file()]
    labels = _labels(folder / "REFERENCE.csv")
    per_class = max(1, n // max(1, len(set(labels.values()))))
    chosen, taken = [], {}
    for path in paths:
        label = labels.get(path.stem)
        if taken.get(label, 0) < per_class:
            chosen.append(path)
            taken[label] = taken.get(label, 0) + 1
        if len(chosen) == n:
            break
    for path in paths:  # fewer classes than slots: fill up in index order
        if len(chosen) >= n:
            break
        if path not in chosen:
            chosen.append(path)
    chosen.sort(key=paths.index)
    return {p.stem: (p, labels.get(p.stem)) for p in chosen}


def _labels(reference_file: Path) -> dict[str, str]:
    """The labels of `REFERENCE.csv`, or none if it is missing or cannot be read (with a warning)."""
    try:
        return read_reference(reference_file) if reference_file.is_file() else {}
    except RecordError as exc:
        logger.warning("ignoring example labels: %s", exc)
        return {}
