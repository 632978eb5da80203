"""Bare CinC `.mat` records (MATLAB v4/v5): int16 samples under `val`, 1000 units per mV, no sampling rate.

Before `scipy` reads `val`, :func:`read_mat` bounds what reading it may
allocate: the length (the longer dimension at the caller's `fs`) against
`MAX_DURATION_S`, and the bytes it decodes to (its elements times the larger
of its class's item size and the 4 bytes of the float32 result, or its
element's decompressed size if larger) against `check_decoded_size`.

A v5 file is a 128-byte header and a sequence of tagged elements, one per
variable; a compressed (`miCOMPRESSED`) element's tag gives its compressed
byte count. The reader walks the elements itself, decompressing at most
64 KiB of each to learn its name, class and dimensions, finds `val`'s own
element and bounds its decoded size by an expansion of its own compressed
bytes (so another variable in the file does not raise the bound), then
decompresses that element alone, never past its declared size, and hands
`scipy` a file of that one uncompressed element. A v4 file is uncompressed:
`scipy` lists and reads it directly, bounded by the file's size.
"""

from __future__ import annotations

import dataclasses
import io
import math
import mmap
import struct
import zlib
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import Decoded, RecordError, as_signal, check_decoded_size, check_length
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


def read_mat(path: Path, *, fs: float, mat_gain: float = 1000.0, **_options) -> Decoded:
    """Read `val` of a `.mat` file at the caller's `fs`, scaled by `mat_gain` units per mV.

    Raises:
        RecordError: not a readable v4/v5 file (v7.3 is refused), no numeric
            `val` matrix, longer than 24 h, or decoding to more bytes than
            allowed (see the module docstring).
    """
    import scipy.io

    # Through mmap, a length field claiming more bytes than the file holds reads what there is, never allocates it.
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as stream:
        if _is_v5(stream):
            elements = _v5_elements(path, stream)
            variables = [(e.name, e.shape, e.kind) for e in elements]
        else:
            elements = None
            try:
                variables = scipy.io.whosmat(stream)
            except NotImplementedError:
                raise RecordError(path, "MATLAB v7.3 (HDF5) files are not supported: save with -v7 or -v4") from None
            except Exception as exc:
                raise RecordError(path, f"not a readable MATLAB .mat file ({type(exc).__name__}: {exc})") from None
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
            check_decoded_size(decoded, len(stream), path, f"'val' (shape {tuple(shape)}, {kind})")
            stream.seek(0)
            source = stream
        else:
            element = elements[-1]
            decoded = max(decoded * (2 if element.complex else 1), element.matrix_bytes if element.compressed else 0)
            check_decoded_size(decoded, 8 + element.nbytes, path, f"'val' (shape {tuple(shape)}, {kind})")
            source = io.BytesIO(bytes(stream[:_V5_HEADER_BYTES]) + _matrix_element(path, stream, element))
        val = scipy.io.loadmat(source, variable_names=[_VARIABLE])[_VARIABLE]
    signal = as_signal(val, path)
    signal /= np.float32(mat_gain)
    return Decoded(signal, fs)


def _is_v5(stream) -> bool:
    """A v5 header: 116 bytes of text (no zero in the first four), 8 bytes, version 0x0100 and `IM` or `MI`."""
    if len(stream) < _V5_HEADER_BYTES or 0 in stream[:4] or stream[126:128] not in (b"IM", b"MI"):
        return False
    return struct.unpack_from(_order(stream) + "H", stream, 124)[0] == 0x0100


def _order(stream) -> str:
    return "<" if stream[126:128] == b"IM" else ">"


def _v5_elements(path: Path, stream) -> list[_Element]:
    """The top-level variables of a v5 file up to the first one named `val` (the last in the list, if found).

    A compressed element's header is read by decompressing at most
    `_ARRAY_HEADER_BYTES` bytes of it; nothing else is decompressed.
    """
    order, pos, elements = _order(stream), _V5_HEADER_BYTES, []
    while pos + 8 <= len(stream):
        mdtype, nbytes = struct.unpack_from(order + "II", stream, pos)
        body = bytes(stream[pos + 8 : pos + 8 + min(nbytes, _ARRAY_HEADER_BYTES)])
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
        elements.append(element)
        if element.name == _VARIABLE:
            break
        pos += 8 + nbytes
    return elements


def _array_header(path: Path, buf: bytes, order: str, start: int, nbytes: int, compressed: bool, matrix_bytes: int) -> _Element:
    """The variable described by the first sub-elements of a matrix element: array flags, dimensions, name."""
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
    return _Element(name, kind, tuple(shape), bool(flags & _COMPLEX_FLAG), start, nbytes, compressed, matrix_bytes)


def _matrix_element(path: Path, stream, element: _Element) -> bytes:
    """The variable's miMATRIX element, uncompressed: decompressed no further than its declared size."""
    raw = stream[element.start : element.start + 8 + element.nbytes]
    if not element.compressed:
        return bytes(raw)
    try:
        matrix = zlib.decompressobj().decompress(raw[8:], element.matrix_bytes)
    except zlib.error as exc:
        raise RecordError(path, f"the compressed 'val' is corrupt ({exc})") from None
    if len(matrix) < element.matrix_bytes:
        raise RecordError(path, f"the compressed 'val' holds {len(matrix)} of its {element.matrix_bytes} bytes (truncated or corrupt)")
    return matrix


register_reader(".mat", read_mat)
