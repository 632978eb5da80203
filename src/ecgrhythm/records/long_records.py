"""Long WFDB records: which are read in pieces, and opening one for that.

A WFDB record or an EDF/BDF file whose header declares more than `STREAM_ABOVE_S` (1 h) is never read whole
(:func:`should_stream`): :func:`open_long_record` opens it as a :class:`~ecgrhythm.records.WfdbStream` (or an
:class:`~ecgrhythm.records.edf_reader.EdfStream`, with the same attributes and `read`), read piece by piece, and such records may last up to 14 days (:data:`~ecgrhythm.records.MAX_STREAM_DURATION_S`), while other
records and formats keep the 24 h limit of a whole read. The classifier
(:mod:`ecgrhythm.inference.long_records`) and the episode finder (:mod:`ecgrhythm.episodes.files`) read them so.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ecgrhythm.records.core import RecordError, header_bytes
from ecgrhythm.records.edf_reader import edf_whole_read_fits, is_edf, open_edf
from ecgrhythm.records.wfdb_header import reads_in_pieces, record_line, whole_read_fits
from ecgrhythm.records.wfdb_reader import header_length, header_of, open_wfdb

__all__ = ["should_stream", "open_long_record", "STREAM_ABOVE_S"]

STREAM_ABOVE_S = 3600.0  # WFDB records and EDF/BDF files declared longer than this are read in pieces


def should_stream(path, fs: float | None = None) -> bool:
    """Whether `path` is a WFDB record (a `.hea`, or a signal file with its header) or an EDF/BDF file declaring more than
    `STREAM_ABOVE_S`, or one with more samples than a whole read takes (:func:`~.wfdb_header.whole_read_fits`,
    :func:`~.edf_reader.edf_whole_read_fits`).

    A header that cannot be parsed is left to :func:`~ecgrhythm.records.read_record` to report.
    """
    if is_edf(path):
        try:
            return not edf_whole_read_fits(path, STREAM_ABOVE_S)
        except RecordError:
            return False
    header = header_of(path)
    if header is None:
        return False
    try:
        sig_len, rate = header_length(header, fs)
        n_sig = record_line(header, header_bytes(header))[0]
    except (RecordError, OSError):
        return False
    long = sig_len is not None and rate is not None and rate > 0 and sig_len / rate > STREAM_ABOVE_S
    large = sig_len is not None and not whole_read_fits(sig_len, n_sig)  # a high rate: too many samples to read whole
    return (long or large) and reads_in_pieces(header)  # format 8 is read whole (up to 24 h)


@contextlib.contextmanager
def open_long_record(path, fs: float | None = None):
    """:func:`~ecgrhythm.records.open_wfdb` for a record file (`.hea`, or a signal file with its header), or
    :func:`~ecgrhythm.records.edf_reader.open_edf` for an EDF/BDF file; errors name `path`.

    Raises:
        RecordError: `path` is not a WFDB record nor an EDF/BDF file, or its header or signal files fail the checks.
    """
    path = Path(path)
    if is_edf(path):
        with open_edf(path) as stream:
            yield stream
        return
    header = header_of(path)
    if header is None:
        raise RecordError(path, "only WFDB records (a .hea header with its signal files) and EDF/BDF files are read in pieces")
    try:
        with open_wfdb(header, fs=fs) as stream:
            yield stream
    except RecordError as exc:
        if header == path or Path(exc.path) == path:
            raise
        raise RecordError(path, f"read through its header {header.name}: {exc.reason}") from None
