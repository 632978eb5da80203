"""`.csv` records: one column per lead, an optional header row naming the leads, `#` comment lines skipped.

A first column of times is the time base, never a lead: one whose header is time-like (`time`, `t`, `s`, `sec`,
`seconds`, `ms`, `timestamp`, `Elapsed time`, `time (s)`, `Time [ms]`, ...; any case), or, without a header row, one
that is strictly increasing and evenly spaced while no other column is. Its step gives the sampling rate, in the
unit its header names (`ms`, `us`, `ns` and their long names; otherwise seconds; a unit that is not one of time is refused); a header-less column of 0, 1, 2, ... (or
1, 2, 3, ...) counts samples and gives no rate. Times not evenly spaced (gaps, jitter over `TIME_TOLERANCE` of a
step) are refused, and so is a rate that disagrees with the caller's `fs`.

Decimal commas, as European spreadsheets export them, are read as decimal points: beside a `;` or tab delimiter
(`-0,1270;0,532`), and in a file of one column (`-0,1270` lines, told from two columns of integers by a `-0,` or a
fraction that starts with 0). A line longer than :data:`MAX_LINE_BYTES` is refused before anything is parsed, and a
header row's lead names are cut to :data:`MAX_NAME_CHARS` characters. Parsing stops, and the file is refused, past 24 h
of rows at the caller's `fs`, or past the rows whose numbers (12 bytes each, parsed and made float32) would take more than
:func:`~ecgrhythm.records.limits.max_decoded_bytes`: a CSV's memory is bounded whatever its size.
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import warnings
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import GIVE_FS, MAX_DURATION_S, MAX_LEADS, MAX_SHOWN_NAME, Decoded, RecordError, as_signal, check_fs
from ecgrhythm.records.limits import max_decoded_bytes, raise_limit_hint
from ecgrhythm.records.registry import register_reader

__all__ = ["read_csv", "TIME_TOLERANCE", "MAX_LINE_BYTES", "MAX_NAME_CHARS"]

MAX_LINE_BYTES = 1 << 16  # longest line read: 64 leads of long numbers, or 64 lead names, fit many times over
MAX_NAME_CHARS = 64  # characters of a lead name kept from a header row
_DECIMAL_DELIMITERS = ("\t", ";")  # delimiters beside which a comma is a decimal comma
_DECIMAL_COMMA = re.compile(r"(?P<whole>[-+]?\d+),(?P<fraction>\d+)")
_BYTES_PER_NUMBER = 12  # memory per number read: parsed as float64, then made float32 samples
_SNIFF_LINES = 10_000  # lines looked at to tell one column of decimal commas from two of integers

TIME_TOLERANCE = 0.1  # most a time step may differ from the mean step, as a fraction of it (rounded times in exports)
FS_TOLERANCE = 0.01  # most the time column's rate may differ from the caller's `fs`, as a fraction
_SECONDS = {"time", "t", "s", "sec", "secs", "second", "seconds", "timestamp", "elapsed time", "elapsed", "time stamp"}
_UNITS = {  # seconds per unit of a time column named by its unit, or naming it in brackets
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("ms", "msec", "msecs", "millisecond", "milliseconds"), 1e-3),
    **dict.fromkeys(("us", "\u00b5s", "\u03bcs", "usec", "usecs", "microsecond", "microseconds"), 1e-6),
    **dict.fromkeys(("ns", "nsec", "nanosecond", "nanoseconds"), 1e-9),
}
_UNIT = re.compile(r"^(?P<name>[^(\[]*?)\s*[(\[]\s*(?P<unit>[^)\]]*?)\s*[)\]]$")  # "time (s)", "Time [ms]"


def read_csv(path: Path, *, fs: float | None, **_options) -> Decoded:
    """Read a CSV record (comma, semicolon, tab or blank separated) at the caller's `fs`, or at the rate of its time column.

    Returns:
        The samples as float32 `(n_samples, n_leads)` (time is the longer axis
        unless a header row names the columns; a time column is dropped) and the header row's lead names.

    Raises:
        RecordError: not UTF-8, no samples, a line over :data:`MAX_LINE_BYTES`, text or missing values among the
            numbers, ragged rows, or more than 64 named columns; more rows than 24 h at `fs` or than the memory
            limit allows; no time column and no `fs`; a time column not finite nor evenly spaced, or whose rate is
            invalid or disagrees with `fs`.
    """
    if fs is not None:
        fs = check_fs(fs, path)
    if path.stat().st_size == 0:
        raise RecordError(path, "the file is empty")
    _check_line_lengths(path)
    with open(path, encoding="utf-8-sig", errors="strict") as f:
        try:
            skip, delimiter, decimal_comma, leads, n_columns = _layout(f, path)
            scale = _time_unit(leads[0], path) if leads is not None else None  # seconds per unit of a named time column
            if fs is None and (scale is None if leads is not None else n_columns < 2):  # before parsing it all
                raise RecordError(path, f"the file has no time column and so no sampling rate: {GIVE_FS}")
            max_rows = _max_rows(n_columns, fs)
            f.seek(0)
            lines = (line.replace(",", ".") for line in f) if decimal_comma else f
            with warnings.catch_warnings():  # blank lines among the rows (CR CR LF line ends read as two) are skipped, with a warning
                warnings.filterwarnings("ignore", r"Input line \d+ contained no data", UserWarning)
                array = np.loadtxt(lines, delimiter=delimiter, dtype=np.float64, ndmin=2, skiprows=skip, quotechar='"', max_rows=max_rows + 1)
        except RecordError:
            raise
        except UnicodeDecodeError as exc:
            raise RecordError(path, f"the CSV file is not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
        except (ValueError, csv.Error) as exc:
            raise RecordError(path, f"the CSV file holds text, missing values or ragged rows where numbers belong ({_parse_error(exc)})") from None
    if len(array) > max_rows:
        raise RecordError(path, _too_many_rows(max_rows, n_columns, fs))
    if leads is not None and len(leads) != array.shape[1]:
        raise RecordError(path, f"the header row names {len(leads)} columns but rows have {array.shape[1]}")
    with np.errstate(over="ignore", invalid="ignore"):  # samples beyond float32 range are refused by name when validated
        array, leads, fs = _time_base(array, leads, fs, path, scale)
        if fs is None:
            raise RecordError(path, f"the file has no header and so no sampling rate: {GIVE_FS}")
        if leads is not None:
            return Decoded(np.ascontiguousarray(array, dtype=np.float32), fs, leads)
        return Decoded(as_signal(array.astype(np.float32), path), fs)


def _max_rows(n_columns: int, fs: float | None) -> int:
    """The most rows of samples read: `MAX_DURATION_S` at `fs` (when given), and no more than fit in
    :func:`~.limits.max_decoded_bytes` as parsed float64 numbers and the float32 samples made from them, so the memory
    a CSV takes is bounded whatever its size."""
    rows = max_decoded_bytes() // (_BYTES_PER_NUMBER * max(n_columns, 1))
    return rows if fs is None else min(rows, math.ceil(MAX_DURATION_S * fs) + 1)  # + 1: a time column may come first


def _too_many_rows(max_rows: int, n_columns: int, fs: float | None) -> str:
    if fs is not None and max_rows == math.ceil(MAX_DURATION_S * fs) + 1:
        return (
            f"the file holds more than {max_rows} rows, over {MAX_DURATION_S / 3600:g} h at {fs:g} Hz: records over "
            f"{MAX_DURATION_S / 3600:g} h are read in pieces only as WFDB records (.hea + .dat) or EDF/BDF files: convert it, or split it into parts"
        )
    return (
        f"the file holds more than {max_rows} rows of {n_columns} column(s), whose numbers would take more than the limit of "
        f"{max_decoded_bytes()} bytes to read ({_BYTES_PER_NUMBER} bytes each; {raise_limit_hint()}): split it into parts"
    )


def _parse_error(exc: Exception) -> str:
    """numpy's parse error, its advice on `usecols` dropped and an echoed cell of text cut short."""
    text = str(exc).split("; use `usecols`")[0]
    return text if len(text) <= 2 * MAX_SHOWN_NAME else f"{text[:MAX_SHOWN_NAME]}...{text[-MAX_SHOWN_NAME // 2 :]}"


