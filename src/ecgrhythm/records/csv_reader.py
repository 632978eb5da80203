"""`.csv` records: one column per lead, an optional header row naming the leads, `#` comment lines skipped."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import MAX_LEADS, Decoded, RecordError, as_signal
from ecgrhythm.records.registry import register_reader

__all__ = ["read_csv"]


def read_csv(path: Path, *, fs: float, **_options) -> Decoded:
    """Read a CSV record (comma, semicolon, tab or blank separated) at the caller's `fs`.

    Returns:
        The samples as float32 `(n_samples, n_leads)` (time is the longer axis
        unless a header row names the columns) and the header row's lead names.

    Raises:
        RecordError: not UTF-8, no samples, text or missing values among the
            numbers, ragged rows, or more than 64 named columns.
    """
    with open(path, encoding="utf-8-sig", errors="strict") as f:
        try:
            skip, first = _next_data_line(f, 0)
            if first is None:
                raise RecordError(path, "the CSV file holds no samples")
            delimiter = max("\t;,", key=first.count)
            delimiter = delimiter if first.count(delimiter) else None
            cells = next(csv.reader([first], delimiter=delimiter)) if delimiter else first.split()
            cells = [c.strip().strip('"').strip() for c in cells]
            leads = None
            if not all(_is_number(c) for c in cells):
                leads = tuple(c or f"lead{i + 1}" for i, c in enumerate(cells))
                if len(leads) > MAX_LEADS:
                    raise RecordError(path, f"the header row names {len(leads)} columns; expected one per lead (at most {MAX_LEADS})")
                if _next_data_line(f, skip)[1] is None:
                    raise RecordError(path, "the CSV file has a header row but no samples")
            else:
                skip -= 1
            f.seek(0)
            array = np.loadtxt(f, delimiter=delimiter, dtype=np.float32, ndmin=2, skiprows=skip, quotechar='"')
        except RecordError:
            raise
        except UnicodeDecodeError as exc:
            raise RecordError(path, f"the CSV file is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
        except (ValueError, csv.Error) as exc:
            raise RecordError(path, f"the CSV file holds text, missing values or ragged rows where numbers belong ({exc})") from None
    if leads is not None:
        if len(leads) != array.shape[1]:
            raise RecordError(path, f"the header row names {len(leads)} columns but rows have {array.shape[1]}")
        return Decoded(np.ascontiguousarray(array), fs, leads)
    return Decoded(as_signal(array, path), fs)


def _next_data_line(lines, count: int):
    """`(lines read so far, line)` for the next line that is neither blank nor a `#` comment (None at the end)."""
    for line in lines:
        count += 1
        if line.strip() and not line.lstrip().startswith("#"):
            return count, line
    return count, None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


register_reader(".csv", read_csv)
