"""Checks of an EDF, EDF+ or BDF header against the file, and the choice of its ECG signals, before a sample is read.

An EDF file is a 256-byte ASCII header, 256 bytes more per signal (label, physical dimension, physical
and digital ranges, samples per data record), then `n_records` data records of 16-bit samples (24-bit
in BDF). :func:`read_edf_header` parses every field it uses itself and checks it: the field is a number
where one belongs, the ranges are ordered and within the sample width, and the file holds exactly the
bytes the header declares. A lying header therefore fails here, naming the file, before `pyedflib`
opens it or anything is allocated. :func:`ecg_signals` then picks the signals to read as leads.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import re
from pathlib import Path

from ecgrhythm.records.core import MAX_LEADS, RecordError, check_fs, shown

__all__ = ["EdfHeader", "read_edf_header", "ecg_signals", "ANNOTATION_LABELS"]

logger = logging.getLogger(__name__)

ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")
_FIXED_BYTES = 256
_MAX_SIGNALS = 512  # EDFlib's own limit is 640 signals
_VERSIONS = {b"0       ": ("EDF", 2), b"\xffBIOSEMI": ("BDF", 3)}
# The per-signal fields, in file order, and their widths (EDF specification).
_SIGNAL_FIELDS = (
    ("label", 16),
    ("transducer", 80),
    ("dimension", 8),
    ("physical_min", 8),
    ("physical_max", 8),
    ("digital_min", 8),
    ("digital_max", 8),
    ("prefilter", 80),
    ("samples", 8),
    ("reserved", 32),
)
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}
# Labels that name an ECG lead: containing ECG or EKG, or a standard lead name (optionally after "lead").
_ECG_WORD = re.compile(r"(?i)\b(?:ECG|EKG)")
_LEAD_NAME = re.compile(r"(?i)(?:lead\s*)?(?:I|II|III|aVR|aVL|aVF|V[1-6]|MLII)")


@dataclasses.dataclass(frozen=True)
class EdfHeader:
    """What an EDF/BDF header declares, checked against the file.

    Attributes:
        format: `"EDF"` or `"BDF"`.
        plus: the file is EDF+ or BDF+ (its annotation signals hold time-stamped annotations).
        n_records: data records in the file.
        record_s: seconds per data record.
        labels: signal labels, stripped.
        units: physical dimensions, stripped.
        samples: samples per data record of each signal.
        bytes_per_sample: 2 (EDF) or 3 (BDF).
    """

    format: str
    plus: bool
    n_records: int
    record_s: float
    labels: tuple[str, ...]
    units: tuple[str, ...]
    samples: tuple[int, ...]
    bytes_per_sample: int

    @property
    def duration_s(self) -> float:
        return self.n_records * self.record_s

    def is_annotation(self, i: int) -> bool:
        return self.labels[i] in ANNOTATION_LABELS

    def annotation_bytes(self) -> int:
        """Bytes of the file held by annotation signals."""
        return sum(s for i, s in enumerate(self.samples) if self.is_annotation(i)) * self.bytes_per_sample * self.n_records


def read_edf_header(path: Path) -> EdfHeader:
    """The checked header of an EDF, EDF+ or BDF file (see the module docstring).

    Raises:
        RecordError: not an EDF/BDF file, a discontinuous EDF+D/BDF+D file, a field that is
            not a number or out of range, or a file size other than the header declares.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        fixed = f.read(_FIXED_BYTES)
        if len(fixed) < _FIXED_BYTES:
            raise RecordError(path, f"the file is {size} bytes, shorter than the {_FIXED_BYTES}-byte EDF header")
        if fixed[:8] not in _VERSIONS:
            raise RecordError(path, f"not an EDF or BDF file: it starts with {fixed[:8]!r}, not b'0       ' (EDF) or b'\\xffBIOSEMI' (BDF)")
        fmt, width = _VERSIONS[fixed[:8]]
        n_signals = _integer(path, fixed[252:256], "number of signals", 1, _MAX_SIGNALS)
        header_bytes = _integer(path, fixed[184:192], "number of header bytes", 0, None)
        if header_bytes != _FIXED_BYTES * (n_signals + 1):
            raise RecordError(
                path, f"the header declares {header_bytes} header bytes for {n_signals} signals; expected {_FIXED_BYTES * (n_signals + 1)}"
            )
        rest = f.read(header_bytes - _FIXED_BYTES)
    if len(rest) < header_bytes - _FIXED_BYTES:
        raise RecordError(path, f"the file is {size} bytes, shorter than its {header_bytes}-byte header (truncated)")
    reserved = _text(fixed[192:236])
    if reserved.startswith(("EDF+D", "BDF+D")):
        raise RecordError(
            path, f"discontinuous {reserved[:5]} files (with gaps between data records) are not supported: export as EDF+C or plain EDF"
        )
    n_records = _integer(path, fixed[236:244], "number of data records", None, None)
    if n_records < 1:
        raise RecordError(path, f"the header declares {n_records} data records ({'a recording never closed' if n_records == -1 else 'no samples'})")
    record_s = _decimal(path, fixed[244:252], "data record duration")
    if not 0 < record_s <= 86400:
        raise RecordError(path, f"the header declares a data record duration of {record_s:g} s; expected more than 0 and at most 86400 s")
    fields = _signal_fields(rest, n_signals)
    samples = tuple(_integer(path, raw, f"samples per data record of signal {i + 1}", 1, 1 << 30) for i, raw in enumerate(fields["samples"]))
    data_bytes = sum(samples) * width * n_records
    if size - header_bytes != data_bytes:
        state = "truncated or corrupt" if size - header_bytes < data_bytes else "corrupt"
        raise RecordError(
            path,
            f"the header declares {n_records} data records of {sum(samples) * width} bytes ({data_bytes} bytes) but the file holds "
            f"{size - header_bytes} bytes of data ({state})",
        )
    labels = tuple(_text(raw) for raw in fields["label"])
    for i in range(n_signals):
        _check_ranges(path, fields, i, labels[i], width)
    plus = reserved.startswith(("EDF+C", "BDF+C"))
    return EdfHeader(fmt, plus, n_records, record_s, labels, tuple(_text(raw) for raw in fields["dimension"]), samples, width)


