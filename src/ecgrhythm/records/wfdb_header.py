"""Checks of a WFDB header and its signal files against the header specification, before `wfdb` reads a byte.

`wfdb` trusts its header (see :mod:`.wfdb_reader`): these checks are what :func:`~.wfdb_reader.open_wfdb`
makes first. :func:`record_line` parses the record line field by field, :func:`check_signal_line` each
signal line, :func:`check_header_length` the declared length, and :func:`check_signal_files` each signal
file's name, format and size; every failure is a :class:`~ecgrhythm.records.core.RecordError` naming the header.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from ecgrhythm.records.core import MAX_DURATION_S, RecordError, check_file, check_length, header_bytes, header_lines, shown
from ecgrhythm.records.limits import check_decoded_size
from ecgrhythm.records.limits import check_whole_read as limits_check_whole_read
from ecgrhythm.records.limits import whole_read_fits as limits_whole_read_fits
from ecgrhythm.records.wfdb_fields import base_time_and_date

__all__ = [
    "record_line",
    "check_header_length",
    "check_signal_line",
    "check_signal_files",
    "reads_in_pieces",
    "UNDECLARED_MAX_S",
    "check_whole_read",
    "whole_read_fits",
]

_MAX_SAMPS_PER_FRAME = 64
WHOLE_READ_VALUE_BYTES = 8  # wfdb decodes a whole read to 8-byte numbers (and more besides), whatever the storage format
UNDECLARED_MAX_S = 3600.0  # a header without a signal length is read whole, so at most this long
# Bytes per sample of the WFDB storage formats (None: FLAC, variable length).
_WFDB_BYTES_PER_SAMPLE = {
    "8": 1,
    "16": 2,
    "24": 3,
    "32": 4,
    "61": 2,
    "80": 1,
    "160": 2,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
    "508": None,
    "516": None,
    "524": None,
}
# wfdb holds decoded samples as 8-byte numbers while converting them: the decoded size of a FLAC signal file.
_DECODED_SAMPLE_BYTES = 8
# The fields of a signal line after the file name (WFDB header specification, `man 5 header`).
_FORMAT_FIELD = re.compile(r"(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::\d+)?(?:\+\d+)?")
_GAIN_FIELD = re.compile(r"(?P<gain>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:\((?P<baseline>-?\d+)\))?(?:/[\w^?%/-]+)?")
_BASELINE_LIMIT = 2**31  # a baseline is an ADC value: beyond 32 bits it is not one (numpy could not even subtract it)
_INTEGER_FIELDS = (("ADC resolution", r"\d+"), ("ADC zero", r"-?\d+"), ("initial value", r"-?\d+"), ("checksum", r"-?\d+"), ("block size", r"\d+"))


def record_line(header: Path, raw: bytes):
    """`(n_sig, fs or None, sig_len or None)` from the header's record line, checked field by field."""
    lines = header_lines(raw)
    if not lines:
        raise RecordError(header, "the header has no record line")
    fields = lines[0]
    if "/" in fields[0]:
        raise RecordError(header, "multi-segment WFDB records are not supported")
    if len(fields) < 2 or not _is_count(fields[1]):
        raise RecordError(header, f"the record line {' '.join(fields)!r} does not give the number of signals")
    fs = None
    if len(fields) >= 3:
        try:
            fs = float(fields[2].split("/")[0])
        except ValueError:
            raise RecordError(header, f"the header's sampling rate field {fields[2]!r} is not a number") from None
    if len(fields) >= 4 and not _is_count(fields[3]):
        raise RecordError(header, f"the header's signal length field {fields[3]!r} is not a sample count")
    try:
        base_time_and_date(*(fields[4:6] + ["", ""])[:2])
    except ValueError:
        given = " ".join(fields[4:6])
        raise RecordError(
            header, f"the header's base time and date {given[:80]!r} are not a time of day (HH:MM:SS) and a date (DD/MM/YYYY)"
        ) from None
    return int(fields[1]), fs, int(fields[3]) if len(fields) >= 4 else None


def _is_count(text: str) -> bool:
    return text.isascii() and text.isdigit()


def reads_in_pieces(header: Path) -> bool:
    """Whether wfdb reads sample ranges of this record correctly: not for format 8 (first differences).

    wfdb restarts a format-8 record's running sum at the first sample it reads, so such a record is only
    read whole. A header that cannot be parsed answers True and fails its checks when it is opened.
    """
    try:
        lines = header_lines(header_bytes(Path(header)))[1:]
    except (RecordError, OSError):
        return True
    formats = [_FORMAT_FIELD.fullmatch(fields[1]) for fields in lines if len(fields) > 1]
    return not any(m is not None and m.group("fmt") == "8" for m in formats)