def _layout(f, path: Path):
    """`(lines before the samples, delimiter, decimal commas, lead names or None, columns of the first line)` of the CSV text
    file `f`, from its first lines.

    The delimiter is a tab or `;` when the first row has one (then a comma in a number is a decimal comma, as European
    exports write `-0,1270;0,532`), else a comma, else blanks. Comma-separated rows of two integers are one column of
    decimal-comma numbers when some row reads `-0,...` or `...,0N...` (a fraction; no integer is written so).
    """
    skip, first = _next_data_line(f, 0)
    if first is None:
        raise RecordError(path, "the CSV file holds no samples")
    delimiter = _delimiter(first)
    cells = [c.strip().strip('"').strip() for c in (next(csv.reader([first], delimiter=delimiter)) if delimiter else first.split())]
    leads, sample = None, first
    if not all(_is_number(c) or (delimiter in _DECIMAL_DELIMITERS and _is_number(c.replace(",", "."))) for c in cells):
        leads = tuple((c or f"lead{i + 1}")[:MAX_NAME_CHARS] for i, c in enumerate(cells))
        if len(leads) > MAX_LEADS:
            raise RecordError(path, f"the header row names {len(leads)} columns; expected one per lead (at most {MAX_LEADS})")
        sample = _next_data_line(f, skip)[1]
        if sample is None:
            raise RecordError(path, "the CSV file has a header row but no samples")
        delimiter = delimiter or _delimiter(sample)  # a header of one name has no delimiter
    else:
        skip -= 1
    if delimiter in _DECIMAL_DELIMITERS:
        decimal_comma = "," in sample
    else:
        decimal_comma = delimiter == "," and _decimal_comma_column(itertools.chain([sample], itertools.islice(f, _SNIFF_LINES)))
    return skip, delimiter, decimal_comma, leads, len(cells)


