"""Reading ECG records and labels from files.

Every reader returns an :class:`EcgRecord`, the one record type of the package,
and every problem with a file surfaces as a :class:`RecordError` that names the
file and what is wrong with it: no exception of `wfdb`, `scipy` or `numpy`
escapes (`KeyboardInterrupt` does). Validation of the samples happens in one
place, :func:`validate_signal`, whatever the file format.

Supported inputs:

- PhysioNet WFDB records: a `.hea` header with its `.dat` or `.mat` signal
  file(s), read through `wfdb`.
- Bare CinC `.mat` files (MATLAB v4/v5) holding int16 samples under `val`,
  1000 units per mV, as in the CinC 2017 data.
- `.csv` files with one column per lead (an optional header row names them).
- `.npy` arrays of shape `(n_samples,)` or `(n_samples, n_leads)`.

Files without a header carry no sampling rate: the caller passes `fs`.
Extensions are matched case-insensitively. Before reading, each reader checks
that the file holds the bytes its header (WFDB or `.npy`) declares, or that
the `.mat` variable list claims no more than the file can hold (compressed
data: a bounded expansion), so a lying header never makes a reader allocate
more than the file holds. `.npy` files are memory-mapped, never unpickled.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
import math
import mmap
import numbers
from pathlib import Path

import numpy as np

__all__ = [
    "EcgRecord",
    "RecordError",
    "read_record",
    "find_records",
    "read_reference",
    "read_header_comments",
    "validate_signal",
    "check_fs",
    "MIN_DURATION_S",
    "MAX_DURATION_S",
    "SIGNAL_SUFFIXES",
]

logger = logging.getLogger(__name__)

MIN_DURATION_S = 2.0
MAX_DURATION_S = 24 * 3600.0  # bounds the work a small hostile file can ask for
SIGNAL_SUFFIXES = (".mat", ".csv", ".npy")
_MIN_FS, _MAX_FS = 20.0, 100_000.0
_MAX_HEADER_BYTES = 1 << 20
_MAX_LEADS = 64
# Compressed data (FLAC, zlib in .mat v5) may expand at most this much, plus _EXPANSION_FLOOR bytes.
_MAX_EXPANSION, _EXPANSION_FLOOR = 64, 1 << 22
_MAT_NUMERIC = {"double", "single", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}


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


def check_fs(fs, source, fix="pass the rate in Hz with --fs") -> float:
    """The sampling rate as a float, or a :class:`RecordError` saying how to fix it.

    The one rule for every entry point (readers, `--fs`, the service's `fs` field):
    a real number from 20 to 100,000 Hz.
    """
    ok = isinstance(fs, numbers.Real) and not isinstance(fs, bool) and math.isfinite(fs) and _MIN_FS <= fs <= _MAX_FS
    if not ok:
        shown = f"{float(fs):g} Hz" if isinstance(fs, numbers.Real) else repr(fs)
        raise RecordError(source, f"invalid sampling rate {shown}: expected {_MIN_FS:g} to {_MAX_FS:g} Hz; {fix}")
    return float(fs)


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
    if not isinstance(signal, np.ndarray) or signal.ndim != 2:
        shape = getattr(signal, "shape", None)
        raise RecordError(source, f"expected a signal of shape (n_samples, n_leads), got shape {shape}")
    if signal.dtype != np.float32:
        raise RecordError(source, f"expected float32 samples, got {signal.dtype}")
    n, leads = signal.shape
    if leads < 1 or leads > _MAX_LEADS:
        raise RecordError(source, f"expected 1 to {_MAX_LEADS} leads, got {leads}")
    fs = check_fs(fs, source)
    if n / fs < MIN_DURATION_S:
        raise RecordError(source, f"record is {n / fs:.2f} s long ({n} samples at {fs:g} Hz); the minimum is {MIN_DURATION_S:g} s")
    if n / fs > MAX_DURATION_S:
        raise RecordError(source, f"record is {n / fs / 3600:.1f} h long ({n} samples at {fs:g} Hz); the maximum is {MAX_DURATION_S / 3600:g} h: split it into parts")
    # A float64 sum is finite exactly when every float32 sample is, without a temporary array.
    with np.errstate(invalid="ignore", over="ignore"):
        total = signal.sum(dtype=np.float64)
    if not math.isfinite(total):
        bad = int(np.count_nonzero(~np.isfinite(signal)))
        raise RecordError(source, f"{bad} of {signal.size} samples are NaN, infinite or beyond float32 range")


def read_record(path, *, fs: float | None = None, mat_gain: float = 1000.0) -> EcgRecord:
    """Read one record from a file.

    Args:
        path: a `.hea` header, or a `.mat`, `.csv` or `.npy` file. A `.mat` or
            `.dat` file with a `.hea` beside it that names it is read through the header.
        fs: sampling rate (Hz, 20 to 100,000) of files without a header.
            Required for them; ignored for WFDB records whose header gives the rate.
        mat_gain: ADC units per mV of bare `.mat` files (1000 in CinC 2017).

    Returns:
        The record, with `signal` in mV, float32 `(n_samples, n_leads)`.

    Raises:
        RecordError: the file is missing, unreadable or holds no usable signal.
        ValueError: `mat_gain` is not a finite non-zero number.
    """
    if isinstance(mat_gain, bool) or not isinstance(mat_gain, numbers.Real) or not math.isfinite(mat_gain) or mat_gain == 0:
        raise ValueError(f"Invalid argument `mat_gain`: expected a finite non-zero number of units per mV. Received: mat_gain={mat_gain!r}")
    path = Path(path)
    try:
        return _read(path, fs, float(mat_gain))
    except RecordError:
        raise
    except MemoryError:
        raise RecordError(path, "the record is too large to read into memory") from None
    except OSError as exc:
        raise RecordError(path, f"cannot read the file: {exc.strerror or exc}") from None
    except Exception as exc:  # any parser failure becomes one clear line
        raise RecordError(path, f"cannot read the file ({type(exc).__name__}: {exc})") from None


def _read(path: Path, fs, mat_gain) -> EcgRecord:
    _check_file(path)
    suffix = path.suffix.lower()
    header = path if suffix == ".hea" else _sibling_header(path)
    if header is not None:
        from ._wfdb_reader import read_wfdb  # imports this module: import here, not at the top

        try:
            return read_wfdb(header, fs)
        except RecordError as exc:
            if header == path:
                raise
            raise RecordError(path, f"read through its header {header.name}: {exc.reason}") from None
    if suffix not in SIGNAL_SUFFIXES:
        hint = "a .dat file needs its .hea header beside it" if suffix == ".dat" else "expected .hea, .mat, .csv or .npy"
        raise RecordError(path, f"unsupported file type {path.suffix or '(none)'!r}: {hint}")
    if fs is None:
        raise RecordError(path, "the file has no header and so no sampling rate: pass --fs (Hz)")
    fs = check_fs(fs, path)
    if path.stat().st_size == 0:
        raise RecordError(path, "the file is empty")
    leads = None
    if suffix == ".mat":
        signal = _read_mat(path, mat_gain)
    elif suffix == ".csv":
        signal, leads = _read_csv(path)
    else:
        signal = _read_npy(path)
    leads = leads or tuple(f"lead{i + 1}" for i in range(signal.shape[1]))
    validate_signal(signal, fs, source=str(path))
    return EcgRecord(signal, fs, leads, path.stem)


def _check_file(path: Path, what="file", source=None) -> None:
    """Raise unless `path` is (a link to) an existing regular file."""
    source = path if source is None else source
    if not path.exists():
        broken = path.is_symlink()
        raise RecordError(source, f"{what} {path.name!r} " + ("is a broken symbolic link" if broken else "not found"))
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise RecordError(source, f"{what} {path.name!r} is {kind}: pass a record file")


def _sibling_header(path: Path) -> Path | None:
    """The `.hea` beside a `.mat`/`.dat` file that names it (or cannot be parsed), else None."""
    if path.suffix.lower() not in (".mat", ".dat"):
        return None
    for suffix in (".hea", ".HEA"):
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            try:
                names = _signal_file_names(_header_bytes(candidate))
            except (RecordError, OSError):
                return candidate  # broken header: report it rather than guess
            if path.name.lower() in {n.lower() for n in names}:
                return candidate
    return None


def _as_signal(array, source) -> np.ndarray:
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
    if array.shape[1] > _MAX_LEADS:
        raise RecordError(source, f"expected at most {_MAX_LEADS} leads, got an array of shape {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        return np.ascontiguousarray(array, dtype=np.float32)


def _read_mat(path: Path, gain: float) -> np.ndarray:
    import scipy.io

    size = path.stat().st_size
    # Through mmap, a length field claiming more bytes than the file holds reads what there is, never allocates it.
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as stream:
        try:
            variables = scipy.io.whosmat(stream)
        except NotImplementedError:
            raise RecordError(path, "MATLAB v7.3 (HDF5) files are not supported: save with -v7 or -v4") from None
        except Exception as exc:
            raise RecordError(path, f"not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from None
        found = [v for v in variables if v[0] == "val"]
        if not found:
            held = ", ".join(repr(v[0]) for v in variables[:5]) or "nothing"
            raise RecordError(path, f"the .mat file has no variable 'val' (it holds {held}); CinC files keep int16 samples under 'val'")
        _, shape, kind = found[0]
        if kind not in _MAT_NUMERIC or len(shape) > 2:
            raise RecordError(path, f"'val' is a {kind} array of shape {tuple(shape)}; expected a numeric (leads x samples) matrix")
        if math.prod(shape) > _MAX_EXPANSION * size + _EXPANSION_FLOOR:
            raise RecordError(path, f"'val' claims shape {tuple(shape)}, far more than the {size}-byte file can hold")
        stream.seek(0)
        val = scipy.io.loadmat(stream, variable_names=["val"])["val"]
        signal = _as_signal(val, path)
    signal /= np.float32(gain)
    return signal


def _read_csv(path: Path):
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
                if len(leads) > _MAX_LEADS:
                    raise RecordError(path, f"the header row names {len(leads)} columns; expected one per lead (at most {_MAX_LEADS})")
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
        return np.ascontiguousarray(array), leads
    return _as_signal(array, path), None


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


def _read_npy(path: Path) -> np.ndarray:
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise ValueError(f"unsupported .npy format version {version}")
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read_header(f)
        except Exception as exc:  # ValueError, SyntaxError, tokenize.TokenError from a damaged header
            raise RecordError(path, f"not a valid .npy file ({exc}): save the array with numpy.save") from None
        offset = f.tell()
    if dtype.hasobject or dtype.names or dtype.subdtype or dtype.kind not in "iuf":
        raise RecordError(path, f"the .npy array has dtype {dtype}; expected real numbers (object arrays and pickles are refused)")
    if len(shape) not in (1, 2) or 0 in shape:
        raise RecordError(path, f"the .npy array has shape {shape}; expected (n_samples,) or (n_samples, n_leads)")
    declared, held = math.prod(shape) * dtype.itemsize, path.stat().st_size - offset
    if declared != held:
        raise RecordError(path, f"the .npy header declares shape {shape} ({declared} bytes) but the file holds {held} bytes of data (truncated or corrupt)")
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # checked above: numeric, and exactly the file's size
    signal = _as_signal(mapped, path)
    return signal.copy() if np.may_share_memory(signal, mapped) else signal


def _header_bytes(header: Path) -> bytes:
    size = header.stat().st_size
    if size == 0:
        raise RecordError(header, "the header file is empty")
    if size > _MAX_HEADER_BYTES:
        raise RecordError(header, f"the header file is {size} bytes, too large for a WFDB header")
    raw = header.read_bytes()
    if b"\0" in raw:
        raise RecordError(header, "the header file is binary, not a WFDB text header")
    return raw


def _header_lines(raw: bytes) -> list[list[str]]:
    """Fields of the non-comment lines of a header: the record line, then the signal lines."""
    lines = (line.strip() for line in raw.decode("utf-8", errors="replace").splitlines())
    return [line.split() for line in lines if line and not line.startswith("#")]


def _signal_file_names(raw: bytes) -> list[str]:
    return [fields[0] for fields in _header_lines(raw)[1:]]


def read_header_comments(header) -> tuple[str, ...]:
    """The `#` comment lines of a WFDB header, without the `#` (read within the header-size limit, no signal read).

    Raises:
        RecordError: the header is missing, unreadable, empty, binary or too large.
    """
    header = Path(header)
    _check_file(header, "header")
    try:
        raw = _header_bytes(header)
    except OSError as exc:
        raise RecordError(header, f"cannot read the header: {exc.strerror or exc}") from None
    lines = (line.strip() for line in raw.decode("utf-8", errors="replace").splitlines())
    return tuple(line.lstrip("#").strip() for line in lines if line.startswith("#"))


def find_records(paths) -> list[Path]:
    """Expand files and folders into the record files to read.

    A folder with a PhysioNet `RECORDS` index yields exactly the records it
    lists (as `.hea` paths where the header exists, otherwise as listed, so a
    missing record is reported when read; entries leaving the folder are
    skipped with a warning). A folder without one yields every `.hea` header
    and every `.mat`, `.csv` or `.npy` file that no header names, except
    hidden files and the challenges' metadata tables (`REFERENCE*.csv` labels,
    `dx_mapping*.csv` code names). Files are taken as given;
    subfolders are not searched.

    Args:
        paths: file or folder paths.

    Returns:
        Record paths in a stable, sorted order within each folder.

    Raises:
        RecordError: a folder or its index cannot be read.
    """
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            found.append(path)
            continue
        try:
            index = path / "RECORDS"
            found.extend(_indexed_records(path, index) if index.is_file() else _folder_records(path))
        except OSError as exc:
            raise RecordError(path, f"cannot list the folder: {exc.strerror or exc}") from None
    return found


def _indexed_records(folder: Path, index: Path) -> list[Path]:
    found = []
    with open(index, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, start=1):
            name = line.strip()
            if not name or name.startswith("#"):
                continue
            if Path(name).is_absolute() or ".." in Path(name).parts or "\0" in name or Path(name).name in ("", "."):
                logger.warning("%s line %d: skipped %r, which is not a record inside the folder", index, lineno, name)
                continue
            try:
                found.append(_listed_record(folder, name))
            except (OSError, ValueError) as exc:
                logger.warning("%s line %d: skipped %r, which is not a usable record name (%s)", index, lineno, name[:80], exc)
    return found


# PhysioNet challenge metadata beside the records: labels and code-to-name mappings.
_METADATA_CSV_PREFIXES = ("reference", "dx_mapping")


def _folder_records(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
    headers = [p for p in files if p.suffix.lower() == ".hea"]
    claimed = set()  # lower-case names of files read through a header
    for header in headers:
        try:
            claimed.update(n.lower() for n in _signal_file_names(_header_bytes(header)))
        except (RecordError, OSError):
            claimed.update(header.with_suffix(s).name.lower() for s in (".mat", ".dat"))
    signals = [
        p for p in files
        if p.suffix.lower() in SIGNAL_SUFFIXES and p.name.lower() not in claimed
        and not (p.suffix.lower() == ".csv" and p.name.lower().startswith(_METADATA_CSV_PREFIXES))
    ]
    return sorted(headers + signals)


def _listed_record(folder: Path, name: str) -> Path:
    base = folder / name
    if base.suffix.lower() in (".hea",) + SIGNAL_SUFFIXES and base.is_file():
        return base
    for suffix in (".hea", ".HEA", ".mat", ".MAT", ".csv", ".CSV", ".npy", ".NPY"):
        candidate = base.with_name(base.name + suffix)
        if candidate.is_file():
            return candidate
    return base.with_name(base.name + ".hea")


def read_reference(path) -> dict[str, str]:
    """Read a CinC 2017 `REFERENCE.csv` (`record,label` rows, no header).

    Returns:
        Mapping of record name to label.

    Raises:
        RecordError: the file is missing, unreadable or a row is malformed.
    """
    path = Path(path)
    _check_file(path, "label file")
    labels = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            for lineno, row in enumerate(csv.reader(f), start=1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise RecordError(path, f"line {lineno}: expected 'record,label', got {row!r}")
                labels[row[0].strip()] = row[1].strip()
    except UnicodeDecodeError as exc:
        raise RecordError(path, f"the label file is not UTF-8 text (byte {exc.start})") from None
    except (OSError, csv.Error) as exc:
        raise RecordError(path, f"cannot read the label file: {exc}") from None
    return labels