def check_header_length(header: Path, sig_len: int | None, fs: float, max_s: float = MAX_DURATION_S) -> None:
    """Refuse a record whose header declares more than `max_s` seconds (`sig_len` samples at `fs`), before reading it.

    Raises:
        RecordError: naming the header, the declared length and the limit.
    """
    if sig_len is not None:
        check_length(sig_len, fs, header, max_s)


def whole_read_fits(n_samples: int, n_sig: int) -> bool:
    """Whether wfdb may read `n_samples` of `n_sig` signals in one call: at :data:`WHOLE_READ_VALUE_BYTES` a value,
    within :func:`~ecgrhythm.records.limits.max_decoded_bytes` (512 MiB: an hour of 12 leads at 1 kHz fits)."""
    return limits_whole_read_fits(n_samples, n_sig, WHOLE_READ_VALUE_BYTES)


def check_whole_read(header: Path, n_samples: int, n_sig: int) -> None:
    """Refuse to read a record whole when wfdb's decoding of it would not fit (:func:`whole_read_fits`;
    :func:`~ecgrhythm.records.limits.check_whole_read`).

    Raises:
        RecordError: naming the header, the size and how to read the record.
    """
    limits_check_whole_read(header, n_samples, n_sig, WHOLE_READ_VALUE_BYTES, whole="the record", leads="signals", decoded_as="as wfdb decodes them")


def check_signal_line(header: Path, index: int, fields: list[str]) -> None:
    """Check one signal line strictly against the WFDB header specification.

    A line is `FILE FORMAT[xSPF][:SKEW][+OFFSET] [GAIN[(BASELINE)][/UNITS] [RES [ZERO [INIT [CHECKSUM [BLOCK [DESC...]]]]]]]`.
    Refused, though `wfdb` accepts them: a file name that is not a plain name
    beside the header; a format field with anything else in it (`16+-10`,
    `16x`, a sign); an ADC gain that is not an unsigned decimal number
    greater than 0 and finite (`-10`, `0`, `+5`, `inf`, `nan`), or is followed
    by anything but a `(BASELINE)` integer (under 2**31 in size) and `/UNITS`; an ADC resolution or
    block size that is not an unsigned integer; an ADC zero, initial value or
    checksum that is not an integer. The description (the rest of the line) is free.

    Args:
        header: the header file, for the message.
        index: 0-based number of the signal.
        fields: the line split at white space.

    Raises:
        RecordError: naming the signal, the field and what it should be.
    """

    def refuse(problem: str):
        raise RecordError(
            header,
            f"signal {index + 1}: {problem} in the line {shown(' '.join(fields))!r}; "
            "fix the header (WFDB signal line: FILE FORMAT[xSPF][:SKEW][+OFFSET] GAIN[(BASELINE)][/UNITS] ...)",
        )

    _check_file_name(header, fields[0])
    if len(fields) < 2 or not _FORMAT_FIELD.fullmatch(fields[1]):
        refuse(f"the format field {shown(fields[1]) if len(fields) > 1 else ''!r} is not FORMAT[xSPF][:SKEW][+OFFSET]")
    if len(fields) > 2:
        match = _GAIN_FIELD.fullmatch(fields[2])
        if not match:
            refuse(f"the gain field {shown(fields[2])!r} is not a positive GAIN[(BASELINE)][/UNITS]")
        gain = float(match["gain"])
        if not (math.isfinite(gain) and gain > 0):
            refuse(f"the ADC gain {match['gain']!r} is not a positive finite number")
        if match["baseline"] is not None and abs(int(match["baseline"])) >= _BASELINE_LIMIT:
            refuse(f"the baseline {shown(match['baseline'])!r} is out of range (an ADC value, under 2**31 in size)")
    for (what, pattern), text in zip(_INTEGER_FIELDS, fields[3:8], strict=False):  # trailing fields are optional
        if not re.fullmatch(pattern, text):
            refuse(f"the {what} field {shown(text)!r} is not " + ("an unsigned integer" if pattern == r"\d+" else "an integer"))


