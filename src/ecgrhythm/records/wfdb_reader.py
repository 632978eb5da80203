"""Checked reading of PhysioNet WFDB records (`.hea` + `.dat`/`.mat`), as `wfdb` reads them.

`wfdb` trusts its header: it defaults a missing or unparsable sampling rate to
250 Hz, reads signal files named with `../` or absolute paths, parses signal
lines loosely (`16+-10 1000/mV` gives an ADC gain of -10, inverting the
signal) and allocates whatever length the header declares. :func:`read_wfdb`
checks the record line field by field, each signal line against the WFDB
header specification (:func:`~.wfdb_header.check_signal_line`), the declared length against
`MAX_DURATION_S` (:func:`~.wfdb_header.check_header_length`), and each signal file's name,
format and size against the header before `wfdb` reads a byte, and turns
every failure into a :class:`~ecgrhythm.records.core.RecordError` naming the header.
The checks see the header as wfdb will (its own regular expressions: :func:`~.wfdb_fields.header_fields`). A plain
record (format 16, one signal file: every record of the CinC and CPSC data) is then decoded without wfdb, to the
same samples (:func:`~.wfdb_fields.read_plain`); any other is read by `wfdb.rdrecord`, which parses the header once more.
:func:`open_wfdb` makes the same checks and then reads sample ranges on
demand, for records up to `MAX_STREAM_DURATION_S` in bounded memory.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import tempfile
import types
import warnings
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import (
    GIVE_FS,
    MAX_DURATION_S,
    MAX_LEADS,
    MAX_STREAM_DURATION_S,
    Decoded,
    RecordError,
    check_file,
    check_fs,
    header_bytes,
    header_lines,
    lead_names,
    signal_file_names,
    validate_piece,
)
from ecgrhythm.records.registry import HEADER_SUFFIX, register_reader
from ecgrhythm.records.wfdb_fields import header_fields, plain_layout, read_plain, read_plain_range
from ecgrhythm.records.wfdb_header import (
    check_header_length,
    check_signal_files,
    check_signal_line,
    check_whole_read,
    record_line,
)

__all__ = [
    "read_wfdb",
    "open_wfdb",
    "WfdbStream",
    "header_length",
    "header_of",
    "fill_missing",
    "read_header_comments",
    "sibling_header",
]

logger = logging.getLogger(__name__)

READ_VALUES = 1 << 22  # values (samples x leads) wfdb decodes at a time in a ranged read: about 100 MB of its temporaries
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


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
    with _checked(Path(header), fs, MAX_DURATION_S) as (base, fs, view, files):
        if view.sig_len is not None:  # else check_signal_files bounded the length the file implies
            check_whole_read(header, view.sig_len, view.n_sig)
        rec = read_plain(header, view, files)  # None unless plain: wfdb parses the header then, as `view` foretold
        rec = _rdrecord(header, base) if rec is None else rec
        stream = WfdbStream(header, base, rec, fs)
        signal = stream._samples(rec, list(range(view.n_sig)))
        fill_missing(signal, header)
        return Decoded(signal, stream.fs, stream.sig_name, stream.comments, start_time=stream.start_time)


def header_length(header: Path, fs: float | None = None) -> tuple[int | None, float | None]:
    """`(sig_len, fs)` from a WFDB header's record line alone (`fs` when the header gives none), reading no signal.

    Raises:
        RecordError: the header is missing, unreadable or its record line is malformed.
    """
    check_file(header, "header")
    _, header_fs, sig_len = record_line(header, header_bytes(header))
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
    with _checked(header, fs, max_s) as (base, fs, view, files):
        try:
            meta = wfdb.rdheader(base)
        except Exception as exc:
            raise RecordError(header, f"invalid WFDB header ({type(exc).__name__}: {exc})") from None
        yield WfdbStream(header, base, meta, fs, plain=plain_layout(view, files))


@contextlib.contextmanager
def _checked(header: Path, fs: float | None, max_s: float):
    """The checks of :func:`open_wfdb`, before `wfdb` reads a byte: yields `(base, fs, view, files)`, the record name
    to hand `wfdb` (valid until the block ends), the sampling rate, :func:`~.wfdb_fields.header_fields` of the
    header and the checked signal file of each file name.

    The header is read once, within its size limit; what `wfdb` will make of it comes from the same regular
    expressions `wfdb.rdheader` applies (:func:`~.wfdb_fields.header_fields`), so the signal files are bounded by the
    lengths, formats and offsets wfdb will use, without parsing the header through wfdb (and pandas) first.
    """
    raw = header_bytes(header)
    n_sig, header_fs, sig_len = record_line(header, raw)
    if header_fs is None and fs is None:
        raise RecordError(header, f"the header gives no sampling rate: {GIVE_FS}")
    fs = check_fs(fs if header_fs is None else header_fs, header, "fix the header's record line" if header_fs is not None else GIVE_FS)
    if not 1 <= n_sig <= MAX_LEADS:
        raise RecordError(header, f"the header declares {n_sig} signals; expected 1 to {MAX_LEADS}")
    if sig_len == 0:
        raise RecordError(header, "the header declares a signal length of 0 samples")
    check_header_length(header, sig_len, fs, max_s)
    for i, fields in enumerate(header_lines(raw)[1:]):
        check_signal_line(header, i, fields)
    view = header_fields(header, raw)
    if view.n_sig != n_sig or view.sig_len != sig_len:
        raise RecordError(
            header,
            f"the header's record line is not valid WFDB: wfdb reads {view.n_sig} signals of {view.sig_len} samples at {view.fs} Hz from it",
        )
    files = check_signal_files(header, view, fs)
    # wfdb reads `<base>.hea` and the signal files beside it. When the names differ from what it expects
    # (`.HEA`, `X.MAT` named as `x.mat`), it reads a private folder holding a copy of the checked header
    # and links to the checked signal files.
    with contextlib.ExitStack() as stack:
        folder = None if header.suffix == ".hea" else _wfdb_view(stack, raw)
        if folder is None and any(path.name != name for name, path in files.items()):
            folder = _wfdb_view(stack, raw)
        if folder is not None:
            for name, path in files.items():
                os.symlink(path.resolve(), folder / name)
        yield str(header.with_suffix("")) if folder is None else str(folder / "record"), fs, view, files


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

    def __init__(self, header: Path, base: str, meta, fs: float, *, plain=None):
        self.header, self._base, self.fs, self._plain = header, base, fs, plain
        self.n_samples = meta.sig_len
        self.sig_name = lead_names(meta.sig_name, meta.n_sig)
        self.comments = tuple(str(c) for c in meta.comments or ())
        self.record_name = header.stem
        self.start_time = _start_time(meta)
        self._scale = np.array([_UNIT_TO_MV.get(str(u or "").strip().lower(), 1.0) for u in (meta.units or [""] * meta.n_sig)], dtype=np.float32)

    @property
    def duration_s(self) -> float:
        return (self.n_samples or 0) / self.fs

    def read(self, start: int, stop: int, channels=None) -> np.ndarray:
        """Samples `start:stop` of `channels` (indices; default all), float32 `(stop - start, n_channels)` in mV.

        A range is read in parts of at most :data:`READ_VALUES` values, so what wfdb holds while decoding stays
        bounded however high the rate; a plain record (:func:`~.wfdb_fields.plain_layout`) is decoded without wfdb,
        to the same samples (:func:`~.wfdb_fields.read_plain_range`), sparing wfdb's parse of the header at every read. Samples the format marks missing (WFDB's invalid-sample value) are filled
        (:func:`fill_missing`); the piece is then validated as a record is
        (:func:`~ecgrhythm.records.core.validate_piece`: shape and finite samples) except for its duration.
        (:func:`read_wfdb` reads a whole record in one call, so that wfdb checks the signal file's length.)

        Raises:
            RecordError: naming the header, if the samples cannot be read or are not finite.
        """
        channels = list(range(len(self.sig_name))) if channels is None else [int(c) for c in channels]
        step = max(1, READ_VALUES // len(channels))
        signal = np.empty((max(0, int(stop) - int(start)), len(channels)), np.float32)
        for a in range(int(start), int(stop), step):
            b = min(a + step, int(stop))
            if self._plain is not None:
                rec = types.SimpleNamespace(p_signal=read_plain_range(self.header, self._plain, a, b, channels))
            else:
                rec = _rdrecord(self.header, self._base, sampfrom=a, sampto=b, channels=channels)
            signal[a - start : b - start] = self._samples(rec, channels, a, b)
        fill_missing(signal, f"{self.header} (samples {start} to {stop})")
        validate_piece(signal, self.fs, source=f"{self.header} (samples {start} to {stop})")
        return signal

    def _samples(self, rec, channels: list[int], start: int | None = None, stop: int | None = None) -> np.ndarray:
        """The samples of `rec` (wfdb's read of `channels`, samples `start:stop` or all) as float32 in mV, counted."""
        signal = rec.p_signal
        if signal is None or signal.ndim != 2 or signal.shape[1] != len(channels):
            raise RecordError(self.header, "the signal file holds no samples for the declared signals")
        expected = self.n_samples if start is None else stop - start
        if expected is not None and signal.shape[0] != expected:
            raise RecordError(
                self.header,
                f"the header declares {expected} samples but the signal file holds {signal.shape[0]}"
                + ("" if start is None else f" from sample {start}"),
            )
        signal = np.ascontiguousarray(signal, dtype=np.float32)
        scale = self._scale[channels]
        if (scale != 1).any():
            signal *= scale
        return signal


def _rdrecord(header: Path, base: str, **ranged):
    """`wfdb.rdrecord` of the checked record `base` in physical units (float32), its failures as a RecordError naming `header`."""
    import wfdb

    try:
        # wfdb's own numeric warnings (an overflowing gain, say) would only echo what validation reports next
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            return wfdb.rdrecord(base, physical=True, return_res=32, ignore_skew=True, **ranged)
    except Exception as exc:
        raise RecordError(header, f"cannot read the signal ({type(exc).__name__}: {exc})") from None


def fill_missing(signal: np.ndarray, source) -> int:
    """Fill, in place, the samples wfdb read as NaN: those the WFDB format marks missing (its invalid-sample value).

    The one rule for whole reads and pieces alike: a missing sample never fails a record (nor does a lead the model
    does not use); it is interpolated linearly between the nearest samples of its lead that are there, held at the
    ends, and a lead with none there is flat zero (a lead choice then passes it by, and a flat record is classified
    as noise). The count is logged as a warning. Infinite samples (an overflowing gain) are not missing ones: they
    still fail validation.

    Args:
        signal: float32 `(n_samples, n_leads)`, changed in place.
        source: the file (and range) for the warning.

    Returns:
        How many samples were filled.
    """
    missing = np.isnan(signal)
    count = int(np.count_nonzero(missing))
    if not count:
        return 0
    for lead in np.flatnonzero(missing.any(axis=0)):
        column, gaps = signal[:, lead], missing[:, lead]
        there = np.flatnonzero(~gaps)
        column[gaps] = np.interp(np.flatnonzero(gaps), there, column[there]) if len(there) else 0.0
    logger.warning("%s: %d of %d samples are marked missing; filled by interpolation within their lead", source, count, signal.size)
    return count


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


def _wfdb_view(stack: contextlib.ExitStack, raw: bytes) -> Path:
    """A temporary folder, removed when `stack` closes, holding `raw` as `record.hea`."""
    view = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecgrhythm-")))
    (view / "record.hea").write_bytes(raw)
    return view


def header_of(path) -> Path | None:
    """The WFDB header a record file is read through: `path` itself if it is a `.hea`, the header of a bare
    record name (:func:`named_header`), else :func:`sibling_header`."""
    path = Path(path)
    return path if path.suffix.lower() == HEADER_SUFFIX else (named_header(path) or sibling_header(path))


def named_header(path) -> Path | None:
    """The header of a bare WFDB record name, as wfdb's tools take it: `.../A00005` names `.../A00005.hea`.

    Only a path that is no file or folder of its own names a record so; the header (`.hea`, or `.HEA`) must exist.
    """
    path = Path(path)
    if path.name in ("", ".", "..") or path.exists():
        return None
    return next((h for h in (path.with_name(path.name + s) for s in (HEADER_SUFFIX, HEADER_SUFFIX.upper())) if h.is_file()), None)


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


def _start_time(meta) -> datetime.datetime | None:
    """When the recording started, from the header's base date and time; None unless it gives both."""
    if meta.base_date is None or meta.base_time is None:
        return None
    return datetime.datetime.combine(meta.base_date, meta.base_time)
