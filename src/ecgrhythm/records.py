"""Reading ECG records and labels from files.

Every reader returns an :class:`EcgRecord`, the one record type of the package,
and every problem with a file surfaces as a :class:`RecordError` that names the
file and what is wrong with it. Validation happens in one place,
:func:`validate_signal`, whatever the file format.

Supported inputs:

- PhysioNet WFDB records: a `.hea` header with its `.dat` or `.mat` signal
  file(s), read through `wfdb`.
- Bare CinC `.mat` files (MATLAB v4/v5) holding int16 samples under `val`,
  1000 units per mV, as in the CinC 2017 data.
- `.csv` files with one column per lead (an optional header row names them).
- `.npy` arrays of shape `(n_samples,)` or `(n_samples, n_leads)`.

Files without a header carry no sampling rate: the caller passes `fs`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
from pathlib import Path

import numpy as np

__all__ = [
    "EcgRecord",
    "RecordError",
    "read_record",
    "find_records",
    "read_reference",
    "validate_signal",
    "MIN_DURATION_S",
    "SIGNAL_SUFFIXES",
]

MIN_DURATION_S = 2.0
SIGNAL_SUFFIXES = (".mat", ".csv", ".npy")
_MAX_HEADER_BYTES = 1 << 20
_MAX_LEADS = 64
# Bytes per sample of the WFDB storage formats, to bound what a header may ask for.
_WFDB_BYTES_PER_SAMPLE = {
    "8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2,
    "212": 1.5, "310": 4 / 3, "311": 4 / 3, "508": 0.1, "516": 0.1, "524": 0.1,
}
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


class RecordError(ValueError):
    """A record that cannot be read or used. `str(err)` names the file and the problem."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclasses.dataclass(frozen=True, eq=False)
class EcgRecord:
    """One ECG recording.

    Attributes:
        signal: float32 array `(n_samples, n_leads)` in mV.
        fs: sampling rate in Hz.
        sig_name: lead names, one per column of `signal`.
        record_name: the record's name (the file name without its extension).
        comments: header comment lines (WFDB), empty for other formats.
    """

    signal: np.ndarray
    fs: float
    sig_name: tuple[str, ...]
    record_name: str
    comments: tuple[str, ...] = ()

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


def validate_signal(signal, fs, *, source="signal") -> None:
    """Check a signal and its rate; raise :class:`RecordError` naming `source` if unusable.

    Args:
        signal: array `(n_samples, n_leads)`, float32.
        fs: sampling rate in Hz.
        source: file or record name used in the message.
    """
    if not isinstance(signal, np.ndarray) or signal.ndim != 2:
        shape = getattr(signal, "shape", None)
        raise RecordError(source, f"expected a signal of shape (n_samples, n_leads), got shape {shape}")
    if signal.dtype != np.float32:
        raise RecordError(source, f"expected float32 samples, got {signal.dtype}")
    n, leads = signal.shape
    if leads < 1 or leads > _MAX_LEADS:
        raise RecordError(source, f"expected 1 to {_MAX_LEADS} leads, got {leads}")
    if fs is None or not isinstance(fs, (int, float)) or not math.isfinite(fs) or fs <= 0:
        raise RecordError(source, f"invalid sampling rate {fs!r}: pass the rate in Hz with --fs")
    if n / fs < MIN_DURATION_S:
        raise RecordError(source, f"record is {n / fs:.2f} s long ({n} samples at {fs:g} Hz); the minimum is {MIN_DURATION_S:g} s")
    bad = ~np.isfinite(signal)
    if bad.any():
        raise RecordError(source, f"{int(bad.sum())} of {signal.size} samples are NaN or infinite")