def check_signal_files(header: Path, meta, fs: float) -> dict[str, Path]:
    """Refuse what wfdb would misread; map each signal file name to the file to read.

    Args:
        header: the header file, for messages; the signal files are beside it.
        meta: the header's fields as wfdb parses them (`n_sig`, `sig_len`; per signal `file_name`, `fmt`,
            `samps_per_frame`, `byte_offset`).
        fs: the sampling rate in Hz.


    Checks names (plain names beside the header), formats, samples per
    frame and byte offsets, and that each file holds the bytes the header
    declares (no more, no less), before anything is read.

    Raises:
        RecordError: naming the header and the signal file.
    """
    if len(meta.file_name or ()) != meta.n_sig:
        raise RecordError(header, f"the header declares {meta.n_sig} signals but describes {len(meta.file_name or ())}")
    frame_bytes: dict[str, float] = {}
    frame_samples: dict[str, int] = {}
    offsets: dict[str, int] = {}
    for i, name in enumerate(meta.file_name):
        _check_file_name(header, name)
        fmt = str(meta.fmt[i])
        if fmt not in _WFDB_BYTES_PER_SAMPLE:
            raise RecordError(
                header, f"unsupported WFDB storage format {fmt!r} for signal {i + 1}; expected one of {', '.join(_WFDB_BYTES_PER_SAMPLE)}"
            )
        spf = int(meta.samps_per_frame[i] or 1) if meta.samps_per_frame else 1
        if not 1 <= spf <= _MAX_SAMPS_PER_FRAME:
            raise RecordError(header, f"signal {i + 1} declares {spf} samples per frame; expected 1 to {_MAX_SAMPS_PER_FRAME}")
        per_sample = _WFDB_BYTES_PER_SAMPLE[fmt]
        frame_bytes[name] = frame_bytes.get(name, 0.0) + (math.nan if per_sample is None else per_sample * spf)
        frame_samples[name] = frame_samples.get(name, 0) + spf
        offsets.setdefault(name, int(meta.byte_offset[i] or 0) if meta.byte_offset else 0)
    files = {}
    for name, frame in frame_bytes.items():
        target = _find_beside(header, name)
        available = target.stat().st_size - offsets[name]
        if available <= 0:
            raise RecordError(header, f"the signal file {name!r} holds no data after its byte offset {offsets[name]}")
        if math.isnan(frame):  # compressed: bound the decoded size only
            if meta.sig_len is None:
                raise RecordError(header, f"the header declares no signal length for the compressed {name!r}: add it to the record line")
            decoded = meta.sig_len * frame_samples[name] * _DECODED_SAMPLE_BYTES
            check_decoded_size(decoded, available, header, f"the compressed signal file {name!r} ({meta.sig_len} samples)")
        elif meta.sig_len is None:  # wfdb takes the length from the file: bound it before anything is decoded
            implied = int(available // frame)
            check_whole_read(header, implied, frame_samples[name])
            if implied / fs > UNDECLARED_MAX_S:
                raise RecordError(
                    header,
                    f"the header declares no signal length and {name!r} holds about {implied} samples ({implied / fs / 3600:.1f} h at {fs:g} Hz): "
                    f"a record over {UNDECLARED_MAX_S / 3600:g} h must declare its length in the record line, so it can be read in pieces",
                )
        else:
            needed = math.ceil(frame * meta.sig_len)
            if available < needed or available > needed + 16 + frame:
                raise RecordError(
                    header,
                    f"the header declares {meta.sig_len} samples ({needed} bytes) but {name!r} holds "
                    f"{available} bytes, about {int(available // frame)} samples: fix the header's length or the file",
                )
        files[name] = target
    return files


def _check_file_name(header: Path, name: str) -> None:
    """Refuse signal file names that leave the header's folder (`../x.dat`, `/abs`) or name a header."""
    if not name or name in (".", "..") or os.path.basename(name) != name or "\\" in name or name.lower().endswith(".hea"):
        raise RecordError(header, f"signal file name {name!r} must be a plain file name beside the header")


def _find_beside(header: Path, name: str) -> Path:
    """The signal file `name` in the header's folder, matched case-insensitively if need be.

    Links are followed only into the header's folder tree (as named, or where a linked header lies): a signal file
    linked to `/etc/passwd` or another folder's file is refused, so a record handed over cannot make us read it.
    """
    path = header.parent / name
    if not path.exists() and not path.is_symlink():
        matches = [p for p in header.parent.iterdir() if p.name.lower() == name.lower()]
        path = matches[0] if len(matches) == 1 else path
    check_file(path, "the signal file", header)
    target = path.resolve()
    if not (target.is_relative_to(header.parent.resolve()) or target.is_relative_to(header.resolve().parent)):  # the second only if need be
        raise RecordError(
            header,
            f"the signal file {name!r} is a link to {shown(str(target))}, outside the record's folder: "
            "copy the file beside the header (links within the folder, or beside a linked header, are read)",
        )
    return path
