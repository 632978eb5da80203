"""CinC 2017 label files: `REFERENCE.csv`, one `record,label` row a record.

A label is a class name (`N`, `A`, `O`, `~`, or any word of letters, digits, spaces and `~ _ . + -` that starts
with a letter, digit or `~`, at most :data:`MAX_LABEL_CHARS` characters), or several joined by commas in one
quoted field (`A00001,"N,A"`). Anything else (a spreadsheet formula such as `=HYPERLINK(...)`, a `;`, a tab, a
quote) is refused when the file is read and when it is written.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from ecgrhythm.records.core import RecordError, check_file, shown
from ecgrhythm.utils.io import atomic_write_text, csv_writer

__all__ = ["read_reference", "write_reference", "label_problem", "MAX_LABEL_CHARS"]

MAX_LABEL_CHARS = 64  # characters of one class name
_CLASS_NAME = re.compile(r"[A-Za-z0-9~](?:[A-Za-z0-9~_.+ -]*[A-Za-z0-9~_.+-])?")


def label_problem(label: str) -> str | None:
    """Why `label` is not a clean label (one class name, or several joined by commas), or None if it is.

    Example:
    >>> label_problem("N,A") is None, label_problem("~") is None
    (True, True)
    >>> label_problem('=HYPERLINK("http://x")') is None, label_problem("N;A") is None
    (False, False)
    """
    for name in label.split(","):
        if len(name.strip()) > MAX_LABEL_CHARS or not _CLASS_NAME.fullmatch(name.strip()):
            return (
                f"the label {shown(label)!r} is not a class name: expected letters, digits, spaces and ~ _ . + - "
                f"(starting with a letter, digit or ~, at most {MAX_LABEL_CHARS} characters), several joined by commas"
            )
    return None


def read_reference(path) -> dict[str, str]:
    """Read a CinC 2017 `REFERENCE.csv` (`record,label` rows, no header).

    Returns:
        Mapping of record name to label.

    Raises:
        RecordError: the file is missing, unreadable, a row is malformed or its label is not clean
            (:func:`label_problem`), or two rows label the same record (the message names both lines).
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
                name, label = row[0].strip(), row[1].strip()
                if problem := label_problem(label):
                    raise RecordError(path, f"line {lineno}: {problem}")
                if name in lines:
                    raise RecordError(path, f"lines {lines[name]} and {lineno} both label {shown(name)}: keep one row per record")
                labels[name], lines[name] = label, lineno
    except UnicodeDecodeError as exc:
        raise RecordError(path, f"the label file is not UTF-8 text (byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise RecordError(path, f"cannot read the label file: {exc}") from None
    return labels


def write_reference(path, labels: dict[str, str]) -> None:
    """Write `record,label` rows atomically, a label of several classes quoted (`A00001,"N,A"`), so that
    :func:`read_reference` reads them back.

    Raises:
        ValueError: a label is not clean (:func:`label_problem`); nothing is written.
    """
    out = io.StringIO()
    writer = csv_writer(out)
    for name, label in labels.items():
        if problem := label_problem(label):
            raise ValueError(f"{path}: record {shown(name)!r}: {problem}; not written")
        writer.writerow([name, label])
    atomic_write_text(Path(path), out.getvalue())