def read_record(path, *, fs: float | None = None, mat_gain: float = 1000.0) -> EcgRecord:
    """Read one record from a file.

    Args:
        path: a `.hea` header, or a `.mat`, `.csv` or `.npy` file. A `.mat` or
            `.dat` file with a `.hea` beside it is read through the header.
        fs: sampling rate (Hz) of files without a header. Required for them;
            ignored for WFDB records, whose header gives the rate.
        mat_gain: ADC units per mV of bare `.mat` files (1000 in CinC 2017).

    Returns:
        The record, with `signal` in mV, float32 `(n_samples, n_leads)`.

    Raises:
        RecordError: the file is missing, unreadable or holds no usable signal.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(path, "file not found" if not path.exists() else "not a regular file")
    suffix = path.suffix.lower()
    header = path if suffix == ".hea" else _sibling_header(path)
    try:
        if header is not None:
            return _read_wfdb(header, fs)
        if fs is None:
            raise RecordError(path, "the file has no header and so no sampling rate: pass --fs (Hz)")
        name = path.stem
        if suffix == ".mat":
            signal, leads = _read_mat(path, mat_gain), None
        elif suffix == ".csv":
            signal, leads = _read_csv(path)
        elif suffix == ".npy":
            signal, leads = _read_npy(path), None
        else:
            raise RecordError(path, f"unsupported file type {path.suffix!r}: expected .hea, .mat, .csv or .npy")
        leads = leads or tuple(f"lead{i + 1}" for i in range(signal.shape[1]))
        validate_signal(signal, float(fs), source=str(path))
        return EcgRecord(signal, float(fs), leads, name)
    except RecordError:
        raise
    except MemoryError:
        raise RecordError(path, "the record is too large to read into memory") from None
    except Exception as exc:  # any parser failure becomes one clear line
        raise RecordError(path, f"cannot read the file: {type(exc).__name__}: {exc}") from None


def _sibling_header(path: Path) -> Path | None:
    if path.suffix.lower() not in (".mat", ".dat"):
        return None
    for suffix in (".hea", ".HEA"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _as_signal(array, source) -> np.ndarray:
    """Shape an array as `(n_samples, n_leads)` float32; time is the longer axis."""
    array = np.asarray(array)
    if array.dtype.kind not in "iuf" or array.size == 0:
        raise RecordError(source, f"expected a non-empty numeric array, got dtype {array.dtype} with shape {array.shape}")
    if array.ndim == 1:
        array = array[:, None]
    elif array.ndim == 2:
        if array.shape[0] < array.shape[1]:
            array = array.T
    else:
        raise RecordError(source, f"expected a 1-D or 2-D array (samples x leads), got shape {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32)


def _read_mat(path: Path, gain: float) -> np.ndarray:
    import scipy.io

    try:
        data = scipy.io.loadmat(path, variable_names=["val"])
    except NotImplementedError:
        raise RecordError(path, "MATLAB v7.3 (HDF5) files are not supported: save with -v7 or -v4") from None
    if "val" not in data:
        raise RecordError(path, "the .mat file has no variable 'val' (expected int16 samples under 'val', as in CinC data)")
    return _as_signal(data["val"], path) / np.float32(gain)


def _read_csv(path: Path):
    text = path.read_text(encoding="utf-8-sig", errors="strict")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise RecordError(path, "the CSV file is empty")
    delimiter = max(",;\t", key=lines[0].count)
    delimiter = delimiter if lines[0].count(delimiter) else None
    first = lines[0].split(delimiter)
    leads = None
    if not all(_is_number(v) for v in first):
        leads = tuple(v.strip().strip('"') or f"lead{i + 1}" for i, v in enumerate(first))
        lines = lines[1:]
    if not lines:
        raise RecordError(path, "the CSV file has a header row but no samples")
    try:
        array = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=delimiter, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise RecordError(path, f"the CSV file holds text or missing values where numbers belong ({exc})") from None
    if leads is not None and len(leads) != array.shape[1]:
        raise RecordError(path, f"the header row names {len(leads)} columns but rows have {array.shape[1]}")
    if array.shape[1] > _MAX_LEADS:
        raise RecordError(path, f"expected one column per lead (at most {_MAX_LEADS}), got {array.shape[1]} columns")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32), leads


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError as exc:
        raise RecordError(path, f"not a plain numeric .npy array (object arrays and pickles are refused): {exc}") from None
    return _as_signal(array, path)


def _header_fields(header: Path) -> list[str]:
    size = header.stat().st_size
    if size == 0:
        raise RecordError(header, "the header file is empty")
    if size > _MAX_HEADER_BYTES:
        raise RecordError(header, f"the header file is {size} bytes, too large for a WFDB header")
    text = header.read_bytes().decode("utf-8", errors="replace")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line.split()
    raise RecordError(header, "the header has no record line")


def _read_wfdb(header: Path, fs_fallback: float | None) -> EcgRecord:
    import wfdb

    fields = _header_fields(header)
    record_base = header.with_suffix("")
    try:
        meta = wfdb.rdheader(str(record_base))
    except Exception as exc:
        raise RecordError(header, f"invalid WFDB header: {type(exc).__name__}: {exc}") from None
    if getattr(meta, "n_seg", None):
        raise RecordError(header, "multi-segment WFDB records are not supported")
    fs = meta.fs if len(fields) >= 3 else fs_fallback
    if fs is None:
        raise RecordError(header, "the header gives no sampling rate: pass --fs (Hz)")
    if not fs or not math.isfinite(fs) or fs <= 0:
        raise RecordError(header, f"the header gives an invalid sampling rate ({fs!r} Hz)")
    n_sig = int(meta.n_sig or 0)
    if n_sig < 1 or n_sig > _MAX_LEADS:
        raise RecordError(header, f"the header declares {n_sig} signals; expected 1 to {_MAX_LEADS}")
    _check_signal_files(header, meta)
    try:
        rec = wfdb.rdrecord(str(record_base), physical=True, return_res=32)
    except Exception as exc:
        raise RecordError(header, f"cannot read the signal: {type(exc).__name__}: {exc}") from None
    signal = rec.p_signal
    if signal is None or signal.ndim != 2 or signal.shape[1] != n_sig:
        raise RecordError(header, "the signal file holds no samples for the declared signals")
    if meta.sig_len is not None and signal.shape[0] != meta.sig_len:
        raise RecordError(header, f"the header declares {meta.sig_len} samples but the signal file holds {signal.shape[0]}")
    scale = np.array([_UNIT_TO_MV.get(str(u or "").strip().lower(), 1.0) for u in (rec.units or [""] * n_sig)], dtype=np.float32)
    signal = np.ascontiguousarray(signal, dtype=np.float32) * scale
    names = tuple(str(n) if n else f"lead{i + 1}" for i, n in enumerate(rec.sig_name or [None] * n_sig))
    validate_signal(signal, float(fs), source=str(header))
    return EcgRecord(signal, float(fs), names, header.stem, tuple(rec.comments or ()))


def _check_signal_files(header: Path, meta) -> None:
    """Refuse headers that name missing files or claim more samples than the files hold."""
    if meta.sig_len is None or meta.sig_len <= 0:
        raise RecordError(header, f"the header declares a signal length of {meta.sig_len!r} samples")
    needed: dict[str, float] = {}
    offsets: dict[str, int] = {}
    for i in range(meta.n_sig):
        name = meta.file_name[i]
        if not name or os.path.basename(name) != name:
            raise RecordError(header, f"signal file name {name!r} must be a plain file name beside the header")
        fmt = str(meta.fmt[i])
        per_sample = _WFDB_BYTES_PER_SAMPLE.get(fmt)
        if per_sample is None:
            raise RecordError(header, f"unsupported WFDB storage format {fmt!r} for signal {i + 1}")
        needed[name] = needed.get(name, 0.0) + per_sample * meta.sig_len
        offsets[name] = int((meta.byte_offset or [0] * meta.n_sig)[i] or 0)
    for name, nbytes in needed.items():
        signal_file = header.parent / name
        if not signal_file.is_file():
            raise RecordError(header, f"the signal file {name!r} named by the header is missing")
        available = signal_file.stat().st_size - offsets[name]
        if nbytes > max(available, 0) * 1.01 + 16 and "5" not in str(meta.fmt[0])[:1]:
            raise RecordError(header, f"the header declares {meta.sig_len} samples, more than {name!r} holds ({signal_file.stat().st_size} bytes)")


def find_records(paths) -> list[Path]:
    """Expand files and folders into the record files to read.

    A folder with a PhysioNet `RECORDS` index yields exactly the records it
    lists (as `.hea` paths where the header exists, otherwise as listed, so a
    missing record is reported when read). A folder without one yields every
    `.hea` header and every `.mat`, `.csv` or `.npy` file that no header names.
    Files are taken as given.

    Args:
        paths: file or folder paths.

    Returns:
        Record paths in a stable, sorted order within each folder.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            found.append(path)
            continue
        index = path / "RECORDS"
        if index.is_file():
            for line in index.read_text(encoding="utf-8", errors="replace").splitlines():
                name = line.strip()
                if name and not name.startswith("#"):
                    found.append(_listed_record(path, name))
            continue
        files = sorted(p for p in path.iterdir() if p.is_file())
        headers = [p for p in files if p.suffix.lower() == ".hea"]
        named = set()
        for header in headers:
            named.add(header.with_suffix("").name)
            try:
                fields = _header_fields(header)
                named.update(_header_file_names(header))
            except (RecordError, OSError):
                pass
        found.extend(headers)
        found.extend(p for p in files if p.suffix.lower() in SIGNAL_SUFFIXES and p.name not in named and p.stem not in named)
    return found


def _header_file_names(header: Path) -> set[str]:
    names = set()
    for line in header.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        parts = line.split()
        if parts and not line.startswith("#"):
            names.add(parts[0])
    return names


def _listed_record(folder: Path, name: str) -> Path:
    base = folder / name
    for suffix in (".hea", ".HEA", ".mat", ".csv", ".npy"):
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    return base.with_name(base.name + ".hea")


def read_reference(path) -> dict[str, str]:
    """Read a CinC 2017 `REFERENCE.csv` (`record,label` rows, no header).

    Returns:
        Mapping of record name to label.

    Raises:
        RecordError: the file is missing or a row is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise RecordError(path, "label file not found")
    labels = {}
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 2:
                raise RecordError(path, f"line {lineno}: expected 'record,label', got {row!r}")
            labels[row[0].strip()] = row[1].strip()
    return labels
