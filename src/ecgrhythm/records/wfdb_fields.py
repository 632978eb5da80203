"""A WFDB header's fields as `wfdb` parses them, and the plain records decoded as `wfdb` decodes them, without `wfdb`.

:func:`header_fields` reads a header with wfdb's own regular expressions and defaults (copies of those of
`wfdb.io.header` and `wfdb.io._header`, which the tests check are still wfdb's), so that the checks of
:mod:`.wfdb_reader` see the header as wfdb will read it. :func:`read_plain` decodes a plain record (every signal in
format 16, one sample per frame, in one signal file, its length declared: every record of CinC 2017, CinC 2021 and
CPSC 2021) to the same float32 samples, bit for bit, as `wfdb.rdrecord(physical=True, return_res=32)`; any other
record is read by wfdb itself. Neither imports wfdb, whose import (with pandas and fsspec) took about 0.3 s of a
one-record `ecgrhythm classify`, and whose header parsing (through pandas) about 1 ms of every record.
"""

from __future__ import annotations

import datetime
import re
import types
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import RecordError

__all__ = ["header_fields", "read_plain", "plain_layout", "read_plain_range", "RX_RECORD", "RX_SIGNAL"]

# wfdb.io.header.rx_record and rx_signal (wfdb 4.3), verbatim.
RX_RECORD = re.compile(
    r"""
    [ \t]* (?P<record_name>[-\w]+)
           /?(?P<n_seg>\d*)
    [ \t]+ (?P<n_sig>\d+)
    [ \t]* (?P<fs>\d*\.?\d*)
           /*(?P<counter_freq>-?\d*\.?\d*)
           \(?(?P<base_counter>-?\d*\.?\d*)\)?
    [ \t]* (?P<sig_len>\d*)
    [ \t]* (?P<base_time>\d{,2}:?\d{,2}:?\d{,2}\.?\d{,6})
    [ \t]* (?P<base_date>\d{,2}/?\d{,2}/?\d{,4})
    """,
    re.VERBOSE,
)
RX_SIGNAL = re.compile(
    r"""
    [ \t]* (?P<file_name>~?[-\w]*\.?[\w]*)
    [ \t]+ (?P<fmt>\d+)
           x?(?P<samps_per_frame>\d*)
           :?(?P<skew>\d*)
           \+?(?P<byte_offset>\d*)
    [ \t]* (?P<adc_gain>-?\d*\.?\d*e?[\+-]?\d*)
           \(?(?P<baseline>-?\d*)\)?
           /?(?P<units>[\w\^\-\?%\/]*)
    [ \t]* (?P<adc_res>\d*)
    [ \t]* (?P<adc_zero>-?\d*)
    [ \t]* (?P<init_value>-?\d*)
    [ \t]* (?P<checksum>-?\d*)
    [ \t]* (?P<block_size>\d*)
    [ \t]* (?P<sig_name>[\S]?[^\t\n\r\f\v]*)
    """,
    re.VERBOSE,
)
_PLAIN_FORMAT = "16"  # little-endian int16, WFDB's invalid-sample value -32768
_INVALID_16 = -(2**15)
_INTEGER_FIELDS = ("samps_per_frame", "skew", "byte_offset", "adc_res", "adc_zero", "init_value", "checksum", "block_size")


