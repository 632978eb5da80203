"""Long WFDB records in bounded memory: read in pieces, preprocessed and classified as a stream.

A WFDB record whose header declares more than `STREAM_ABOVE_S` (1 h) is never
read whole (:func:`should_stream`); such records may last up to 14 days
(:data:`~ecgrhythm.records.MAX_STREAM_DURATION_S`), while other records and
formats keep the 24 h limit of a whole read. :func:`classify_stream` gives the
probabilities that classifying the whole record would, in two passes over it:

1. The lead(s) the model takes are read `PIECE_S` seconds at a time, with
   `MARGIN_S` seconds either side, resampled and filtered as
   :func:`~ecgrhythm.preprocessing.pipeline.preprocess` would, and the piece's middle
   kept (:func:`model_rate_pieces`). Pieces start on multiples of the rate
   ratio's denominator, so resampling them gives exactly the samples of
   resampling the whole record; a zero-phase filter's edge effect dies out
   within the margin. This pass gathers the normalisation statistics
   (mean and variance merged piece by piece; for `robust`, percentiles of at
   most `ROBUST_VALUES` evenly spaced values per lead).
2. The same pieces, normalised with those statistics, are cut into the chunks
   :func:`~ecgrhythm.inference.forward.predict_signals` would cut the whole signal into
   (:func:`~ecgrhythm.inference.forward.chunk_bounds`) and classified
   `CHUNKS_PER_CALL` at a time; the record's probabilities are the
   length-weighted mean over the chunks (:func:`~ecgrhythm.inference.forward.average_by_owner`),
   as for a record read whole.

A model with a fixed input length (`PreprocessConfig.fixed_length_s`) takes
the first that many seconds of the normalised record, as a whole read gives
them: the second pass stops once it has them.

A model with an RR channel (`PreprocessConfig.rr_channel`) gets it piece by
piece in the second pass, from the beats of each piece on its own
(:func:`~ecgrhythm.preprocessing.pipeline.with_rr_channel`). The beat detector adapts
its thresholds from the start of what it is given, so on noisy stretches its
beats may differ from those of a whole read for up to about 25 s around a piece
boundary (on the cpsc2021 sample cut into 45 s pieces, 6 % of the RR samples
differed; giving the detector the margins too did no better, 7 %). Those
samples are the only ones that can differ from a whole read.

Memory: one piece with its margins (10 min of 2 leads at 200 Hz: under 1 MB
of samples, a few MB while filtering) and one call's chunks, whatever the length.
"""

from __future__ import annotations

import contextlib
import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from ecgrhythm.inference.forward import average_by_owner, chunk_bounds
from ecgrhythm.preprocessing.pipeline import (
    apply_normalization,
    bandpass,
    chosen_lead,
    crop_or_pad,
    model_columns,
    normalization,
    resample,
    with_rr_channel,
)
from ecgrhythm.records import RecordError, header_length, header_of, open_wfdb, reads_in_pieces

__all__ = ["should_stream", "open_long_record", "stream_columns", "model_rate_pieces", "classify_stream", "STREAM_ABOVE_S", "PIECE_S", "MARGIN_S"]

STREAM_ABOVE_S = 3600.0  # WFDB records declared longer than this are read in pieces
PIECE_S = 600.0  # seconds of signal read at a time
MARGIN_S = 20.0  # seconds read either side of a piece, so that resampling and filtering match a whole read
ROBUST_VALUES = 10_000_000  # values per lead kept for the percentiles of a robust normalisation
CHUNKS_PER_CALL = 64  # chunks of the largest bucket classified per call


def should_stream(path, fs: float | None = None) -> bool:
    """Whether `path` is a WFDB record (a `.hea`, or a signal file with its header) declaring more than `STREAM_ABOVE_S`.

    A header that cannot be parsed is left to :func:`~ecgrhythm.records.read_record` to report.
    """
    header = header_of(path)
    if header is None:
        return False
    try:
        sig_len, rate = header_length(header, fs)
    except RecordError:
        return False
    long = sig_len is not None and rate is not None and rate > 0 and sig_len / rate > STREAM_ABOVE_S
    return long and reads_in_pieces(header)  # format 8 is read whole (up to 24 h)


