"""Checked reading of PhysioNet WFDB records (`.hea` + `.dat`/`.mat`) through `wfdb`.

`wfdb` trusts its header: it defaults a missing or unparsable sampling rate to
250 Hz, reads signal files named with `../` or absolute paths, parses signal
lines loosely (`16+-10 1000/mV` gives an ADC gain of -10, inverting the
signal) and allocates whatever length the header declares. :func:`read_wfdb`
checks the record line field by field, each signal line against the WFDB
header specification (:func:`check_signal_line`), the declared length against
`MAX_DURATION_S` (:func:`check_header_length`), and each signal file's name,
format and size against the header before `wfdb` reads a byte, and turns
every failure into a :class:`~ecgrhythm.records.core.RecordError` naming the header.
:func:`open_wfdb` makes the same checks and then reads sample ranges on
demand, for records up to `MAX_STREAM_DURATION_S` in bounded memory.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import (
    MAX_DURATION_S,
    MAX_LEADS,
    MAX_STREAM_DURATION_S,
    Decoded,
    RecordError,
    check_decoded_size,
    check_file,
    check_fs,
    check_length,
    header_bytes,
    header_lines,
    shown,
    signal_file_names,
    validate_piece,
)
from ecgrhythm.records.registry import HEADER_SUFFIX, register_reader

__all__ = [
    "read_wfdb",
    "reads_in_pieces",
    "open_wfdb",
    "WfdbStream",
    "header_length",
    "header_of",
    "read_header_comments",
    "sibling_header",
    "check_header_length",
    "check_signal_line",
]

_MAX_SAMPS_PER_FRAME = 64
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
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}
# wfdb holds decoded samples as 8-byte numbers while converting them: the decoded size of a FLAC signal file.
_DECODED_SAMPLE_BYTES = 8
# The fields of a signal line after the file name (WFDB header specification, `man 5 header`).
_FORMAT_FIELD = re.compile(r"(?P<fmt>\d+)(?:x(?P<spf>\d+))?(?::\d+)?(?:\+\d+)?")
_GAIN_FIELD = re.compile(r"(?P<gain>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:\(-?\d+\))?(?:/[\w^?%/-]+)?")
_INTEGER_FIELDS = (("ADC resolution", r"\d+"), ("ADC zero", r"-?\d+"), ("initial value", r"-?\d+"), ("checksum", r"-?\d+"), ("block size", r"\d+"))


def _record_line(header: Path, raw: bytes):
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
    return int(fields[1]), fs, int(fields[3]) if len(fields) >= 4 else None


def _is_count(text: str) -> bool:
    return text.isascii() and text.isdigit()


def read_wfdb(header: Path, *, fs: float | None, **_options) -> Decoded:
    """Read the WFDB record of `header`, checking it before `wfdb` reads anything.

    Args:
        header: the `.hea` file (any case of the extension).
        fs: sampling rate (Hz) to use when the header gives none.

    Returns:
        The samples, float32 `(sig_len, n_sig)` in mV, with the header's rate,
        lead names and comments (`read_record` validates them).

    Raises:
        RecordError: the header or a signal file is missing, malformed,
            declares more than 24 h, or disagrees with the other.
    """
    with open_wfdb(header, fs=fs, max_s=MAX_DURATION_S) as stream:
        signal = stream.read(0, stream.n_samples, whole=True)
        return Decoded(signal, stream.fs, stream.sig_name, stream.comments)


def header_length(header: Path, fs: float | None = None) -> tuple[int | None, float | None]:
    """`(sig_len, fs)` from a WFDB header's record line alone (`fs` when the header gives none), reading no signal.

    Raises:
        RecordError: the header is missing, unreadable or its record line is malformed.
    """
    check_file(header, "header")
    _, header_fs, sig_len = _record_line(header, header_bytes(header))
    return sig_len, header_fs if header_fs is not None else fs


@contextlib.contextmanager
def open_wfdb(header: Path, *, fs: float | None = None, max_s: float = MAX_STREAM_DURATION_S):
    """Open a WFDB record for reading in pieces, after the checks :func:`read_wfdb` makes.

    The header and signal files are checked as for a whole read, but the
    declared length may reach `max_s` (14 days by default); nothing is read
    until :meth:`WfdbStream.read` asks for a range of samples.

    Args:
        header: the `.hea` file (any case of the extension).
        fs: sampling rate (Hz) to use when the header gives none.
        max_s: longest record accepted, in seconds.

    Yields:
        A :class:`WfdbStream`, usable until the block ends.

    Raises:
        RecordError: the header or a signal file is missing, malformed,
            declares more than `max_s`, or disagrees with the other.
    """
    import wfdb

    header = Path(header)
    raw = header_bytes(header)
    n_sig, header_fs, sig_len = _record_line(header, raw)
    if header_fs is None and fs is None:
        raise RecordError(header, "the header gives no sampling rate: pass --fs (Hz)")
    fs = check_fs(fs if header_fs is None else header_fs, header, "fix the header's record line" if header_fs is not None else "pass --fs (Hz)")
    if not 1 <= n_sig <= MAX_LEADS:
        raise RecordError(header, f"the header declares {n_sig} signals; expected 1 to {MAX_LEADS}")
    if sig_len == 0:
        raise RecordError(header, "the header declares a signal length of 0 samples")
    check_header_length(header, sig_len, fs, max_s)
    for i, fields in enumerate(header_lines(raw)[1:]):
        check_signal_line(header, i, fields)
    # wfdb reads `<base>.hea` and the signal files beside it. When the names differ from what it expects
    # (`.HEA`, `X.MAT` named as `x.mat`), it reads a private folder holding a copy of the checked header
    # and links to the checked signal files.
    with contextlib.ExitStack() as stack:
        view = None if header.suffix == ".hea" else _wfdb_view(stack, raw)
        base = str(header.with_suffix("")) if view is None else str(view / "record")
        try:
            meta = wfdb.rdheader(base)
        except Exception as exc:
            raise RecordError(header, f"invalid WFDB header ({type(exc).__name__}: {exc})") from None
        if meta.n_sig != n_sig or meta.sig_len != sig_len:
            raise RecordError(
                header,
                f"the header's record line is not valid WFDB: wfdb reads {meta.n_sig} signals of {meta.sig_len} samples at {meta.fs} Hz from it",
            )
        files = _check_signal_files(header, meta, fs)
        if view is None and any(path.name != name for name, path in files.items()):
            view = _wfdb_view(stack, raw)
            base = str(view / "record")
        if view is not None:
            for name, path in files.items():
                os.symlink(path.resolve(), view / name)
        yield WfdbStream(header, base, meta, fs)


class WfdbStream:
    """A checked WFDB record open for reading sample ranges (from :func:`open_wfdb`).

    Attributes:
        header: the header file.
        fs: sampling rate in Hz.
        n_samples: samples per signal (`None` if the header declares no length).
        sig_name: lead names.
        comments: header comment lines.
        record_name: the header's file name without its extension.
    """

    def __init__(self, header: Path, base: str, meta, fs: float):
        self.header, self._base, self.fs = header, base, fs
        self.n_samples = meta.sig_len
        self.sig_name = tuple(str(n) if n else f"lead{i + 1}" for i, n in enumerate(meta.sig_name or [None] * meta.n_sig))
        self.comments = tuple(str(c) for c in meta.comments or ())
        self.record_name = header.stem
        self._scale = np.array([_UNIT_TO_MV.get(str(u or "").strip().lower(), 1.0) for u in (meta.units or [""] * meta.n_sig)], dtype=np.float32)

    @property
    def duration_s(self) -> float:
        return (self.n_samples or 0) / self.fs

    def read(self, start: int, stop: int, channels=None, *, whole: bool = False) -> np.ndarray:
        """Samples `start:stop` of `channels` (indices; default all), float32 `(stop - start, n_channels)` in mV.

        A piece is validated as a record is (:func:`~ecgrhythm.records.core.validate_piece`:
        shape and finite samples) except for its duration. With `whole`, the
        range is the whole record and wfdb checks the signal file's length.

        Raises:
            RecordError: naming the header, if the samples cannot be read or are not finite.
        """
        import wfdb

        channels = list(range(len(self.sig_name))) if channels is None else [int(c) for c in channels]
        ranged = {} if whole else {"sampfrom": int(start), "sampto": int(stop), "channels": channels}
        try:
            # wfdb's own numeric warnings (an overflowing gain, say) would only echo what validation reports next
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                rec = wfdb.rdrecord(self._base, physical=True, return_res=32, ignore_skew=True, **ranged)
        except Exception as exc:
            raise RecordError(self.header, f"cannot read the signal ({type(exc).__name__}: {exc})") from None
        signal = rec.p_signal
        if signal is None or signal.ndim != 2 or signal.shape[1] != len(channels):
            raise RecordError(self.header, "the signal file holds no samples for the declared signals")
        expected = self.n_samples if whole else stop - start
        if expected is not None and signal.shape[0] != expected:
            raise RecordError(
                self.header,
                f"the header declares {expected} samples but the signal file holds {signal.shape[0]}" + ("" if whole else f" from sample {start}"),
            )
        signal = np.ascontiguousarray(signal, dtype=np.float32)
        scale = self._scale[channels]
        if (scale != 1).any():
            signal *= scale
        if not whole:
            validate_piece(signal, self.fs, source=f"{self.header} (samples {start} to {stop})")
        return signal


def read_header_comments(header) -> tuple[str, ...]:
    """The `#` comment lines of a WFDB header, without the `#` (read within the header-size limit, no signal read).

    Raises:
        RecordError: the header is missing, unreadable, empty, binary or too large.
    """
    header = Path(header)
    check_file(header, "header")
    try:
        raw = header_bytes(header)
    except OSError as exc:
        raise RecordError(header, f"cannot read the header: {exc.strerror or exc}") from None
    lines = (line.strip() for line in raw.decode("utf-8", errors="replace").splitlines())
    return tuple(line.lstrip("#").strip() for line in lines if line.startswith("#"))


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


def check_signal_line(header: Path, index: int, fields: list[str]) -> None:
    """Check one signal line strictly against the WFDB header specification.

    A line is `FILE FORMAT[xSPF][:SKEW][+OFFSET] [GAIN[(BASELINE)][/UNITS] [RES [ZERO [INIT [CHECKSUM [BLOCK [DESC...]]]]]]]`.
    Refused, though `wfdb` accepts them: a file name that is not a plain name
    beside the header; a format field with anything else in it (`16+-10`,
    `16x`, a sign); an ADC gain that is not an unsigned decimal number
    greater than 0 and finite (`-10`, `0`, `+5`, `inf`, `nan`), or is followed
    by anything but a `(BASELINE)` integer and `/UNITS`; an ADC resolution or
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
    for (what, pattern), text in zip(_INTEGER_FIELDS, fields[3:8], strict=False):  # trailing fields are optional
        if not re.fullmatch(pattern, text):
            refuse(f"the {what} field {shown(text)!r} is not " + ("an unsigned integer" if pattern == r"\d+" else "an integer"))