def header_fields(header: Path, raw: bytes) -> types.SimpleNamespace:
    """The fields of a header as `wfdb.rdheader` parses them: the same text (ASCII, other bytes dropped), lines, regular
    expressions and defaults for empty fields.

    Returns:
        `n_sig`, `fs` and `sig_len` (None when not given), `counter_freq`, `base_counter`, `base_time` and
        `base_date` (their text, "" when not given),
        `comments` (wfdb's: without `#`), and per signal the matches `signals` and, None where not given,
        `file_name`, `fmt`, `samps_per_frame` and `byte_offset`.

    Raises:
        RecordError: a line wfdb cannot parse, or a multi-segment record.
    """
    lines, comments = [], []
    for line in raw.decode("ascii", errors="ignore").splitlines():  # wfdb.io.header.parse_header_content
        line = line.strip()
        if line.startswith("#"):
            comments.append(line.strip(" \t#"))
        elif line:
            lines.append(line)
    record = RX_RECORD.match(lines[0]) if lines else None
    signals = [RX_SIGNAL.match(line) for line in lines[1:]]
    if record is None or not all(signals):
        raise RecordError(
            header, "invalid WFDB header (HeaderSyntaxError: invalid syntax in " + ("record line)" if record is None else "signal line)")
        )
    if record["n_seg"]:
        raise RecordError(header, "multi-segment WFDB records are not supported")

    def number(text: str, kind=int):
        return kind(text) if text else None

    try:
        return types.SimpleNamespace(
            n_sig=int(record["n_sig"]),
            fs=number(record["fs"], float),
            sig_len=number(record["sig_len"]),
            counter_freq=record["counter_freq"],
            base_counter=record["base_counter"],
            base_time=record["base_time"],
            base_date=record["base_date"],
            comments=comments,
            signals=signals,
            file_name=[m["file_name"] for m in signals],
            fmt=[m["fmt"] for m in signals],
            samps_per_frame=[number(m["samps_per_frame"]) for m in signals],
            byte_offset=[number(m["byte_offset"]) for m in signals],
        )
    except ValueError as exc:  # a lone "." as the rate, say: wfdb.rdheader fails on it too
        raise RecordError(header, f"invalid WFDB header (ValueError: {exc})") from None


def read_plain(header: Path, fields: types.SimpleNamespace, files: dict[str, Path]) -> types.SimpleNamespace | None:
    """A plain record read as `wfdb.rdrecord(physical=True, return_res=32, ignore_skew=True)` reads it, or None for
    any other record (wfdb reads those).

    Plain: every signal in format 16 with one sample per frame, all in one signal file, the length declared, and
    the fields wfdb converts (gains, baselines, start time) convertible. The samples are decoded and converted to
    physical units with wfdb's own steps (:func:`read_plain_range`).

    Args:
        header: the header, for messages.
        fields: its :func:`header_fields`, checked (:func:`~.wfdb_header.check_signal_files`).
        files: the checked signal file of each file name (from the same check).

    Returns:
        None, or what the record's code takes from wfdb's `Record`: `p_signal` (float32 `(sig_len, n_sig)`),
        `sig_len`, `n_sig`, `sig_name`, `units`, `comments`, `base_date` and `base_time`.

    Raises:
        RecordError: the signal file holds fewer samples than the header declares.
    """
    layout = plain_layout(fields, files)
    if layout is None:
        return None
    signal = read_plain_range(header, layout, 0, layout.sig_len)
    return types.SimpleNamespace(
        p_signal=signal,
        sig_len=layout.sig_len,
        n_sig=layout.n_sig,
        sig_name=[s["sig_name"] for s in layout.signals],
        units=[s["units"] for s in layout.signals],
        comments=list(fields.comments),
        base_date=layout.base_date,
        base_time=layout.base_time,
    )


def plain_layout(fields: types.SimpleNamespace, files: dict[str, Path]) -> types.SimpleNamespace | None:
    """Where and how the samples of a plain record lie (see :func:`read_plain`), or None for any other record.

    Args:
        fields: the header's :func:`header_fields`, checked (:func:`~.wfdb_header.check_signal_files`).
        files: the checked signal file of each file name (from the same check).

    Returns:
        None, or `path` (the signal file), `byte_offset`, `n_sig`, `sig_len`, `signals` (each signal's `adc_gain`,
        `baseline`, `units` and `sig_name` as wfdb makes them), `base_time` and `base_date`.
    """
    plain = (
        fields.sig_len is not None
        and len(set(fields.file_name)) == 1
        and all(fmt == _PLAIN_FORMAT for fmt in fields.fmt)
        and all(spf in (None, 1) for spf in fields.samps_per_frame)
    )
    if not plain:
        return None
    try:
        signals = [_signal_fields(m) for m in fields.signals]
        for text in (fields.counter_freq, fields.base_counter):  # what wfdb converts and would fail on
            float(text or 0)
        base_time, base_date = base_time_and_date(fields.base_time, fields.base_date)
    except ValueError:
        return None  # wfdb reads it, and reports what it cannot parse
    return types.SimpleNamespace(
        path=files[fields.file_name[0]],
        byte_offset=fields.byte_offset[0] or 0,
        n_sig=fields.n_sig,
        sig_len=fields.sig_len,
        signals=signals,
        base_time=base_time,
        base_date=base_date,
    )


