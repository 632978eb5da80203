"""The record type, its one validation boundary, and the limits and file checks every reader shares.

Nothing here knows a file format: the format modules (`wfdb_reader`,
`mat_reader`, `csv_reader`, `npy_reader`) build on it, and `read_record`
validates what they decode through :func:`validate_signal`.

Limits on what a small hostile file can make a reader allocate:

- :data:`MAX_DURATION_S` (24 h) bounds a record read whole into memory;
  readers apply it from the header or the array's dimensions
  (:func:`check_length`) before they read the samples. WFDB records read in
  pieces (:func:`~ecgrhythm.records.wfdb_reader.open_wfdb`) may last up to
  :data:`MAX_STREAM_DURATION_S` (14 days): their memory does not grow with length.
- Compressed data, and whatever a reader decodes, are bounded by :mod:`.limits`.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import numbers
import stat
from pathlib import Path
from typing import NamedTuple

import numpy as np

MIN_DURATION_S = 2.0
MAX_DURATION_S = 24 * 3600.0  # bounds the work a small hostile file can ask for
MAX_STREAM_DURATION_S = 14 * 24 * 3600.0  # records read in pieces: a 14-day patch
MAX_LEADS = 64
MIN_FS, MAX_FS = 20.0, 100_000.0
MAX_HEADER_BYTES = 1 << 20
MAX_SHOWN_NAME = 80  # characters of a file-supplied name echoed in messages
MAX_LEAD_NAME = 64  # characters of a lead name kept from a file: EDF allows 16, the 12 standard leads need 3


class RecordError(ValueError):
    """A record that cannot be read or used. `str(err)` names the file and the problem.

    A `ValueError`, with the file (`path`) and the problem (`reason`) as attributes.

    Example:
        >>> import ecgrhythm
        >>> ecgrhythm.read_record("../shared/data/cinc2017/A99999")
        Traceback (most recent call last):
        ...
        ecgrhythm.records.core.RecordError: ../shared/data/cinc2017/A99999: not found...
    """

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def failure_reason(exc: BaseException) -> str:
    """Why a record failed, for a batch that goes on past it: a :class:`RecordError`'s reason, else the unexpected error."""
    return exc.reason if isinstance(exc, RecordError) else f"unexpected error ({type(exc).__name__}: {exc})"


class Annotation(NamedTuple):
    """A time-stamped note of a recording (an EDF+ annotation): seconds from the start, duration (None if not given), text."""

    onset_s: float
    duration_s: float | None
    text: str


