"""Bare CinC `.mat` records (MATLAB v4/v5): int16 samples under `val`, 1000 units per mV, no sampling rate.

Before `scipy` reads `val`, :func:`read_mat` bounds what reading it may
allocate: the length (the longer dimension at the caller's `fs`) against
`MAX_DURATION_S`, and the bytes it decodes to (its elements times the larger
of its class's item size and the 4 bytes of the float32 result, or its
element's decompressed size if larger) against `check_decoded_size`.

The reader walks the file's variables itself, keeping at most five besides
`val` (to name them when `val` is missing), and hands `scipy` a file of `val`
alone. A v4 file is a sequence of variables, each a 20-byte header (type,
dimensions, complex flag, name length), its name and its uncompressed data.
A v5 file is a 128-byte header and a sequence of tagged elements, one per
variable; a compressed (`miCOMPRESSED`) element's tag gives its compressed
byte count. Of a v5 file the reader decompresses at most 64 KiB of each
element to learn its name, class, dimensions and the tag of its samples (a
numeric data type of the byte count the dimensions need: scipy 1.17 crashes
the process on another type), bounds `val`'s decoded size by an expansion of
its own compressed bytes, those the file holds rather than its tag's claim (so
neither another variable in the file nor a lying tag raises the bound), then
decompresses that element alone, never past its declared size.
The file is read, never memory-mapped, no further than the size it had when
opened: a file that shrinks meanwhile is an error, not a crash. Complex `val`
and scipy's warnings (a VAX number format: "returned data may be corrupt")
refuse the file.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import Decoded, RecordError, as_signal, check_length
from ecgrhythm.records.limits import check_decoded_size
from ecgrhythm.records.registry import register_reader

__all__ = ["read_mat"]

_VARIABLE = "val"
_MAT_NUMERIC = {"double": 8, "single": 4, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint8": 1, "uint16": 2, "uint32": 4, "uint64": 8}
# MATLAB array classes by code (as scipy names them).
_CLASSES = {
    1: "cell",
    2: "struct",
    3: "object",
    4: "char",
    5: "sparse",
    6: "double",
    7: "single",
    8: "int8",
    9: "uint8",
    10: "int16",
    11: "uint16",
    12: "int32",
    13: "uint32",
    14: "int64",
    15: "uint64",
}
_MI_MATRIX, _MI_COMPRESSED = 14, 15
# v4 number formats by code: class name and bytes per element.
_V4_NUMBERS = {0: ("double", 8), 1: ("single", 4), 2: ("int32", 4), 3: ("int16", 2), 4: ("uint16", 2), 5: ("uint8", 1)}
# Bytes per element of the MATLAB data types a numeric array's samples may be stored as (miINT8 ... miUINT64).
_MI_NUMERIC = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8}
_V5_HEADER_BYTES = 128
_ARRAY_HEADER_BYTES = 1 << 16  # bytes of a matrix element decoded to find its flags, dimensions and name
_COMPLEX_FLAG, _LOGICAL_FLAG = 0x800, 0x200


@dataclasses.dataclass(frozen=True)
class _Element:
    """One top-level variable of a v5 file: where its element lies and what its array header says."""

    name: str
    kind: str
    shape: tuple[int, ...]
    complex: bool
    start: int  # offset of the element's tag
    nbytes: int  # bytes after the tag (compressed bytes for a compressed element)
    compressed: bool
    matrix_bytes: int  # bytes of the miMATRIX element once decompressed, tag included
    data_type: int  # MATLAB data type of the real part's samples (its sub-element's tag)
    data_bytes: int  # bytes of the real part's samples


def read_mat(path: Path, *, fs: float, mat_gain: float = 1000.0, **_options) -> Decoded:
    """Read `val` of a `.mat` file at the caller's `fs`, scaled by `mat_gain` units per mV.

    Raises:
        RecordError: not a readable v4/v5 file (v7.3 is refused), no real numeric
            `val` matrix, samples of another type or byte count than `val`'s
            header declares, longer than 24 h, or decoding to more bytes than
            allowed (see the module docstring).
    """
    import scipy.io

    # scipy's warnings (a VAX or unknown number format, "returned data may be corrupt") refuse the file.
    with open(path, "rb") as f, warnings.catch_warnings():
        stream = _Clamped(f)
        warnings.simplefilter("error", UserWarning)
        if _is_v5(stream):
            elements = _v5_elements(path, stream)
            variables = [(e.name, e.shape, e.kind) for e in elements[-1:] if e.name == _VARIABLE] or [(e.name, e.shape, e.kind) for e in elements[:5]]
        else:
            elements = None
            try:
                version = scipy.io.matlab.matfile_version(stream)
            except Exception as exc:
                raise RecordError(path, f"not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from None
            if version[0] == 2:
                raise RecordError(path, "MATLAB v7.3 (HDF5) files are not supported: save with -v7 or -v4")
            if version[0] != 0:
                raise RecordError(path, f"not a readable MATLAB .mat file (a damaged header for version {version})")
            variables, span = _v4_variables(path, stream)
        found = [v for v in variables if v[0] == _VARIABLE]
        if not found:
            held = ", ".join(repr(v[0]) for v in variables[:5]) or "nothing"
            raise RecordError(path, f"the .mat file has no variable 'val' (it holds {held}); CinC files keep int16 samples under 'val'")
        _, shape, kind = found[0]
        if kind not in _MAT_NUMERIC or len(shape) > 2:
            raise RecordError(path, f"'val' is a {kind} array of shape {tuple(shape)}; expected a numeric (leads x samples) matrix")
        check_length(max(shape, default=0), fs, path)
        decoded = math.prod(shape) * max(_MAT_NUMERIC[kind], 4)
        if elements is None:
            start, stop, is_complex = span
            if is_complex:
                raise RecordError(path, f"'val' is a complex {kind} array; expected real numbers")
            if stop > len(stream):
                raise RecordError(path, f"'val' of shape {tuple(shape)} ends at byte {stop} but the file holds {len(stream)} (truncated or corrupt)")
            check_decoded_size(decoded, stop - start, path, f"'val' (shape {tuple(shape)}, {kind})")
            source = io.BytesIO(stream[start:stop])
        else:
            element = elements[-1]
            _check_samples(path, element)
            decoded = max(decoded, element.matrix_bytes if element.compressed else 0)
            held = min(8 + element.nbytes, len(stream) - element.start)  # the bytes there, not the tag's claim
            check_decoded_size(decoded, held, path, f"'val' (shape {tuple(shape)}, {kind})")
            source = io.BytesIO(stream[:_V5_HEADER_BYTES] + _matrix_element(path, stream, element))
        try:
            val = scipy.io.loadmat(source, variable_names=[_VARIABLE])[_VARIABLE]
        except (ValueError, TypeError, UserWarning) as exc:  # a damaged variable scipy listed but cannot read
            raise RecordError(path, f"not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from None
    signal = as_signal(val, path)
    with np.errstate(over="ignore"):  # a tiny mat_gain overflows: the samples beyond float32 are refused by name when validated
        signal /= np.float32(mat_gain)
    return Decoded(signal, fs)


class _Clamped:
    """A `.mat` file read no further than the size it had when opened, never memory-mapped.

    A length field claiming more bytes than the file holds reads what there is and never allocates the claim;
    a file that grows while read is read as it was, and one that shrinks gives short reads (a parse error), where a
    memory map would kill the process. Slicing (`stream[a:b]`) reads those bytes; scipy reads it as a file.
    """

    def __init__(self, f):
        self._f = f
        self._size = os.fstat(f.fileno()).st_size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key: slice) -> bytes:
        start, stop, _ = key.indices(self._size)
        self._f.seek(start)
        return self._f.read(max(0, stop - start))

    def read(self, n: int | None = -1) -> bytes:
        left = max(0, self._size - self._f.tell())
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()


def _is_v5(stream) -> bool:
    """A v5 header: 116 bytes of text (no zero in the first four), 8 bytes, version 0x0100 and `IM` or `MI`."""
    if len(stream) < _V5_HEADER_BYTES or 0 in stream[:4] or stream[126:128] not in (b"IM", b"MI"):
        return False
    return struct.unpack(_order(stream) + "H", stream[124:126])[0] == 0x0100


def _order(stream) -> str:
    return "<" if stream[126:128] == b"IM" else ">"


def _v4_variables(path: Path, stream) -> tuple[list[tuple[str, tuple[int, int], str]], tuple[int, int, bool] | None]:
    """`(variables, span)` of a v4 file: `(name, shape, kind)` of `val`, or of its first five variables when it has no
    `val`; and `val`'s bytes, header included, as `(start, stop, complex)` (None without `val`).

    Each variable is a 20-byte header (type code, rows, columns, complex flag, name length), its name, then its data.
    """
    pos, variables = 0, []
    while pos + 20 <= len(stream):
        head = stream[pos : pos + 20]
        order = "<" if 0 <= struct.unpack("<i", head[:4])[0] <= 5000 else ">"  # scipy's test of the byte order
        mopt, rows, columns, imaginary, name_bytes = struct.unpack(order + "5i", head)
        machine, zero, number, matrix = mopt // 1000, mopt // 100 % 10, mopt // 10 % 10, mopt % 10
        if (
            not 0 <= mopt <= 5000
            or machine > 1
            or zero
            or number not in _V4_NUMBERS
            or matrix > 2
            or min(rows, columns) < 0
            or not 0 < name_bytes <= 4096
        ):
            raise RecordError(path, f"not a readable MATLAB .mat file (the v4 variable at byte {pos} has a damaged header)")
        name = stream[pos + 20 : pos + 20 + name_bytes].rstrip(b"\0").decode("latin-1")
        kind, itemsize = _V4_NUMBERS[number]
        kind = (kind, "char", "sparse")[matrix]
        stop = pos + 20 + name_bytes + rows * columns * itemsize * (2 if imaginary == 1 and matrix != 2 else 1)
        if name == _VARIABLE:
            return [(name, (rows, columns), kind)], (pos, stop, imaginary == 1)
        if len(variables) < 5:
            variables.append((name, (rows, columns), kind))
        pos = stop
    return variables, None


def _v5_elements(path: Path, stream) -> list[_Element]:
    """The first five top-level variables of a v5 file, and the first one named `val` (the last in the list, if found).

    A compressed element's header is read by decompressing at most
    `_ARRAY_HEADER_BYTES` bytes of it; nothing else is decompressed.
    """
    order, pos, elements = _order(stream), _V5_HEADER_BYTES, []
    while pos + 8 <= len(stream):
        mdtype, nbytes = struct.unpack(order + "II", stream[pos : pos + 8])
        body = stream[pos + 8 : pos + 8 + min(nbytes, _ARRAY_HEADER_BYTES)]
        compressed = mdtype == _MI_COMPRESSED
        if compressed:
            try:
                body = zlib.decompressobj().decompress(body, _ARRAY_HEADER_BYTES)
            except zlib.error as exc:
                raise RecordError(path, f"not a readable MATLAB .mat file (the compressed variable at byte {pos} is corrupt: {exc})") from None
            if len(body) < 8:
                raise RecordError(path, f"not a readable MATLAB .mat file (the compressed variable at byte {pos} is empty)")
            mdtype, matrix_bytes = struct.unpack_from(order + "II", body)
            body = body[8:]
        else:
            matrix_bytes = nbytes
        if mdtype != _MI_MATRIX or nbytes == 0:
            raise RecordError(path, f"not a readable MATLAB .mat file (element type {mdtype} of {nbytes} bytes at byte {pos})")
        element = _array_header(path, body, order, pos, nbytes, compressed, 8 + matrix_bytes)
        if element.name == _VARIABLE or len(elements) < 5:  # the others are kept only to be named in a message
            elements.append(element)
        if element.name == _VARIABLE:
            break
        pos += 8 + nbytes
    return elements


def _array_header(path: Path, buf: bytes, order: str, start: int, nbytes: int, compressed: bool, matrix_bytes: int) -> _Element:
    """The variable described by the first sub-elements of a matrix element: array flags, dimensions, name, and the
    tag of its (real) samples, when the buffer holds it (`data_type` 0 otherwise)."""
    try:
        pos, fields = 0, []
        for _ in range(3):
            first, second = struct.unpack_from(order + "II", buf, pos)
            if first >> 16:  # a small data element: size and type in one word, data in the next four bytes
                fields.append(buf[pos + 4 : pos + 4 + (first >> 16)])
                pos += 8
            else:
                fields.append(buf[pos + 8 : pos + 8 + second])
                pos += 8 + (second + 7) // 8 * 8
        flags = struct.unpack_from(order + "I", fields[0])[0]
        shape = struct.unpack(f"{order}{len(fields[1]) // 4}i", fields[1][: len(fields[1]) // 4 * 4])
    except struct.error:
        raise RecordError(path, f"not a readable MATLAB .mat file (the variable at byte {start} has a damaged header)") from None
    if any(d < 0 for d in shape):
        raise RecordError(path, f"not a readable MATLAB .mat file (the variable at byte {start} has negative dimensions {shape})")
    kind = "logical" if flags & _LOGICAL_FLAG else _CLASSES.get(flags & 0xFF, "unknown")
    name = bytes(fields[2]).decode("latin1")
    data_type, data_bytes = 0, 0
    if pos + 8 <= len(buf):
        first, second = struct.unpack_from(order + "II", buf, pos)
        data_type, data_bytes = (first & 0xFFFF, first >> 16) if first >> 16 else (first, second)
    return _Element(name, kind, tuple(shape), bool(flags & _COMPLEX_FLAG), start, nbytes, compressed, matrix_bytes, data_type, data_bytes)


def _check_samples(path: Path, element: _Element) -> None:
    """Refuse a numeric `val` whose samples scipy would misread (or crash on): complex, stored as a data type that is not
    a number, or a byte count other than its dimensions need."""
    if element.complex:
        raise RecordError(path, f"'val' is a complex {element.kind} array; expected real numbers")
    itemsize = _MI_NUMERIC.get(element.data_type)
    if itemsize is None:
        raise RecordError(path, f"not a readable MATLAB .mat file ('val' stores its samples as MATLAB data type {element.data_type}, not a number)")
    needed = math.prod(element.shape) * itemsize
    if element.data_bytes != needed:
        raise RecordError(
            path,
            f"'val' of shape {element.shape} needs {needed} bytes of samples but its data holds {element.data_bytes} (truncated or corrupt)",
        )


def _matrix_element(path: Path, stream, element: _Element) -> bytes:
    """The variable's miMATRIX element, uncompressed: decompressed no further than its declared size."""
    raw = stream[element.start : element.start + 8 + element.nbytes]
    if not element.compressed:
        return raw
    try:
        matrix = zlib.decompressobj().decompress(raw[8:], element.matrix_bytes)
    except zlib.error as exc:
        raise RecordError(path, f"the compressed 'val' is corrupt ({exc})") from None
    if len(matrix) < element.matrix_bytes:
        raise RecordError(path, f"the compressed 'val' holds {len(matrix)} of its {element.matrix_bytes} bytes (truncated or corrupt)")
    return matrix


register_reader(".mat", read_mat)
