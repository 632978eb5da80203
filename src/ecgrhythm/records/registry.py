"""The table from file suffix to reader that `read_record`, folder discovery, the CLI and the service use.

A format is one module that defines a reader and registers it::

    def read_xyz(path: Path, *, fs: float | None, **options) -> Decoded: ...

    register_reader(".xyz", read_xyz)

`read_record` calls the reader of a file's suffix (matched case-insensitively)
with the caller's `fs` (checked, and required, for readers registered with
`needs_fs=True`: formats without a sampling rate of their own) and its other
options (`mat_gain`), and validates the :class:`~ecgrhythm.records.core.Decoded`
it returns. Folder discovery yields every file whose suffix has a reader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

__all__ = ["Reader", "register_reader", "reader_for", "record_suffixes", "signal_suffixes", "describe_suffixes"]

HEADER_SUFFIX = ".hea"  # WFDB headers: the one suffix whose files name other files


@dataclasses.dataclass(frozen=True)
class Reader:
    """A registered reader: `read(path, *, fs, **options) -> Decoded`; `needs_fs`: the file holds no rate."""

    read: Callable
    needs_fs: bool


_READERS: dict[str, Reader] = {}


def register_reader(suffix: str, read: Callable, *, needs_fs: bool = True) -> None:
    """Make `read_record` and folder discovery read files ending in `suffix` with `read`.

    Args:
        suffix: a file suffix with its dot, such as `".xyz"` (case-insensitive).
        read: `read(path, *, fs, **options)` returning a `Decoded`; it raises
            `RecordError` for a bad file.
        needs_fs: the format carries no sampling rate, so the caller must pass `fs`.

    Raises:
        ValueError: `suffix` is not a dot and a name, or already has a reader.
    """
    key = suffix.lower()
    if not (key.startswith(".") and len(key) > 1 and "." not in key[1:] and key.isprintable() and " " not in key):
        raise ValueError(f"Invalid argument `suffix`: expected a dot and a name such as '.xyz'. Received: suffix={suffix!r}")
    if key in _READERS:
        raise ValueError(f"Invalid argument `suffix`: {key!r} already has a reader ({_READERS[key].read.__qualname__})")
    _READERS[key] = Reader(read, needs_fs)


def reader_for(suffix: str) -> Reader | None:
    """The reader registered for `suffix` (any case), or None."""
    return _READERS.get(suffix.lower())


def record_suffixes() -> tuple[str, ...]:
    """Every suffix with a reader, in registration order (`.hea` first)."""
    return tuple(_READERS)


def signal_suffixes() -> tuple[str, ...]:
    """The suffixes of record files that are not WFDB headers (`.mat`, `.csv`, `.npy`, and any registered since)."""
    return tuple(s for s in _READERS if s != HEADER_SUFFIX)


def describe_suffixes() -> str:
    """The suffixes with a reader as words for a message: `.hea, .mat, .csv or .npy`."""
    suffixes = record_suffixes()
    return suffixes[0] if len(suffixes) == 1 else f"{', '.join(suffixes[:-1])} or {suffixes[-1]}"