@dataclasses.dataclass(frozen=True, eq=False)
class EcgRecord:
    """One ECG recording.

    Attributes:
        signal: float32 array `(n_samples, n_leads)` in mV.
        fs: sampling rate in Hz.
        sig_name: lead names, one per column of `signal`.
        record_name: the record's name (the file name without its extension).
        comments: header comment lines (WFDB), empty for other formats.
        start_time: when the recording started (EDF), None if the file does not say.
        annotations: the recording's :class:`Annotation` s (EDF+), in file order.

    Read one with :func:`~ecgrhythm.records.read_record`, or make one from an array: it is checked
    (:func:`validate_signal`: float32, 2 s to 24 h, 1 to 64 leads, finite samples).

    Example:
        >>> import numpy as np
        >>> import ecgrhythm
        >>> record = ecgrhythm.EcgRecord(np.zeros((3000, 2), np.float32), 250.0, ("I", "II"), "mine")
        >>> record.n_samples, record.n_leads, record.duration_s
        (3000, 2, 12.0)
        >>> ecgrhythm.EcgRecord(np.zeros((100, 1), np.float32), 250.0, ("I",), "short")
        Traceback (most recent call last):
        ...
        ecgrhythm.records.core.RecordError: short: record is 0.40 s long (100 samples at 250 Hz); the minimum is 2 s
    """

    signal: np.ndarray
    fs: float
    sig_name: tuple[str, ...]
    record_name: str
    comments: tuple[str, ...] = ()
    start_time: datetime.datetime | None = None
    annotations: tuple[Annotation, ...] = ()

    def __post_init__(self):
        validate_signal(self.signal, self.fs, source=self.record_name)
        if len(self.sig_name) != self.signal.shape[1]:
            raise RecordError(self.record_name, f"{len(self.sig_name)} lead names for {self.signal.shape[1]} leads")

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[0])

    @property
    def n_leads(self) -> int:
        return int(self.signal.shape[1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


@dataclasses.dataclass(frozen=True, eq=False)
class Decoded:
    """What a format reader returns; `read_record` validates it and makes the :class:`EcgRecord`.

    Attributes:
        signal: float32 array `(n_samples, n_leads)` in mV.
        fs: sampling rate in Hz (the header's, or the one the caller passed).
        sig_name: lead names, or None for `lead1`, `lead2`, ...
        comments: header comment lines, if the format has them.
        start_time: when the recording started, if the format says.
        annotations: the recording's :class:`Annotation` s, if the format has them.
    """

    signal: np.ndarray
    fs: float
    sig_name: tuple[str, ...] | None = None
    comments: tuple[str, ...] = ()
    start_time: datetime.datetime | None = None
    annotations: tuple[Annotation, ...] = ()


# How to give a sampling rate, in words right for a Python caller and a command-line user alike.
GIVE_FS = "give its sampling rate in Hz (fs)"


def check_fs(fs, source, fix=GIVE_FS) -> float:
    """The sampling rate as a float, or a :class:`RecordError` saying how to fix it.

    The one rule for every entry point (readers, `fs=`, `--fs`, the service's `fs` field):
    a real number from 20 to 100,000 Hz.
    """
    ok = isinstance(fs, numbers.Real) and not isinstance(fs, bool) and math.isfinite(fs) and MIN_FS <= fs <= MAX_FS
    if not ok:
        shown = f"{float(fs):g} Hz" if isinstance(fs, numbers.Real) else repr(fs)
        raise RecordError(source, f"invalid sampling rate {shown}: expected {MIN_FS:g} to {MAX_FS:g} Hz; {fix}")
    return float(fs)


def check_length(n_samples: int, fs: float, source, max_s: float = MAX_DURATION_S) -> None:
    """Refuse a record longer than `max_s` seconds, from its sample count alone.

    Readers call it with the length a header or an array's dimensions declare,
    before reading any samples; :func:`validate_signal` calls it on what was read.

    Args:
        n_samples: samples per lead.
        fs: sampling rate in Hz.
        source: file or record name used in the message.
        max_s: the limit, :data:`MAX_DURATION_S` for a record read whole,
            :data:`MAX_STREAM_DURATION_S` for a WFDB record read in pieces.

    Raises:
        RecordError: the record would be longer than `max_s`.
    """
    if n_samples / fs > max_s:
        fix = (
            "split it into parts"
            if max_s >= MAX_STREAM_DURATION_S
            else f"records over {max_s / 3600:g} h are read in pieces only as WFDB records (.hea + .dat) or EDF/BDF files, up to "
            f"{MAX_STREAM_DURATION_S / 86400:g} days: convert it, or split it into parts"
        )
        raise RecordError(
            source, f"record is {n_samples / fs / 3600:.1f} h long ({n_samples} samples at {fs:g} Hz); the maximum is {max_s / 3600:g} h: {fix}"
        )


def validate_signal(signal, fs, *, source="signal") -> None:
    """Check a signal and its rate; raise :class:`RecordError` naming `source` if unusable.

    Args:
        signal: array `(n_samples, n_leads)`, float32, finite.
        fs: sampling rate in Hz (20 to 100,000).
        source: file or record name used in the message.

    Raises:
        RecordError: wrong shape or dtype, 0 or more than 64 leads, an invalid
            rate, shorter than `MIN_DURATION_S` or longer than `MAX_DURATION_S`,
            or NaN/infinite samples.
    """
    validate_piece(signal, fs, source=source)
    n = signal.shape[0]
    if n / fs < MIN_DURATION_S:
        raise RecordError(source, f"record is {n / fs:.2f} s long ({n} samples at {fs:g} Hz); the minimum is {MIN_DURATION_S:g} s")
    check_length(n, fs, source)


def validate_piece(signal, fs, *, source="signal") -> None:
    """Check a signal or a piece of one read from a long record: everything :func:`validate_signal` checks but its duration.

    Raises:
        RecordError: wrong shape or dtype, 0 or more than 64 leads, an invalid
            rate, or NaN/infinite samples.
    """
    if not isinstance(signal, np.ndarray) or signal.ndim != 2:
        shape = getattr(signal, "shape", None)
        raise RecordError(source, f"expected a signal of shape (n_samples, n_leads), got shape {shape}")
    if signal.dtype != np.float32:
        raise RecordError(source, f"expected float32 samples, got {signal.dtype}")
    leads = signal.shape[1]
    if leads < 1 or leads > MAX_LEADS:
        raise RecordError(source, f"expected 1 to {MAX_LEADS} leads, got {leads}")
    check_fs(fs, source)
    # A float64 sum is finite exactly when every float32 sample is, without a temporary array.
    with np.errstate(invalid="ignore", over="ignore"):
        total = signal.sum(dtype=np.float64)
    if not math.isfinite(total):
        bad = int(np.count_nonzero(~np.isfinite(signal)))
        raise RecordError(source, f"{bad} of {signal.size} samples are NaN, infinite or beyond float32 range")


def as_signal(array, source) -> np.ndarray:
    """Shape a numeric array as `(n_samples, n_leads)` float32; time is the longer axis."""
    array = np.asarray(array)
    if array.dtype.kind not in "iuf" or array.dtype.names or array.size == 0:
        raise RecordError(source, f"expected a non-empty array of real numbers, got dtype {array.dtype} with shape {array.shape}")
    if array.ndim == 1:
        array = array[:, None]
    elif array.ndim != 2:
        raise RecordError(source, f"expected a 1-D or 2-D array (samples x leads), got shape {array.shape}")
    elif array.shape[0] < array.shape[1]:
        array = array.T
    if array.shape[1] > MAX_LEADS:
        raise RecordError(source, f"expected at most {MAX_LEADS} leads, got an array of shape {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32)


def check_file(path: Path, what="file", source=None) -> None:
    """Raise unless `path` is (a link to) an existing regular file."""
    source = path if source is None else source
    if not path.exists():
        broken = path.is_symlink()
        raise RecordError(source, f"{what} {path.name!r} " + ("is a broken symbolic link" if broken else "not found"))
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise RecordError(source, f"{what} {path.name!r} is {kind}: pass a record file")


def shown(name: str) -> str:
    """`name` as echoed in a message: at most :data:`MAX_SHOWN_NAME` characters, then `...`."""
    return name if len(name) <= MAX_SHOWN_NAME else name[:MAX_SHOWN_NAME] + "..."


def lead_names(names, n_leads: int) -> tuple[str, ...]:
    """The lead names a file gives, made safe to show and to write: characters that do not print (line breaks, tabs,
    terminal escapes) become spaces, surrounding spaces go, and a name is cut to :data:`MAX_LEAD_NAME` characters; a
    lead without a name (or none left) is `lead1`, `lead2`, ... by its place.

    Example:
        >>> from ecgrhythm.records.core import lead_names
        >>> lead_names(["II", "V1\\x1b[2J", "", None], 4)
        ('II', 'V1 [2J', 'lead3', 'lead4')
    """
    given = list(names or ())
    cleaned = ("".join(c if c.isprintable() else " " for c in str(given[i])).strip() if i < len(given) and given[i] else "" for i in range(n_leads))
    return tuple(name[:MAX_LEAD_NAME] or f"lead{i + 1}" for i, name in enumerate(cleaned))


def header_bytes(header: Path) -> bytes:
    """The bytes of a WFDB header, refused if not a regular file (never opened: a FIFO would block), empty, over 1 MiB
    (read no further, even if it grows while read) or binary."""
    status = header.stat()
    if not stat.S_ISREG(status.st_mode):
        raise RecordError(header, f"the header file {header.name!r} is not a regular file")
    if status.st_size == 0:
        raise RecordError(header, "the header file is empty")
    if status.st_size > MAX_HEADER_BYTES:
        raise RecordError(header, f"the header file is {status.st_size} bytes, too large for a WFDB header")
    with open(header, "rb") as f:
        raw = f.read(MAX_HEADER_BYTES + 1)
    if len(raw) > MAX_HEADER_BYTES:
        raise RecordError(header, "the header file grew past 1 MiB while it was read, too large for a WFDB header")
    if b"\0" in raw:
        raise RecordError(header, "the header file is binary, not a WFDB text header")
    return raw


def header_lines(raw: bytes) -> list[list[str]]:
    """Fields of the non-comment lines of a header: the record line, then the signal lines."""
    lines = (line.strip() for line in raw.decode("utf-8", errors="replace").splitlines())
    return [line.split() for line in lines if line and not line.startswith("#")]


def signal_file_names(raw: bytes) -> list[str]:
    """The signal file name of each signal line of a header."""
    return [fields[0] for fields in header_lines(raw)[1:]]
