"""`.npy` records: a numeric array `(n_samples,)` or `(n_samples, n_leads)`, memory-mapped, never unpickled."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import Decoded, RecordError, as_signal, check_length
from ecgrhythm.records.registry import register_reader

__all__ = ["read_npy"]


def read_npy(path: Path, *, fs: float, **_options) -> Decoded:
    """Read a `.npy` record at the caller's `fs`, after checking its header against the file's size.

    Raises:
        RecordError: not a `.npy` file, a dtype that is not real numbers
            (object arrays and pickles included), a shape other than 1-D or 2-D,
            a size that disagrees with the header, or longer than 24 h.
    """
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
        raise RecordError(
            path, f"the .npy header declares shape {shape} ({declared} bytes) but the file holds {held} bytes of data (truncated or corrupt)"
        )
    check_length(max(shape), fs, path)
    mapped = np.load(path, mmap_mode="r", allow_pickle=False)  # checked above: numeric, and exactly the file's size
    signal = as_signal(mapped, path)
    return Decoded(signal.copy() if np.may_share_memory(signal, mapped) else signal, fs)


register_reader(".npy", read_npy)
