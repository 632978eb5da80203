"""`.npy` records: a numeric array `(n_samples,)` or `(n_samples, n_leads)`, read in pieces, never unpickled.

The header is parsed by numpy's own safe parser (a literal, never code) once its length is checked against
:data:`MAX_HEADER_BYTES` (numpy would read whatever length the file claims first); the shape, dtype and the
file's size are checked before a sample is read, and so is the float32 signal's size against
:func:`~ecgrhythm.records.limits.max_decoded_bytes` (a sparse file declares gigabytes with none on disk). The
samples are then read in pieces of at most :data:`PIECE_BYTES` straight into the float32 signal, with no memory
map (a file that shrinks while mapped kills the process) and no second full copy; a file that changes size while
read is refused.
"""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import MAX_LEADS, Decoded, RecordError, check_length, shown
from ecgrhythm.records.limits import max_decoded_bytes, raise_limit_hint
from ecgrhythm.records.registry import register_reader

__all__ = ["read_npy", "MAX_HEADER_BYTES", "PIECE_BYTES"]

MAX_HEADER_BYTES = 10_000  # numpy's own default limit on a header it parses (`max_header_size`)
PIECE_BYTES = 1 << 20  # bytes of samples read at a time, into one reused buffer


def read_npy(path: Path, *, fs: float, **_options) -> Decoded:
    """Read a `.npy` record at the caller's `fs`, after checking its header against the file's size.

    Raises:
        RecordError: not a `.npy` file, a header over :data:`MAX_HEADER_BYTES`, a dtype that is not real
            numbers (object arrays and pickles included), a shape other than 1-D or 2-D, more than 64 leads,
            a size that disagrees with the header, longer than 24 h, a float32 signal over
            :func:`~ecgrhythm.records.limits.max_decoded_bytes`, or a file that changes while read.
    """
    with open(path, "rb") as f:
        shape, fortran, dtype = _header(path, f)
        if dtype.hasobject or dtype.names or dtype.subdtype or dtype.kind not in "iuf":
            raise RecordError(path, f"the .npy array has dtype {dtype}; expected real numbers (object arrays and pickles are refused)")
        if len(shape) not in (1, 2) or 0 in shape or any(d < 0 for d in shape):
            raise RecordError(path, f"the .npy array has shape {shape}; expected (n_samples,) or (n_samples, n_leads)")
        declared, held = math.prod(shape) * dtype.itemsize, path.stat().st_size - f.tell()
        if declared != held:
            raise RecordError(
                path, f"the .npy header declares shape {shape} ({declared} bytes) but the file holds {held} bytes of data (truncated or corrupt)"
            )
        if min(shape) > MAX_LEADS and len(shape) == 2:
            raise RecordError(path, f"expected at most {MAX_LEADS} leads, got an array of shape {shape}")
        check_length(max(shape), fs, path)
        signal_bytes = math.prod(shape) * 4  # the float32 signal: a sparse file declares it without a byte on disk
        if signal_bytes > max_decoded_bytes():
            raise RecordError(
                path,
                f"the .npy array of shape {shape} makes a signal of {signal_bytes} bytes as float32, more than the limit of "
                f"{max_decoded_bytes()} bytes ({raise_limit_hint()}): split it into parts",
            )
        # The bytes are a C-order (rows, columns) stream; a Fortran-order array is that stream's transpose.
        rows, columns = (shape[0], 1) if len(shape) == 1 else (shape[::-1] if fortran else shape)
        # Time is the longer axis of the array as saved (the first on a tie).
        by_column = rows < columns if not fortran else rows <= columns
        signal = _read_samples(path, f, dtype, rows, columns, by_column)
    return Decoded(signal, fs)


def _header(path: Path, f) -> tuple[tuple[int, ...], bool, np.dtype]:
    """`(shape, fortran_order, dtype)` of the `.npy` file `f`, left at the first byte of its data."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy format version {version}")
        length_format = "<H" if version == (1, 0) else "<I"
        raw = f.read(struct.calcsize(length_format))
        if len(raw) < struct.calcsize(length_format):
            raise ValueError("the file ends inside its header")
        length = struct.unpack(length_format, raw)[0]
        if length > MAX_HEADER_BYTES:
            raise ValueError(f"its header claims {length} bytes; numpy writes at most {MAX_HEADER_BYTES}")
        f.seek(-len(raw), 1)
        read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, fortran, dtype = read_header(f, max_header_size=MAX_HEADER_BYTES)
    except Exception as exc:  # ValueError, SyntaxError, tokenize.TokenError from a damaged header
        reason = re.sub(r" at 0x[0-9a-f]+", "", str(exc))  # the address in "<ast.Call object at 0x7f...>"
        raise RecordError(path, f"not a valid .npy file ({shown(reason)}): save the array with numpy.save") from None
    return tuple(shape), bool(fortran), dtype


def _read_samples(path: Path, f, dtype: np.dtype, rows: int, columns: int, by_column: bool) -> np.ndarray:
    """The float32 signal `(n_samples, n_leads)` from `rows x columns` numbers in C order, read `PIECE_BYTES` at a time.

    `by_column`: the rows are the leads (the signal is the stream's transpose).
    """
    signal = np.empty((columns, rows) if by_column else (rows, columns), dtype=np.float32)
    # One lead is contiguous when the rows are leads: read pieces of a row; else pieces of whole rows.
    lines, per_line = (rows, columns) if by_column else (1, rows * columns)
    step = max(1, PIECE_BYTES // dtype.itemsize)
    step = step if by_column else max(columns, step // columns * columns)
    buffer = bytearray(min(step, per_line) * dtype.itemsize)
    with np.errstate(over="ignore", invalid="ignore"):  # values beyond float32 are refused by name when validated
        for line in range(lines):
            for start in range(0, per_line, step):
                count = min(step, per_line - start)
                if f.readinto(memoryview(buffer)[: count * dtype.itemsize]) != count * dtype.itemsize:
                    raise RecordError(path, "the file changed size while it was read: read it again once it is written")
                piece = np.frombuffer(buffer, dtype=dtype, count=count)
                if by_column:
                    signal[start : start + count, line] = piece
                else:
                    signal[start // columns : (start + count) // columns] = piece.reshape(-1, columns)
    if f.read(1):
        raise RecordError(path, "the file changed size while it was read: read it again once it is written")
    return signal


register_reader(".npy", read_npy)