def ecg_signals(header: EdfHeader, path: Path) -> tuple[list[int], float, list[float]]:
    """The signals to read as ECG leads: `(indices, fs, scales to mV)`.

    Annotation signals are skipped. Signals whose label names an ECG lead (containing ECG or EKG, or
    a standard lead name: I, II, III, aVR, aVL, aVF, V1-V6, MLII) are taken; when none does, every
    signal is. Of those, the signals of the most common sampling rate (the higher on a tie) are read.

    Raises:
        RecordError: no signal, more than 64, an invalid rate, or a physical dimension that is not uV, mV or V.
    """
    data = [i for i in range(len(header.labels)) if not header.is_annotation(i)]
    if not data:
        raise RecordError(path, "the file holds annotations only, no signal")
    named = [i for i in data if _is_ecg_label(header.labels[i])]
    chosen = named or data
    counts = collections.Counter(header.samples[i] for i in chosen)
    samples = max(counts, key=lambda s: (counts[s], s))
    left = [header.labels[i] for i in chosen if header.samples[i] != samples]
    chosen = [i for i in chosen if header.samples[i] == samples]
    if left and named:
        logger.warning("%s: leads %s are left out: their sampling rate differs from the other leads'", path, [shown(x) for x in left])
    if len(chosen) > MAX_LEADS:
        raise RecordError(path, f"{len(chosen)} signals at one rate; expected at most {MAX_LEADS} leads")
    fs = check_fs(samples / header.record_s, path, "fix the header's samples per data record or data record duration")
    scales = []
    for i in chosen:
        scale = _UNIT_TO_MV.get(header.units[i].lower())
        if scale is None:
            raise RecordError(
                path, f"signal {shown(header.labels[i])!r} has the physical dimension {shown(header.units[i])!r}; expected uV, mV or V for an ECG"
            )
        scales.append(scale)
    return chosen, fs, scales


def _is_ecg_label(label: str) -> bool:
    return bool(_ECG_WORD.search(label) or _LEAD_NAME.fullmatch(label))


def _signal_fields(rest: bytes, n_signals: int) -> dict[str, list[bytes]]:
    """Each per-signal field as a list of `n_signals` raw values."""
    fields, pos = {}, 0
    for name, width in _SIGNAL_FIELDS:
        fields[name] = [rest[pos + i * width : pos + (i + 1) * width] for i in range(n_signals)]
        pos += width * n_signals
    return fields


def _check_ranges(path: Path, fields, i: int, label: str, width: int) -> None:
    """Refuse digital ranges that are unordered or beyond the sample width, and empty physical ranges."""
    what = f"signal {i + 1} ({shown(label)!r})"
    limit = 1 << (8 * width - 1)
    low = _integer(path, fields["digital_min"][i], f"digital minimum of {what}", -limit, limit - 1)
    high = _integer(path, fields["digital_max"][i], f"digital maximum of {what}", -limit, limit - 1)
    if low >= high:
        raise RecordError(path, f"{what} has the digital range {low} to {high}; the minimum must be below the maximum")
    physical = [_decimal(path, fields[f"physical_{end}"][i], f"physical {end}imum of {what}") for end in ("min", "max")]
    if physical[0] == physical[1]:
        raise RecordError(path, f"{what} has the physical range {physical[0]:g} to {physical[1]:g}; the two must differ")


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").strip()


def _integer(path: Path, raw: bytes, what: str, low: int | None, high: int | None) -> int:
    text = _text(raw)
    if not _INTEGER.fullmatch(text):
        raise RecordError(path, f"the header's {what} is {shown(text)!r}, not an integer")
    value = int(text)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"{low} to {high}" if high is not None else f"at least {low}"
        raise RecordError(path, f"the header's {what} is {value}; expected {bounds}")
    return value


def _decimal(path: Path, raw: bytes, what: str) -> float:
    text = _text(raw)
    value = float(text) if _DECIMAL.fullmatch(text) else math.nan
    if not math.isfinite(value):
        raise RecordError(path, f"the header's {what} is {shown(text)!r}, not a finite number")
    return value
