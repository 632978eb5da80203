"""EDF, EDF+ and BDF/BDF+ records (`.edf`, `.bdf`): the usual export of Holter and ambulatory ECG software, read through `pyedflib`.

`pyedflib` wraps EDFlib, the C library of EDFbrowser's author: it reads EDF, EDF+ and BDF(+) files, a
range of samples of one signal at a time (so a multi-day file is read in bounded memory), the start
date and time and EDF+ annotations. It prints to standard output on some malformed files and reads
whatever the header says; so :func:`open_edf` first checks the header against the file itself
(:func:`~.edf_header.read_edf_header`) and only then lets `pyedflib` open it, and reads never ask it
for samples past the end.

The leads are the ECG signals of the file (:func:`~.edf_header.ecg_signals`: signals labelled ECG/EKG
or with a standard lead name, else every signal, at their most common rate; annotation signals never),
converted from their physical dimension (uV, mV or V) to mV. :func:`read_edf` reads a file whole (up to
`MAX_DURATION_S`); :func:`open_edf` opens it for reading sample ranges (up to `MAX_STREAM_DURATION_S`),
as :func:`~ecgrhythm.records.long_records.open_long_record` does for files over an hour.

EDFlib holds every EDF+ annotation in memory (about 600 bytes each); a file whose annotation signals
could hold more than :func:`~.limits.max_decoded_bytes` of them is read without its annotations, with a warning.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import warnings
from pathlib import Path

import numpy as np

from ecgrhythm.records.core import (
    MAX_DURATION_S,
    MAX_STREAM_DURATION_S,
    Annotation,
    Decoded,
    RecordError,
    check_file,
    check_length,
    lead_names,
    validate_piece,
)
from ecgrhythm.records.edf_header import EdfHeader, ecg_signals, read_edf_header
from ecgrhythm.records.limits import check_whole_read, max_decoded_bytes, whole_read_fits
from ecgrhythm.records.registry import register_reader

__all__ = ["read_edf", "open_edf", "EdfStream", "edf_whole_read_fits", "is_edf", "EDF_SUFFIXES"]

logger = logging.getLogger(__name__)

EDF_SUFFIXES = (".edf", ".bdf")
_READ_SAMPLES = 1 << 20  # samples of one signal read at a time by a whole read
_VALUE_BYTES = 4  # a whole read decodes every sample to float32
# EDFlib keeps about 600 bytes per annotation, and one annotation takes at least 5 bytes of the file.
_ANNOTATION_EXPANSION = 120


def is_edf(path) -> bool:
    """Whether `path` has an EDF or BDF suffix (any case)."""
    return Path(path).suffix.lower() in EDF_SUFFIXES


def edf_whole_read_fits(path, max_s: float) -> bool:
    """Whether an EDF/BDF file may be read whole, reading no sample: its header declares at most `max_s` seconds, and
    its ECG leads, as float32, fit :func:`~.limits.max_decoded_bytes` (a high rate over a sparse file declares gigabytes
    in under an hour with none on disk).

    Raises:
        RecordError: the file is missing, its header fails the checks, or (within `max_s`) no signal can be read as ECG.
    """
    path = Path(path)
    check_file(path)
    header = _header(path)
    if header.duration_s > max_s:
        return False
    channels, _, _ = ecg_signals(header, path)
    return whole_read_fits(header.n_records * header.samples[channels[0]], len(channels), _VALUE_BYTES)


def read_edf(path: Path, *, fs: float | None = None, **_options) -> Decoded:
    """Read an EDF/EDF+/BDF file whole: its ECG leads in mV, rate, labels, start time and annotations.

    Args:
        path: the `.edf` or `.bdf` file.
        fs: ignored: the header gives the rate.

    Returns:
        The samples, float32 `(n_samples, n_leads)` in mV (`read_record` validates them).

    Raises:
        RecordError: the header is malformed or disagrees with the file, the file lasts over 24 h or its leads
            would take more than :func:`~.limits.max_decoded_bytes` as float32 (:func:`open_edf` reads such a file in
            pieces), no signal can be read as ECG, or `pyedflib` cannot read it.
    """
    with open_edf(path, max_s=MAX_DURATION_S) as stream:
        check_whole_read(path, stream.n_samples, len(stream.sig_name), _VALUE_BYTES, whole="the file", leads="leads", decoded_as="as float32")
        signal = np.empty((stream.n_samples, len(stream.sig_name)), dtype=np.float32)
        for start in range(0, stream.n_samples, _READ_SAMPLES):
            stop = min(stream.n_samples, start + _READ_SAMPLES)
            signal[start:stop] = stream.read(start, stop)
        return Decoded(signal, stream.fs, stream.sig_name, start_time=stream.start_time, annotations=stream.annotations)


@contextlib.contextmanager
def open_edf(path, *, max_s: float = MAX_STREAM_DURATION_S):
    """Open an EDF/EDF+/BDF file for reading sample ranges of its ECG leads, after checking its header.

    Args:
        path: the `.edf` or `.bdf` file.
        max_s: longest recording accepted, in seconds (14 days by default).

    Yields:
        An :class:`EdfStream`, usable until the block ends.

    Raises:
        RecordError: the header is malformed or disagrees with the file, the recording lasts over
            `max_s`, no signal can be read as ECG, or `pyedflib` cannot open it.
    """
    import pyedflib

    path = Path(path)
    check_file(path)
    header = _header(path)
    channels, fs, scales = ecg_signals(header, path)
    check_length(header.n_records * header.samples[channels[0]], fs, path, max_s)
    mode = pyedflib.READ_ALL_ANNOTATIONS
    if header.plus and header.annotation_bytes() * _ANNOTATION_EXPANSION > max_decoded_bytes():
        logger.warning("%s: annotations not read: its annotation signals hold %d bytes, too many to read safely", path, header.annotation_bytes())
        mode = pyedflib.DO_NOT_READ_ANNOTATIONS
    with warnings.catch_warnings():  # labels in neither UTF-8 nor ASCII are read as Latin-1, as the EDF specification has them
        warnings.filterwarnings("ignore", "Could not decode string", UserWarning)
        try:
            reader = pyedflib.EdfReader(str(path), annotations_mode=mode)
        except Exception as exc:
            reason = str(exc).removeprefix(f"{path}: ")  # pyedflib starts its messages with the path
            raise RecordError(path, f"pyedflib cannot read the file ({type(exc).__name__}: {reason})") from None
        try:
            stream = EdfStream(path, reader, header, channels, fs, scales)
        except BaseException:
            reader.close()
            raise
    try:
        yield stream
    finally:
        reader.close()


class EdfStream:
    """A checked EDF/BDF file open for reading sample ranges of its ECG leads (from :func:`open_edf`).

    It has the attributes and `read` of a :class:`~ecgrhythm.records.WfdbStream`, so the classifier
    and the episode finder read it in pieces the same way.

    Attributes:
        header: the file (named in errors).
        fs: sampling rate of the leads in Hz.
        n_samples: samples per lead.
        sig_name: lead names (the signal labels).
        comments: empty (EDF has no comment lines).
        record_name: the file name without its extension.
        start_time: when the recording started (from the header), or None if `pyedflib` cannot say.
        annotations: the EDF+ annotations (:class:`~ecgrhythm.records.core.Annotation`), in file order.
    """

    comments: tuple[str, ...] = ()

    def __init__(self, path: Path, reader, header: EdfHeader, channels: list[int], fs: float, scales: list[float]):
        self.header, self.fs, self.record_name = path, fs, path.stem
        self._reader = reader
        self.n_samples = header.n_records * header.samples[channels[0]]
        self.sig_name = lead_names([header.labels[i] for i in channels], len(channels))
        # EDFlib hides the annotation signals of EDF+/BDF+ files from its signal numbers.
        visible = [i for i in range(len(header.labels)) if not (header.plus and header.is_annotation(i))]
        if list(reader.getSignalLabels()) != [header.labels[i] for i in visible]:
            raise RecordError(path, f"pyedflib reads the signals {reader.getSignalLabels()} where the header has {list(header.labels)}")
        self._channels = [visible.index(i) for i in channels]
        self._scales = scales
        self.start_time = _start_time(reader)
        self.annotations = _annotations(reader)

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs

    def read(self, start: int, stop: int, channels=None) -> np.ndarray:
        """Samples `start:stop` of `channels` (indices into `sig_name`; default all), float32 `(stop - start, n_channels)` in mV.

        Raises:
            RecordError: naming the file, if the range is outside the recording, or the samples cannot be read or are not finite.
        """
        channels = range(len(self.sig_name)) if channels is None else [int(c) for c in channels]
        start, stop = int(start), int(stop)
        source = f"{self.header} (samples {start} to {stop})"
        if not 0 <= start <= stop <= self.n_samples:
            raise RecordError(source, f"cannot read the signal: the range is outside the recording's {self.n_samples} samples")
        signal = np.empty((stop - start, len(channels)), dtype=np.float32)
        for column, k in enumerate(channels):
            try:
                values = self._reader.readSignal(self._channels[k], start, stop - start)
            except Exception as exc:
                raise RecordError(source, f"cannot read the signal ({type(exc).__name__}: {exc})") from None
            if len(values) != stop - start:
                raise RecordError(source, f"cannot read the signal: pyedflib gave {len(values)} samples of {stop - start}")
            with np.errstate(over="ignore"):
                signal[:, column] = values * self._scales[k]
        validate_piece(signal, self.fs, source=source)
        return signal


def _header(path: Path) -> EdfHeader:
    try:
        return read_edf_header(path)
    except OSError as exc:
        raise RecordError(path, f"cannot read the file: {exc.strerror or exc}") from None


def _start_time(reader) -> datetime.datetime | None:
    try:
        return reader.getStartdatetime()
    except (ValueError, OverflowError):  # a date EDFlib accepted but datetime cannot hold
        return None


def _annotations(reader) -> tuple[Annotation, ...]:
    onsets, durations, texts = reader.readAnnotations()
    return tuple(
        Annotation(float(onset), float(duration) if duration >= 0 else None, str(text)) for onset, duration, text in zip(onsets, durations, texts)
    )


for _suffix in EDF_SUFFIXES:
    register_reader(_suffix, read_edf, needs_fs=False)
