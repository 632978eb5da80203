"""Checked reading of PhysioNet WFDB records (`.hea` + `.dat`/`.mat`) through `wfdb`.

`wfdb` trusts its header: it defaults a missing or unparsable sampling rate to
250 Hz, reads signal files named with `../` or absolute paths, and allocates
whatever length the header declares. :func:`read_wfdb` checks the record line
field by field and each signal file's name, format and size against the
header before `wfdb` reads a byte, and turns every failure into a
:class:`~ecgrhythm.records.RecordError` naming the header.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

from .records import (
    _EXPANSION_FLOOR,
    _MAX_EXPANSION,
    _MAX_LEADS,
    EcgRecord,
    RecordError,
    _check_file,
    check_fs,
    _header_bytes,
    _header_lines,
    _signal_file_names,
    validate_signal,
)

__all__ = ["read_wfdb"]

_MAX_SAMPS_PER_FRAME = 64
# Bytes per sample of the WFDB storage formats (None: FLAC, variable length).
_WFDB_BYTES_PER_SAMPLE = {
    "8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2,
    "212": 1.5, "310": 4 / 3, "311": 4 / 3, "508": None, "516": None, "524": None,
}
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nu": 1.0, "": 1.0}


def _record_line(header: Path, raw: bytes):
    """`(n_sig, fs or None, sig_len or None)` from the header's record line, checked field by field."""
    lines = _header_lines(raw)
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


def read_wfdb(header: Path, fs_fallback: float | None) -> EcgRecord:
    """Read the WFDB record of `header`, checking it before `wfdb` reads anything.

    Args:
        header: the `.hea` file (any case of the extension).
        fs_fallback: sampling rate (Hz) to use when the header gives none.

    Returns:
        The record, float32 `(sig_len, n_sig)` in mV.

    Raises:
        RecordError: the header or a signal file is missing, malformed or
            disagrees with the other.
    """
    import wfdb

    raw = _header_bytes(header)
    n_sig, fs, sig_len = _record_line(header, raw)
    if fs is None and fs_fallback is None:
        raise RecordError(header, "the header gives no sampling rate: pass --fs (Hz)")
    fs = check_fs(fs_fallback if fs is None else fs, header, "fix the header's record line" if fs is not None else "pass --fs (Hz)")
    if not 1 <= n_sig <= _MAX_LEADS:
        raise RecordError(header, f"the header declares {n_sig} signals; expected 1 to {_MAX_LEADS}")
    if sig_len == 0:
        raise RecordError(header, "the header declares a signal length of 0 samples")
    for name in _signal_file_names(raw):
        _check_file_name(header, name)
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
            raise RecordError(header, f"the header's record line is not valid WFDB: wfdb reads {meta.n_sig} signals of "
                                      f"{meta.sig_len} samples at {meta.fs} Hz from it")
        files = _check_signal_files(header, meta)
        if view is None and any(path.name != name for name, path in files.items()):
            view = _wfdb_view(stack, raw)
            base = str(view / "record")
        if view is not None:
            for name, path in files.items():
                os.symlink(path.resolve(), view / name)
        try:
            # wfdb's own numeric warnings (an overflowing gain, say) would only echo what validation reports next
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                rec = wfdb.rdrecord(base, physical=True, return_res=32, ignore_skew=True)
        except Exception as exc:
            raise RecordError(header, f"cannot read the signal ({type(exc).__name__}: {exc})") from None
    signal = rec.p_signal
    if signal is None or signal.ndim != 2 or signal.shape[1] != n_sig:
        raise RecordError(header, "the signal file holds no samples for the declared signals")
    if sig_len is not None and signal.shape[0] != sig_len:
        raise RecordError(header, f"the header declares {sig_len} samples but the signal file holds {signal.shape[0]}")
    signal = np.ascontiguousarray(signal, dtype=np.float32)
    scale = np.array([_UNIT_TO_MV.get(str(u or "").strip().lower(), 1.0) for u in (rec.units or [""] * n_sig)], dtype=np.float32)
    if (scale != 1).any():
        signal *= scale
    names = tuple(str(n) if n else f"lead{i + 1}" for i, n in enumerate(rec.sig_name or [None] * n_sig))
    validate_signal(signal, fs, source=str(header))
    return EcgRecord(signal, fs, names, header.stem, tuple(str(c) for c in rec.comments or ()))


def _wfdb_view(stack: contextlib.ExitStack, raw: bytes) -> Path:
    """A temporary folder, removed when `stack` closes, holding `raw` as `record.hea`."""
    view = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ecgrhythm-")))
    (view / "record.hea").write_bytes(raw)
    return view


def _check_signal_files(header: Path, meta) -> dict[str, Path]:
    """Refuse what wfdb would misread; map each signal file name to the file to read.

    Checks names (plain names beside the header), formats, gains, samples per
    frame and byte offsets, and that each file holds the bytes the header
    declares (no more, no less), before anything is read.
    """
    if len(meta.file_name or ()) != meta.n_sig:
        raise RecordError(header, f"the header declares {meta.n_sig} signals but describes {len(meta.file_name or ())}")
    frame_bytes: dict[str, float] = {}
    offsets: dict[str, int] = {}
    for i, name in enumerate(meta.file_name):
        _check_file_name(header, name)
        fmt = str(meta.fmt[i])
        if fmt not in _WFDB_BYTES_PER_SAMPLE:
            raise RecordError(header, f"unsupported WFDB storage format {fmt!r} for signal {i + 1}; expected one of {', '.join(_WFDB_BYTES_PER_SAMPLE)}")
        spf = int(meta.samps_per_frame[i] or 1) if meta.samps_per_frame else 1
        if not 1 <= spf <= _MAX_SAMPS_PER_FRAME:
            raise RecordError(header, f"signal {i + 1} declares {spf} samples per frame; expected 1 to {_MAX_SAMPS_PER_FRAME}")
        gain = float(meta.adc_gain[i]) if meta.adc_gain and meta.adc_gain[i] is not None else 200.0
        if not math.isfinite(gain) or gain == 0:
            raise RecordError(header, f"signal {i + 1} has an invalid ADC gain {gain!r}")
        per_sample = _WFDB_BYTES_PER_SAMPLE[fmt]
        frame_bytes[name] = frame_bytes.get(name, 0.0) + (math.nan if per_sample is None else per_sample * spf)
        offsets.setdefault(name, int(meta.byte_offset[i] or 0) if meta.byte_offset else 0)
    files = {}
    for name, frame in frame_bytes.items():
        target = _find_beside(header, name)
        available = target.stat().st_size - offsets[name]
        if available <= 0:
            raise RecordError(header, f"the signal file {name!r} holds no data after its byte offset {offsets[name]}")
        if math.isnan(frame):  # compressed: bound the decoded size only
            if meta.sig_len is None or meta.sig_len * meta.n_sig > _MAX_EXPANSION * available + _EXPANSION_FLOOR:
                raise RecordError(header, f"the header declares {meta.sig_len} samples, far more than the compressed {name!r} can hold")
        elif meta.sig_len is not None:
            needed = math.ceil(frame * meta.sig_len)
            if available < needed or available > needed + 16 + frame:
                raise RecordError(header, f"the header declares {meta.sig_len} samples ({needed} bytes) but {name!r} holds "
                                          f"{available} bytes, about {int(available // frame)} samples: fix the header's length or the file")
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
    _check_file(path, "the signal file", header)
    return path
