"""CinC 2017 label files: `REFERENCE.csv`, one `record,label` row a record."""

from __future__ import annotations

import csv
from pathlib import Path

from ecgrhythm.records.core import RecordError, check_file, shown

__all__ = ["read_reference"]


def read_reference(path) -> dict[str, str]:
    """Read a CinC 2017 `REFERENCE.csv` (`record,label` rows, no header).

    Returns:
        Mapping of record name to label.

    Raises:
        RecordError: the file is missing, unreadable, a row is malformed, or
            two rows label the same record (the message names both lines).
    """
    path = Path(path)
    check_file(path, "label file")
    labels, lines = {}, {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for lineno, row in enumerate(csv.reader(f), start=1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise RecordError(path, f"line {lineno}: expected 'record,label', got {row!r}")
                name = row[0].strip()
                if name in lines:
                    raise RecordError(path, f"lines {lines[name]} and {lineno} both label {shown(name)}: keep one row per record")
                labels[name], lines[name] = row[1].strip(), lineno
    except UnicodeDecodeError as exc:
        raise RecordError(path, f"the label file is not UTF-8 text (byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise RecordError(path, f"cannot read the label file: {exc}") from None
    return labels
