"""How many bytes a reader may decode: the bounds on what a small hostile file can make a reader allocate.

Compressed data (zlib in `.mat` v5, FLAC in WFDB formats 508/516/524) may decode to at most :data:`MAX_EXPANSION`
times its own compressed bytes plus :data:`EXPANSION_FLOOR` bytes, and never to more than :data:`MAX_DECODED_BYTES`
bytes (512 MiB); a record read whole, as float32, is held to the same cap (:func:`check_whole_read`). The environment
variable `ECGRHYTHM_MAX_DECODED_MB` (a positive number of MiB) replaces that cap at each read (:func:`max_decoded_bytes`),
and a caller may lower it for the reads within a block (:func:`decoded_limit`: the web service bounds each upload's
record so); :func:`check_decoded_size` applies both bounds.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os

from ecgrhythm.records.core import RecordError

__all__ = [
    "MAX_EXPANSION",
    "EXPANSION_FLOOR",
    "MAX_DECODED_BYTES",
    "MAX_DECODED_ENV",
    "max_decoded_bytes",
    "raise_limit_hint",
    "decoded_limit",
    "whole_read_fits",
    "check_whole_read",
    "check_decoded_size",
]

# Compressed data may decode to at most MAX_EXPANSION times its own compressed bytes, plus EXPANSION_FLOOR bytes ...
MAX_EXPANSION, EXPANSION_FLOOR = 64, 1 << 22
# ... and never to more than this many bytes; ECGRHYTHM_MAX_DECODED_MB (MiB) replaces it.
MAX_DECODED_BYTES = 512 << 20
MAX_DECODED_ENV = "ECGRHYTHM_MAX_DECODED_MB"
_LOWER_LIMIT = contextvars.ContextVar("ecgrhythm_decoded_limit", default=None)  # (bytes, how to raise them) of decoded_limit


def max_decoded_bytes() -> int:
    """The cap on the bytes one compressed variable or signal file may decode to.

    :data:`MAX_DECODED_BYTES`, or `ECGRHYTHM_MAX_DECODED_MB` MiB when that
    environment variable is set; at most the limit of the :func:`decoded_limit` block it is called in.

    Raises:
        ValueError: the environment variable is not a positive number.
    """
    lower = _LOWER_LIMIT.get()
    cap = _configured_limit()
    return cap if lower is None else min(cap, lower[0])


def _configured_limit() -> int:
    text = os.environ.get(MAX_DECODED_ENV)
    if text is None:
        return MAX_DECODED_BYTES
    try:
        mib = float(text)
    except ValueError:
        mib = math.nan
    if not (math.isfinite(mib) and mib > 0):
        raise ValueError(f"Invalid environment variable {MAX_DECODED_ENV}: expected a positive number of MiB. Received: {text!r}")
    return int(mib * (1 << 20))


def raise_limit_hint() -> str:
    """How to raise :func:`max_decoded_bytes`, for messages: the environment variable, or the words of the
    :func:`decoded_limit` block whose limit binds."""
    lower = _LOWER_LIMIT.get()
    if lower is not None and lower[0] < _configured_limit():
        return lower[1]
    return f"set {MAX_DECODED_ENV} (MiB) to raise it"


@contextlib.contextmanager
def decoded_limit(max_bytes: int, hint: str):
    """Within the block (in this thread or task), :func:`max_decoded_bytes` is at most `max_bytes`.

    Args:
        max_bytes: the lower cap, in bytes.
        hint: how to raise it, for the messages of what it refuses (`"raise the server's --max-record-mb"`).

    Example:
        >>> import ecgrhythm
        >>> from ecgrhythm.records.limits import decoded_limit
        >>> with decoded_limit(10_000, "raise the limit"):
        ...     ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")
        Traceback (most recent call last):
        ...
        ecgrhythm.records.core.RecordError: ../shared/data/cinc2017/A00004.hea: reading the record whole takes ... more than the limit of 10000 bytes...
    """
    token = _LOWER_LIMIT.set((int(max_bytes), hint))
    try:
        yield
    finally:
        _LOWER_LIMIT.reset(token)


def whole_read_fits(n_samples: int, n_leads: int, value_bytes: int) -> bool:
    """Whether `n_samples` of `n_leads` leads, decoded at `value_bytes` a value, fit :func:`max_decoded_bytes`."""
    return n_samples * n_leads * value_bytes <= max_decoded_bytes()


def check_whole_read(source, n_samples: int, n_leads: int, value_bytes: int, *, whole: str, leads: str, decoded_as: str) -> None:
    """Refuse to read a record whole when its samples would not fit the decoding bound (:func:`whole_read_fits`), before
    anything is allocated: the bound counts samples, not seconds, so a high rate over a sparse file is refused.

    Args:
        source: the file named in the message.
        n_samples, n_leads, value_bytes: what a whole read decodes.
        whole, leads, decoded_as: the message's words for the record (`"the record"`), its leads (`"signals"`) and how
            it is decoded (`"as float32"`).

    Raises:
        RecordError: naming the file, the size and how to read the record (in pieces).
    """
    if not whole_read_fits(n_samples, n_leads, value_bytes):
        raise RecordError(
            source,
            f"reading {whole} whole takes {n_samples} samples of {n_leads} {leads}, {n_samples * n_leads * value_bytes} bytes "
            f"{decoded_as}, more than the limit of {max_decoded_bytes()} bytes: 'classify' and 'episodes' read it in pieces "
            f"(ecgrhythm.records.long_records.open_long_record); to read it whole, {raise_limit_hint()}",
        )


def check_decoded_size(decoded: int, compressed: int, source, what: str) -> None:
    """Refuse compressed data that claims to decode to more than its bounds allow, before decoding it.

    Args:
        decoded: bytes the data decodes to (as declared by the file).
        compressed: bytes of the compressed data itself.
        source: file name used in the message.
        what: what the data is, for the message (`"'val'"`, `"the signal file 'x.dat'"`).

    Raises:
        RecordError: `decoded` exceeds `MAX_EXPANSION * compressed + EXPANSION_FLOOR`
            or :func:`max_decoded_bytes`.
    """
    cap = max_decoded_bytes()
    if decoded > cap:
        raise RecordError(source, f"{what} would decode to {decoded} bytes, more than the limit of {cap} bytes ({raise_limit_hint()})")
    if decoded > MAX_EXPANSION * compressed + EXPANSION_FLOOR:
        raise RecordError(
            source,
            f"{what} claims to decode to {decoded} bytes from {compressed} compressed bytes, "
            "far more than real data compresses: the file is corrupt or hostile",
        )
