"""`read_record`: one file to one validated :class:`~ecgrhythm.records.core.EcgRecord`, whatever its format."""

from __future__ import annotations

import math
import numbers
from pathlib import Path

from ecgrhythm.records.core import GIVE_FS, EcgRecord, RecordError, check_file, check_fs, lead_names, validate_signal
from ecgrhythm.records.registry import describe_suffixes, reader_for
from ecgrhythm.records.wfdb_reader import named_header, read_wfdb, sibling_header

__all__ = ["read_record", "record_path"]


def read_record(path, *, fs: float | None = None, mat_gain: float = 1000.0) -> EcgRecord:
    """Read one record from a file.

    Args:
        path: a `.hea` header, a bare WFDB record name (`.../A00005` for
            `.../A00005.hea`), or a `.mat`, `.csv` or `.npy` file (or a file of
            any suffix with a registered reader). A `.mat` or `.dat` file with a
            `.hea` beside it that names it is read through the header.
        fs: sampling rate (Hz, 20 to 100,000) of files without a header.
            Required for them; ignored for WFDB records whose header gives the rate.
        mat_gain: ADC units per mV of bare `.mat` files (1000 in CinC 2017).

    Returns:
        The record, with `signal` in mV, float32 `(n_samples, n_leads)`.

    Raises:
        RecordError: the file is missing, unreadable or holds no usable signal, or
            a file without a header is given without `fs`.
        ValueError: `mat_gain` is not a finite non-zero number.

    Example:
        >>> import ecgrhythm
        >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00001")   # a WFDB record name, or its .hea
        >>> record.record_name, record.signal.shape, record.signal.dtype, record.fs, record.sig_name
        ('A00001', (9000, 1), dtype('float32'), 300.0, ('ECG',))
        >>> holter = ecgrhythm.read_record("../shared/data/cpsc2021-sample/data_101_6.hea")
        >>> holter.sig_name, holter.fs, holter.duration_s, holter.comments
        (('I', 'II'), 200.0, 111.775, ('paroxysmal atrial fibrillation',))
    """
    if isinstance(mat_gain, bool) or not isinstance(mat_gain, numbers.Real) or not math.isfinite(mat_gain) or mat_gain == 0:
        raise ValueError(f"Invalid argument `mat_gain`: expected a finite non-zero number of units per mV. Received: mat_gain={mat_gain!r}")
    try:
        path = record_path(path)
        return _read(path, fs, float(mat_gain))
    except RecordError:
        raise
    except MemoryError:
        raise RecordError(path, "the record is too large to read into memory") from None
    except OSError as exc:
        raise RecordError(path, f"cannot read the file: {exc.strerror or exc}") from None
    except Exception as exc:  # any parser failure becomes one clear line
        raise RecordError(path, f"cannot read the file ({type(exc).__name__}: {exc})") from None


def record_path(path) -> Path:
    """The file a record path names: `path` itself, or the header of a bare WFDB record name (`.../A00005` for `.../A00005.hea`).

    Raises:
        RecordError: nothing is there: neither `path` nor, for a bare name, its `.hea` header; or `path` is a broken
            symbolic link.
    """
    path = Path(path)
    header = named_header(path)
    if header is not None:
        return header
    if path.exists():
        return path
    if path.is_symlink():  # said here, before a caller resolves the link (a loop of links raises RuntimeError there)
        raise RecordError(path, f"file {path.name!r} is a broken symbolic link (its target is missing, or a loop of links)")
    if reader_for(path.suffix) is not None:
        raise RecordError(path, f"file {path.name!r} not found")
    raise RecordError(
        path,
        f"not found: no such file, and no WFDB record of that name ({path.name}.hea); expected a record file ({describe_suffixes()}) or a WFDB record name",
    )


def _read(path: Path, fs, mat_gain) -> EcgRecord:
    check_file(path)
    header = sibling_header(path)
    if header is not None:
        try:
            return _validated(read_wfdb(header, fs=fs), header)
        except RecordError as exc:
            raise RecordError(path, f"read through its header {header.name}: {exc.reason}") from None
    suffix = path.suffix.lower()
    reader = reader_for(suffix)
    if reader is None:
        hint = "a .dat file needs its .hea header beside it" if suffix == ".dat" else f"expected {describe_suffixes()}"
        raise RecordError(path, f"unsupported file type {path.suffix or '(none)'!r}: {hint}")
    if reader.needs_fs:
        if fs is None:
            raise RecordError(path, f"the file has no header and so no sampling rate: {GIVE_FS}")
        fs = check_fs(fs, path)
        if path.stat().st_size == 0:
            raise RecordError(path, "the file is empty")
    return _validated(reader.read(path, fs=fs, mat_gain=mat_gain), path)


def _validated(decoded, path: Path) -> EcgRecord:
    """The one validation boundary: what a reader decoded, checked and made a record named after `path`."""
    validate_signal(decoded.signal, decoded.fs, source=str(path))
    return EcgRecord(
        decoded.signal,
        decoded.fs,
        lead_names(decoded.sig_name, decoded.signal.shape[1]),
        path.stem,
        decoded.comments,
        start_time=decoded.start_time,
        annotations=decoded.annotations,
    )