def read_plain_range(header: Path, layout: types.SimpleNamespace, start: int, stop: int, channels=None) -> np.ndarray:
    """Samples `start:stop` of the signals `channels` (indices; default all) of a plain record (:func:`plain_layout`), as
    `wfdb.rdrecord(physical=True, return_res=32, ignore_skew=True, sampfrom=start, sampto=stop, channels=channels)`
    gives them, bit for bit: int16 frames, float32, minus the baseline, divided by the ADC gain (both as wfdb holds
    them), WFDB's invalid-sample value made NaN.

    Returns:
        float32 array `(stop - start, len(channels))`.

    Raises:
        RecordError: the range is not within the declared length (as wfdb refuses it), or the signal file holds fewer
            samples than asked for.
    """
    n_sig = layout.n_sig
    channels = list(range(n_sig)) if channels is None else list(channels)
    if not 0 <= start <= stop <= layout.sig_len:
        raise RecordError(header, f"cannot read the signal (samples {start} to {stop} of a record of {layout.sig_len})")
    if not all(0 <= c < n_sig for c in channels):
        raise RecordError(header, f"cannot read the signal (channels {channels} of a record of {n_sig})")
    count = stop - start
    with open(layout.path, "rb") as f:
        f.seek(layout.byte_offset + 2 * n_sig * start)
        digital = np.fromfile(f, dtype="<i2", count=count * n_sig)
    if digital.size != count * n_sig:
        if start == 0 and stop == layout.sig_len:
            raise RecordError(header, f"the header declares {layout.sig_len} samples but the signal file holds {digital.size // n_sig}")
        raise RecordError(header, f"the signal file holds {digital.size // n_sig} samples from sample {start}, not {count}")
    digital = digital.reshape(count, n_sig)
    if channels != list(range(n_sig)):
        digital = digital[:, channels]
    missing = digital == _INVALID_16
    signal = digital.astype(np.float32)
    signals = [layout.signals[c] for c in channels]
    with np.errstate(over="ignore"):  # a tiny gain overflows to inf, which the reader then refuses by name
        np.subtract(signal, [s["baseline"] for s in signals], signal)  # as wfdb's Record.dac, with the same Python lists
        np.divide(signal, [s["adc_gain"] for s in signals], signal)
    signal[missing] = np.nan
    return signal


def _signal_fields(match: re.Match) -> dict:
    """What wfdb makes of a signal line's gain, baseline, units and name (`wfdb.io._header._parse_signal_lines`):
    an empty gain is 200 (a gain of 0, which wfdb reads as 200, is refused by the checks); an empty baseline is the
    ADC zero, else 0; empty units are mV."""
    for name in _INTEGER_FIELDS:  # converted by wfdb, which would fail on them
        int(match[name] or 0)
    if match["baseline"]:
        baseline = int(match["baseline"])
    else:
        baseline = int(match["adc_zero"]) if match["adc_zero"] else 0
    return {
        "adc_gain": float(match["adc_gain"]) if match["adc_gain"] else 200.0,
        "baseline": baseline,
        "units": match["units"] or "mV",
        "sig_name": match["sig_name"] or None,
    }


def base_time_and_date(time_text: str, date_text: str) -> tuple[datetime.time | None, datetime.date | None]:
    """A header's base time and date as wfdb reads them (None where not given).

    Raises:
        ValueError: either is given but is not a time of day (SS, MM:SS or HH:MM:SS with an optional fraction) or
            a date (DD/MM/YYYY).
    """
    base_time = _wfdb_time(time_text) if time_text else None
    return base_time, datetime.datetime.strptime(date_text, "%d/%m/%Y").date() if date_text else None


def _wfdb_time(text: str) -> datetime.time:
    """A header's base time as wfdb reads it (`wfdb.io._header.wfdb_strptime`): SS, MM:SS or HH:MM:SS, each with an optional fraction."""
    layout = ("%S", "%M:%S", "%H:%M:%S")[text.count(":")]
    return datetime.datetime.strptime(text, layout + (".%f" if "." in text else "")).time()