def _wfdb_view(stack: contextlib.ExitStack, raw: bytes) -> Path:
    """A temporary folder, removed when `stack` closes, holding `raw` as `record.hea`."""
    view = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecgrhythm-")))
    (view / "record.hea").write_bytes(raw)
    return view


def _check_signal_files(header: Path, meta, fs: float) -> dict[str, Path]:
    """Refuse what wfdb would misread; map each signal file name to the file to read.

    Checks names (plain names beside the header), formats, samples per
    frame and byte offsets, and that each file holds the bytes the header
    declares (no more, no less), before anything is read.
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
    """The signal file `name` in the header's folder, matched case-insensitively if need be."""
    path = header.parent / name
    if not path.exists() and not path.is_symlink():
        matches = [p for p in header.parent.iterdir() if p.name.lower() == name.lower()]
        path = matches[0] if len(matches) == 1 else path
    check_file(path, "the signal file", header)
    return path


def header_of(path) -> Path | None:
    """The WFDB header a record file is read through: `path` itself if it is a `.hea`, else :func:`sibling_header`."""
    path = Path(path)
    return path if path.suffix.lower() == HEADER_SUFFIX else sibling_header(path)


def sibling_header(path: Path) -> Path | None:
    """The `.hea` beside a `.mat`/`.dat` file that names it (or cannot be parsed), else None."""
    if path.suffix.lower() not in (".mat", ".dat"):
        return None
    for suffix in (HEADER_SUFFIX, HEADER_SUFFIX.upper()):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            try:
                names = signal_file_names(header_bytes(candidate))
            except (RecordError, OSError):
                return candidate  # broken header: report it rather than guess
            if path.name.lower() in {n.lower() for n in names}:
                return candidate
    return None


register_reader(HEADER_SUFFIX, read_wfdb, needs_fs=False)