@contextlib.contextmanager
def open_long_record(path, fs: float | None = None):
    """:func:`~ecgrhythm.records.open_wfdb` for a record file (`.hea`, or a signal file with its header); errors name `path`.

    Raises:
        RecordError: `path` is not a WFDB record, or its header or signal files fail the checks.
    """
    path = Path(path)
    header = header_of(path)
    if header is None:
        raise RecordError(path, "only WFDB records (a .hea header with its signal files) are read in pieces")
    try:
        with open_wfdb(header, fs=fs) as stream:
            yield stream
    except RecordError as exc:
        if header == path or Path(exc.path) == path:
            raise
        raise RecordError(path, f"read through its header {header.name}: {exc.reason}") from None


def stream_columns(classifier, stream, lead=None) -> tuple[list[int], str | None]:
    """The columns of `stream` the classifier takes, and the lead's name for a single-lead model (see :meth:`RhythmClassifier.choose_lead`).

    Raises:
        RecordError: `lead` is not in the record, or the record lacks the leads the model needs.
        ValueError: `lead` was given for a multi-lead model.
    """
    config = classifier.preprocess_
    index = chosen_lead(stream.sig_name, lead, classifier.n_leads_, model_leads=config.leads, source=stream.header)
    if index is not None:
        return [index], stream.sig_name[index]
    columns = model_columns(stream.sig_name, config.leads, stream.header)
    columns = list(range(len(stream.sig_name))) if columns is None else columns
    if len(columns) != classifier.n_leads_:
        raise RecordError(
            stream.header,
            f"the record has {len(columns)} leads ({', '.join(stream.sig_name)}) "
            f"but the model takes {classifier.n_leads_}; classify records with {classifier.n_leads_} lead(s), "
            "or use a model trained on these leads",
        )
    return columns, None


