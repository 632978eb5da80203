"""Folder discovery: the record files of a folder, from its PhysioNet `RECORDS` index or from the files there."""

from __future__ import annotations

import logging
from pathlib import Path

from ecgrhythm.records.core import RecordError, header_bytes, shown, signal_file_names
from ecgrhythm.records.registry import HEADER_SUFFIX, record_suffixes, signal_suffixes
from ecgrhythm.records.wfdb_reader import named_header

__all__ = ["find_records", "record_files"]

logger = logging.getLogger(__name__)

# PhysioNet challenge metadata beside the records: labels and code-to-name mappings.
_METADATA_CSV_PREFIXES = ("reference", "dx_mapping")
_MAX_NAME_CHARS = 255  # longer than any file name a file system holds


def find_records(paths) -> list[Path]:
    """Expand files and folders into the record files to read.

    A folder with a PhysioNet `RECORDS` index yields exactly the records it
    lists (as `.hea` paths where the header exists, otherwise as listed, so a
    missing record is reported when read). Entries that leave the folder are
    skipped with a warning: absolute paths, `..`, and names that resolve
    outside it through a symbolic link (a linked subfolder or file). Names
    echoed in warnings are cut to 80 characters. A folder without an index
    yields every `.hea` header and every file with a registered reader
    (`.mat`, `.csv`, `.npy`, ...) that no header names, except hidden files and
    the challenges' metadata tables (`REFERENCE*.csv` labels, `dx_mapping*.csv`
    code names); an entry named like a record that is no file (a broken link, a
    subfolder, a FIFO) is skipped with a warning. Files are taken as given, and a bare WFDB record name
    (`.../A00005`, no file of its own) as its header `.../A00005.hea`; a path
    that names nothing is kept, to be reported when read
    (:func:`~ecgrhythm.records.record_path` checks it sooner). Subfolders are not searched.

    Args:
        paths: file or folder paths.

    Returns:
        Record paths in a stable, sorted order within each folder.

    Raises:
        RecordError: a folder or its index cannot be read.

    Example:
        >>> import ecgrhythm
        >>> paths = ecgrhythm.find_records(["../shared/data/cpsc2021-sample"])
        >>> len(paths), paths[0].as_posix()
        (18, '../shared/data/cpsc2021-sample/data_101_6.hea')
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            found.append(named_header(path) or path)
            continue
        try:
            index = path / "RECORDS"
            found.extend(_indexed_records(path, index) if index.is_file() else _folder_records(path))
        except OSError as exc:
            raise RecordError(path, f"cannot list the folder: {exc.strerror or exc}") from None
    return found


def _indexed_records(folder: Path, index: Path) -> list[Path]:
    found = []
    root = folder.resolve()
    with open(index, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(_index_lines(f), start=1):
            name = line.strip()
            if not name or name.startswith("#"):
                continue
            if len(name) > _MAX_NAME_CHARS or Path(name).is_absolute() or ".." in Path(name).parts or "\0" in name or Path(name).name in ("", "."):
                logger.warning("%s line %d: skipped %r, which is not a record inside the folder", index, lineno, shown(name))
                continue
            try:
                record = _listed_record(folder, name)
                if record.exists() and not record.resolve().is_relative_to(root):
                    logger.warning(
                        "%s line %d: skipped %r, a symbolic link to %s outside the folder", index, lineno, shown(name), shown(str(record.resolve()))
                    )
                    continue
                found.append(record)
            except (OSError, ValueError, RuntimeError) as exc:
                logger.warning("%s line %d: skipped %r, which is not a usable record name (%s)", index, lineno, shown(name), exc)
    return found


def _index_lines(f):
    """The lines of an open text file, each cut to :data:`_MAX_NAME_CHARS` + 1 characters as it is read, so that a line
    of any length costs no more memory than a name (its rest is read in pieces and dropped)."""
    while line := f.readline(_MAX_NAME_CHARS + 2):
        if not line.endswith("\n"):
            while (rest := f.readline(1 << 16)) and not rest.endswith("\n"):
                pass
        yield line[: _MAX_NAME_CHARS + 1]


def _folder_records(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and _readable_entry(p))
    headers = [p for p in files if p.suffix.lower() == HEADER_SUFFIX]
    claimed = set()  # lower-case names of files read through a header
    for header in headers:
        try:
            claimed.update(n.lower() for n in signal_file_names(header_bytes(header)))
        except (RecordError, OSError):
            claimed.update(header.with_suffix(s).name.lower() for s in (".mat", ".dat"))
    suffixes = signal_suffixes()
    signals = [
        p
        for p in files
        if p.suffix.lower() in suffixes
        and p.name.lower() not in claimed
        and not (p.suffix.lower() == ".csv" and p.name.lower().startswith(_METADATA_CSV_PREFIXES))
    ]
    return sorted(headers + signals)


def _readable_entry(path: Path) -> bool:
    """Whether a folder entry is a file to consider; an entry named like a record that is not one (a broken link, a loop
    of links, a subfolder, a FIFO or a device) is skipped with a warning, others quietly."""
    if path.is_file():
        return True
    if path.suffix.lower() in (HEADER_SUFFIX, *signal_suffixes()):
        what = (
            "a folder" if path.is_dir() else "a broken link or a loop of links" if path.is_symlink() and not path.exists() else "not a regular file"
        )
        logger.warning("%s: skipped %r, named like a record but %s", path.parent, shown(path.name), what)
    return False


def _listed_record(folder: Path, name: str) -> Path:
    base = folder / name
    suffixes = record_suffixes()
    if base.suffix.lower() in suffixes and base.is_file():
        return base
    for suffix in (s for lower in suffixes for s in (lower, lower.upper())):
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    return base.with_name(base.name + HEADER_SUFFIX)


def record_files(record) -> list[Path]:
    """The files reading `record` touches: the file itself, its `.hea` header and the signal files the header names.

    A header that cannot be parsed guards the likely signal files (`.mat`, `.dat` of the same name) instead.
    Files need not exist; callers compare them with what they are about to write.
    """
    record = Path(record)
    header = next((h for h in (record.with_suffix(".hea"), record.with_suffix(".HEA")) if h.is_file()), None)
    files = [record] + ([header] if header is not None and header != record else [])
    if header is not None:
        try:
            files += [header.parent / name for name in signal_file_names(header_bytes(header))]
        except (RecordError, OSError):
            files += [record.with_suffix(".mat"), record.with_suffix(".dat")]
    return files