def _delimiter(line: str) -> str | None:
    """A line's delimiter: the commoner of tab and `;` if it has either, else a comma if it has one, else None (blanks)."""
    counts = {d: line.count(d) for d in _DECIMAL_DELIMITERS}
    if any(counts.values()):
        return max(counts, key=counts.get)
    return "," if "," in line else None


def _decimal_comma_column(lines) -> bool:
    """Whether comma-separated `lines` are one column of decimal-comma numbers: each `-?D,D` and some with a tell-tale part."""
    told = False
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = _DECIMAL_COMMA.fullmatch(text)
        if match is None:
            return False
        told = told or match["whole"] == "-0" or (len(match["fraction"]) > 1 and match["fraction"][0] == "0")
    return told


def _check_line_lengths(path: Path) -> None:
    """Refuse a file with a line longer than :data:`MAX_LINE_BYTES`, reading it in pieces of 256 KiB (so a 500 MB line of
    digits costs a few MiB, not gigabytes, and so does a file of short lines)."""
    before, run = 0, 0  # lines ended so far; bytes of the line still open
    with open(path, "rb") as f:
        while chunk := f.read(1 << 18):
            if chunk.endswith(b"\r"):  # a CR LF split between pieces is one line end
                chunk += f.read(1)
            data = np.frombuffer(chunk, np.uint8)
            lone_cr = data == 13  # a line ends in LF, CR LF, or a CR alone (old Mac exports)
            lone_cr[:-1] &= data[1:] != 10
            ends = np.flatnonzero((data == 10) | lone_cr)
            lengths = np.diff(ends, prepend=-1 - run) - 1  # of the lines ending in this piece
            too_long = np.flatnonzero(lengths > MAX_LINE_BYTES)
            run = run + len(chunk) if len(ends) == 0 else len(chunk) - int(ends[-1]) - 1
            line = before + (int(too_long[0]) + 1 if len(too_long) else len(ends) + 1)
            if len(too_long) or run > MAX_LINE_BYTES:
                raise RecordError(
                    path,
                    f"line {line} is longer than {MAX_LINE_BYTES} bytes, far more than a row of samples or lead names needs: "
                    "the file is not a CSV record, or not one row per sample",
                )
            before += len(ends)