def model_rate_pieces(stream, columns, config, piece_s: float = PIECE_S):
    """The record's `columns` resampled to `config.fs` and filtered, piece by piece, before normalisation.

    Args:
        stream: an open :class:`~ecgrhythm.records.WfdbStream`.
        columns: column indices to read.
        config: the model's :class:`~ecgrhythm.config.PreprocessConfig`.
        piece_s: about how many seconds of the record each piece covers.

    Yields:
        float32 arrays `(n_i, len(columns))` at `config.fs`; joined end to end
        they are the signal :func:`~ecgrhythm.preprocessing.pipeline.preprocess` gives
        before normalising (resampling exactly, filtering within float rounding).
    """
    ratio = Fraction(config.fs / stream.fs).limit_denominator(1000) if config.fs != stream.fs else Fraction(1)
    up, down = ratio.numerator, ratio.denominator
    step = down * max(1, round(piece_s * stream.fs / down))
    margin = down * math.ceil(MARGIN_S * stream.fs / down)
    n = stream.n_samples
    for a in range(0, n, step):
        b = min(n, a + step)
        lo, hi = max(0, a - margin), min(n, b + margin)
        x = resample(stream.read(lo, hi, columns), stream.fs, config.fs)
        if config.bandpass is not None:
            x = bandpass(x, config.fs, *config.bandpass)
        yield x[(a - lo) * up // down : (b - lo) * up // down if b < n else len(x)]


def _input_pieces(stream, columns, config, piece_s: float, center, scale):
    """The second pass: :func:`model_rate_pieces` normalised with the first pass's statistics, with the RR channel if the model has one."""
    for x in model_rate_pieces(stream, columns, config, piece_s):
        yield with_rr_channel(x if center is None else apply_normalization(x, center, scale), x, config)


def _first_samples(stream, columns, config, piece_s: float, center, scale) -> np.ndarray:
    """The first `config.fixed_samples` of the normalised record, zero-padded at the end, as a whole read crops them."""
    held, parts = 0, []
    for piece in _input_pieces(stream, columns, config, piece_s, center, scale):
        parts.append(piece)
        held += len(piece)
        if held >= config.fixed_samples:
            break
    joined = np.concatenate(parts) if parts else np.zeros((0, config.n_channels(len(columns))), np.float32)
    return crop_or_pad(joined, config.fixed_samples, config.fixed_samples)


def _normalization(pieces, method: str, n_leads: int):
    """`(n_samples, center, scale)` of the joined `pieces` for :func:`~ecgrhythm.preprocessing.pipeline.normalization` (`None`s for `"none"`)."""
    n, mean, m2 = 0, np.zeros(n_leads), np.zeros(n_leads)
    lo, hi = np.full(n_leads, np.inf), np.full(n_leads, -np.inf)
    kept, stride = [], 1
    for x in pieces:
        x = x.astype(np.float64)
        k = len(x)
        if k == 0:
            continue
        if method == "robust":  # the values at multiples of `stride`: evenly spread over the record
            kept.append(x[(-n) % stride :: stride])
            if sum(map(len, kept)) > ROBUST_VALUES:
                kept, stride = [np.concatenate(kept)[::2]], 2 * stride
        lo, hi = np.minimum(lo, x.min(axis=0)), np.maximum(hi, x.max(axis=0))
        piece_mean = x.mean(axis=0)
        delta = piece_mean - mean
        m2 += ((x - piece_mean) ** 2).sum(axis=0) + delta**2 * n * k / (n + k)  # Chan et al.'s merge of two variances
        mean += delta * k / (n + k)
        n += k
    if method == "none" or n == 0:
        return n, None, None
    quartiles = np.percentile(np.concatenate(kept), [25, 50, 75], axis=0) if method == "robust" else None
    center, scale = normalization(method, lo, hi, mean=mean, std=np.sqrt(m2 / n), quartiles=quartiles)
    return n, center, scale


def classify_stream(classifier, stream, lead=None, *, piece_s: float = PIECE_S) -> tuple[np.ndarray, str | None]:
    """Class probabilities of a record read in pieces, as classifying it whole would give them (see the module docstring).

    Args:
        classifier: a loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier` (or its ONNX variant).
        stream: an open :class:`~ecgrhythm.records.WfdbStream` (:func:`open_long_record`).
        lead: lead name or 0-based index for a single-lead model (default: lead I, else the first).
        piece_s: about how many seconds of the record are read at a time.

    Returns:
        `(probabilities, lead)`: float array `(n_classes,)` and the lead used
        (`None` for a multi-lead model).

    Raises:
        RecordError: the record or `lead` cannot be used, or a piece cannot be read.
        NonFiniteOutputError: the network gave NaN or infinite probabilities.
    """
    columns, name = stream_columns(classifier, stream, lead)
    config = classifier.preprocess_
    n, center, scale = _normalization(model_rate_pieces(stream, columns, config, piece_s), config.normalization, len(columns))
    if config.fixed_samples is not None:
        return classifier.predict_proba([_first_samples(stream, columns, config, piece_s, center, scale)])[0], name
    bounds = chunk_bounds(n, classifier.buckets_[-1])
    probs, weights, chunks = [], [], []

    def flush():
        probs.append(classifier.predict_proba(chunks, calibrated=False))  # the calibration applies to the record's average
        weights.extend(map(len, chunks))
        chunks.clear()

    buffer, offset, k = np.zeros((0, config.n_channels(len(columns))), np.float32), 0, 0
    for piece in _input_pieces(stream, columns, config, piece_s, center, scale):
        buffer = np.concatenate([buffer, piece])
        while k < len(bounds) - 1 and bounds[k + 1] <= offset + len(buffer):
            chunks.append(np.ascontiguousarray(buffer[bounds[k] - offset : bounds[k + 1] - offset]))
            k += 1
            if len(chunks) >= CHUNKS_PER_CALL:
                flush()
        buffer, offset = buffer[bounds[k] - offset :], int(bounds[k])
    if chunks:
        flush()
    if k != len(bounds) - 1:
        raise RecordError(stream.header, f"the record gave {offset + len(buffer)} samples at {config.fs:g} Hz on a second reading, not {n}")
    return classifier.calibrate(average_by_owner(np.concatenate(probs), np.zeros(len(weights), int), weights, 1))[0], name
