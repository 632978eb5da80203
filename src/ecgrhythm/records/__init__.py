"""Reading ECG records and labels from files.

Every reader returns the samples of one record, which :func:`read_record`
validates in one place (:func:`validate_signal`, whatever the format) and
makes an :class:`EcgRecord`, the one record type of the package. Every problem
with a file surfaces as a :class:`RecordError` that names the file and what is
wrong with it: no exception of `wfdb`, `scipy` or `numpy` escapes
(`KeyboardInterrupt` does).

Supported inputs, one module each, registered by suffix in :mod:`.registry`
(`register_reader(".xyz", reader)` adds a format for `read_record`, folder
discovery, the CLI and the service):

- PhysioNet WFDB records (:mod:`.wfdb_reader`): a `.hea` header with its `.dat`
  or `.mat` signal file(s), checked (:mod:`.wfdb_header`) and read as `wfdb` reads them (:mod:`.wfdb_fields`);
  a bare record name (`.../A00005`, as wfdb's tools take it) names its header.
- Bare CinC `.mat` files (:mod:`.mat_reader`, MATLAB v4/v5) holding int16
  samples under `val`, 1000 units per mV, as in the CinC 2017 data.
- `.csv` files (:mod:`.csv_reader`) with one column per lead (an optional
  header row names them).
- `.npy` arrays (:mod:`.npy_reader`) of shape `(n_samples,)` or `(n_samples, n_leads)`.
- EDF, EDF+ and BDF(+) files (:mod:`.edf_reader`, `.edf`/`.bdf`, through `pyedflib`), their header
  checked first (:mod:`.edf_header`): the ECG signals in mV, the start time and EDF+ annotations.

Files without a header carry no sampling rate: the caller passes `fs`.
Extensions are matched case-insensitively. Before reading, each reader checks
that the file holds the bytes its header (WFDB or `.npy`) declares, that the
declared length is at most `MAX_DURATION_S`, and that compressed data (a
`.mat` v5 variable, a FLAC signal file) decodes to a bounded number of bytes
(:mod:`.limits`: `MAX_DECODED_BYTES`, environment variable
`ECGRHYTHM_MAX_DECODED_MB`), so a lying header never makes a reader allocate
more than the file justifies; a CSV is parsed no further than that cap allows. `.npy` and `.mat`
files are read, never memory-mapped (a file that shrinks meanwhile is an error, not a crash); `.npy` never unpickled.
Folders are expanded by :func:`find_records`; labels are read by :func:`read_reference`, and a
folder's labels, whatever their source, by :func:`ecgrhythm.records.labels.read_folder_labels`.
Long WFDB records (up to `MAX_STREAM_DURATION_S`, 14 days) are read in sample
ranges through :func:`open_wfdb`, after the same header checks, and long EDF/BDF files
through :func:`~ecgrhythm.records.edf_reader.open_edf`.
"""

from __future__ import annotations

# Each format module registers its suffix on import; this order is the order of `record_suffixes()`.
# isort: off
import ecgrhythm.records.wfdb_reader as wfdb_reader  # noqa: F401  .hea
import ecgrhythm.records.mat_reader as mat_reader  # noqa: F401  .mat
import ecgrhythm.records.csv_reader as csv_reader  # noqa: F401  .csv
import ecgrhythm.records.npy_reader as npy_reader  # noqa: F401  .npy
import ecgrhythm.records.edf_reader as edf_reader  # noqa: F401  .edf, .bdf

# isort: on
from ecgrhythm.records.core import (
    MAX_DURATION_S,
    MAX_STREAM_DURATION_S,
    MIN_DURATION_S,
    Decoded,
    EcgRecord,
    RecordError,
    check_fs,
    failure_reason,
    validate_piece,
    validate_signal,
)
from ecgrhythm.records.discovery import find_records, record_files
from ecgrhythm.records.reading import read_record, record_path
from ecgrhythm.records.reference import read_reference
from ecgrhythm.records.registry import (
    describe_suffixes,
    record_suffixes,
    register_reader,
    signal_suffixes,
)
from ecgrhythm.records.wfdb_header import reads_in_pieces
from ecgrhythm.records.wfdb_reader import WfdbStream, header_length, header_of, named_header, open_wfdb, read_header_comments

__all__ = [
    "EcgRecord",
    "Decoded",
    "RecordError",
    "failure_reason",
    "read_record",
    "record_path",
    "find_records",
    "record_files",
    "read_reference",
    "read_header_comments",
    "validate_signal",
    "validate_piece",
    "open_wfdb",
    "WfdbStream",
    "header_length",
    "reads_in_pieces",
    "header_of",
    "named_header",
    "check_fs",
    "register_reader",
    "record_suffixes",
    "signal_suffixes",
    "describe_suffixes",
    "MIN_DURATION_S",
    "MAX_DURATION_S",
    "MAX_STREAM_DURATION_S",
    "SIGNAL_SUFFIXES",
]

SIGNAL_SUFFIXES = signal_suffixes()  # the built-in formats'; signal_suffixes() includes readers registered later