def _time_base(array: np.ndarray, leads, fs, path, scale: float | None):
    """`(leads' columns, their names, fs)`: a first column of times dropped, its rate checked against the caller's `fs`
    (`scale`: seconds per unit of the first column when the header row names it as time, from :func:`_time_unit`)."""
    if leads is None and not _looks_like_time(array):
        return array, leads, fs
    if scale is None and leads is not None:
        return array, leads, fs
    if array.shape[1] < 2:
        raise RecordError(path, "the only column holds times, not an ECG lead")
    times, array, leads = array[:, 0], array[:, 1:], leads[1:] if leads is not None else None
    if not np.isfinite(times).all():
        row = int(np.flatnonzero(~np.isfinite(times))[0])
        raise RecordError(path, f"the time column holds {times[row]:g} at row {row + 1}, not a finite time: fix its times, or drop it and give fs")
    step = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
    steps = np.diff(times)
    if not step > 0:
        raise RecordError(path, f"the time column does not increase (from {times[0]:g} to {times[-1]:g}): fix its times, or drop it and give fs")
    if np.abs(steps - step).max(initial=0.0) > TIME_TOLERANCE * step:
        worst = int(np.argmax(np.abs(steps - step))) if len(steps) else 0
        raise RecordError(
            path,
            f"the time column is not evenly spaced (rows {worst + 1} to {worst + 2} are {steps[worst] if len(steps) else 0:g} apart, "
            f"the mean step is {step:g}): resample the signal to a fixed rate, or drop the time column and give fs",
        )
    if scale is None:  # no header: sample numbers, seconds, or milliseconds when seconds give no usable rate
        if times[0] in (0, 1) and step == 1:
            return array, leads, fs
        scale = 1.0 if 20 <= 1 / step <= 100_000 else 1e-3
    rate = check_fs(round(1.0 / (step * scale), 3), path, "it is what the time column's step gives: fix its times, or drop it and give fs")
    if fs is not None and abs(rate - fs) > FS_TOLERANCE * fs:
        raise RecordError(
            path, f"the time column gives a sampling rate of {rate:g} Hz but fs={fs:g} Hz was given: give the right fs, or leave it out"
        )
    return array, leads, rate


def _time_unit(name: str, path) -> float | None:
    """Seconds per unit of a column named `name` if the name is time-like (from :data:`_UNITS`; 1 without a unit),
    else None; a time-like name with a unit that is not a unit of time is refused."""
    name = name.strip().lower()
    unit = None
    if match := _UNIT.match(name):
        name, unit = match["name"].strip(), match["unit"].strip()
    if name not in _SECONDS:
        return _UNITS.get(name)  # a column named by its unit (`ms`), or not a time column
    if unit is None or unit in _UNITS:
        return _UNITS.get(unit, 1.0)
    raise RecordError(
        path,
        f"the time column {name!r} is in {unit!r}, not a unit of time this reader knows (s, ms, us, ns): give its times in seconds, or drop it and give fs",
    )


def _looks_like_time(array: np.ndarray) -> bool:
    """Without a header: whether the first of several columns increases strictly with a near-even step and no other column increases strictly."""
    if array.shape[1] < 2 or len(array) < 3:
        return False
    steps = np.diff(array[:, 0])  # a column at a time: the differences of every column would double the memory read_csv takes
    if not (steps > 0).all() or any((array[1:, j] > array[:-1, j]).all() for j in range(1, array.shape[1])):
        return False
    return bool(np.abs(steps - steps.mean()).max() <= TIME_TOLERANCE * steps.mean())


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


register_reader(".csv", read_csv, needs_fs=False)  # a time column may give the rate
