"""Long WFDB records in bounded memory: read in pieces, preprocessed and classified as a stream.

A WFDB record whose header declares more than an hour is never read whole
(:func:`~ecgrhythm.records.long_records.should_stream`), but opened with
:func:`~ecgrhythm.records.long_records.open_long_record`; :func:`classify_stream` gives the
probabilities that classifying the whole record would:

1. :func:`stream_input` runs the preprocessing pipeline of a whole record on pieces of `PIECE_S` seconds
   (:func:`~ecgrhythm.preprocessing.pipeline.model_input`): a first pass over the record gathers the
   normalisation's statistics, a second gives the model input piece by piece, with the leads the
   classifier takes (:meth:`~ecgrhythm.inference.classifier.RhythmClassifier.input_columns`).
2. :func:`stream_chunks` cuts that input into the chunks :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.predict_prepared`
   would cut the whole signal into (:func:`~ecgrhythm.inference.forward.chunk_bounds`), and
   :func:`classify_stream` classifies them `CHUNKS_PER_CALL` at a time through the classifier, without
   its calibration; the record's probabilities are the length-weighted mean over the chunks, calibrated
   once, as for a record read whole.

A model with a fixed input length (`PreprocessConfig.fixed_length_s`) takes the first that many seconds of
the normalised record, as a whole read gives them: the second pass stops once it has them.

A model with an RR channel (`PreprocessConfig.rr_channel`) gets it piece by piece, from the beats of each
piece on its own (:func:`~ecgrhythm.preprocessing.pipeline.with_rr_channel`). The beat detector adapts its
thresholds from the start of what it is given, so on noisy stretches its beats may differ from those of a
whole read for up to about 25 s around a piece boundary (on the cpsc2021 sample cut into 45 s pieces, 6 % of
the RR samples differed; giving the detector the margins too did no better, 7 %). Those samples are the only
ones that can differ from a whole read.

Memory: one piece with its margins (10 min of 2 leads at 200 Hz: under 1 MB
of samples, a few MB while filtering) and one call's chunks, whatever the length.
"""

from __future__ import annotations

import itertools

import numpy as np

from ecgrhythm.inference.forward import average_by_owner, chunk_bounds
from ecgrhythm.preprocessing.pipeline import first_samples, model_input
from ecgrhythm.preprocessing.quality import stream_head
from ecgrhythm.records import RecordError

__all__ = ["piece_samples", "stream_columns", "stream_input", "stream_chunks", "classify_stream", "reported", "PIECE_S", "CHUNKS_PER_CALL"]

PIECE_S = 600.0  # seconds of signal read at a time
PIECE_VALUES = 1 << 23  # at most this many samples (all leads read) in one piece, whatever the rate: 32 MB of float32


def piece_samples(piece_s: float, fs: float, n_leads: int = 1) -> int:
    """Samples per lead of a piece of about `piece_s` seconds, at most `PIECE_VALUES` over its `n_leads`, so a
    record of a very high rate is read in shorter pieces rather than in bigger ones (memory, not results)."""
    return max(1, min(round(piece_s * fs), PIECE_VALUES // max(1, n_leads)))


CHUNKS_PER_CALL = 64  # chunks of the largest bucket classified per call


def stream_input(classifier, stream, lead=None, *, piece_s: float = PIECE_S):
    """The model input of a record read in pieces (:func:`~ecgrhythm.preprocessing.pipeline.model_input`).

    Args:
        classifier: a loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier`.
        stream: an open :class:`~ecgrhythm.records.WfdbStream` (:func:`~ecgrhythm.records.long_records.open_long_record`).
        lead: lead name or 0-based index for a single-lead model (default: lead I, else the first, unless it is unusable and another is clean).
        piece_s: about how many seconds of the record are read at a time.

    Returns:
        `(n, pieces, lead)`: the input's length at the model's rate, an iterator of float32 arrays
        `(n_i, classifier.n_channels_)` that joined end to end are :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.prepare`'s
        input of the record read whole (within float rounding), and the lead used (`None` for a multi-lead model).

    Raises:
        RecordError: the record or `lead` cannot be used, or a piece cannot be read.
        ValueError: `lead` was given for a multi-lead model.
    """
    columns, name = stream_columns(classifier, stream, lead)
    piece_s = piece_samples(piece_s, stream.fs, len(columns)) / stream.fs
    n, pieces = model_input(
        lambda a, b: stream.read(a, b, columns), stream.n_samples, stream.fs, classifier.preprocess_, len(columns), piece_s=piece_s
    )
    return n, pieces, name


def stream_columns(classifier, stream, lead=None) -> tuple[list[int], str | None]:
    """:meth:`~ecgrhythm.inference.classifier.RhythmClassifier.input_columns` of a record read in pieces: the same
    leads as the record read whole gets, the choice by signal quality judged on its first minutes
    (:func:`~ecgrhythm.preprocessing.quality.stream_head`, read only when a single-lead model has leads to choose from).

    Raises:
        RecordError: the record lacks the model's leads, or `lead`.
    """
    head = stream_head(stream) if lead is None and classifier.n_leads_ == 1 and len(stream.sig_name) > 1 else None
    return classifier.input_columns(stream.sig_name, lead, source=stream.header, signal=head, fs=stream.fs)


def stream_chunks(pieces, n: int, max_length: int, *, fs: float, source="record"):
    """Cut the joined `pieces` of length `n` into the chunks of at most `max_length` samples that
    :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.predict_prepared` would cut them into (:func:`~ecgrhythm.inference.forward.chunk_bounds`).

    Yields:
        float32 arrays `(m_i, n_channels)`, in order.

    Raises:
        RecordError: the pieces, at `fs` Hz, do not give `n` samples (the record changed between two readings; `source` names it).
    """
    bounds = chunk_bounds(n, max_length)
    buffer, offset, k = None, 0, 0
    for piece in pieces:
        buffer = piece if buffer is None else np.concatenate([buffer, piece])
        while k < len(bounds) - 1 and bounds[k + 1] <= offset + len(buffer):
            yield np.ascontiguousarray(buffer[bounds[k] - offset : bounds[k + 1] - offset])
            k += 1
        buffer, offset = buffer[bounds[k] - offset :], int(bounds[k])
    if k != len(bounds) - 1:
        held = 0 if buffer is None else len(buffer)
        raise RecordError(source, f"the record gave {offset + held} samples at {fs:g} Hz on a second reading, not {n}")


def reported(pieces, fs: float, n_samples: int, progress):
    """`pieces` (arrays of `fs` Hz, `n_samples` in all) as they are, calling `progress(done_s, total_s)` as each one is taken.

    `progress` learns of a piece once its consumer asks for the next, so `done_s` counts the seconds worked through;
    `None` reports nothing. The library's progress hooks (for the commands' progress bars) are built on it.
    """
    if progress is None:
        yield from pieces
        return
    done = 0
    for piece in pieces:
        yield piece
        done += len(piece)
        progress(done / fs, n_samples / fs)


def classify_stream(classifier, stream, lead=None, *, piece_s: float = PIECE_S, progress=None) -> tuple[np.ndarray, str | None]:
    """Class probabilities of a record read in pieces, as classifying it whole would give them (see the module docstring).

    Args:
        classifier: a loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier`.
        stream: an open :class:`~ecgrhythm.records.WfdbStream` (:func:`~ecgrhythm.records.long_records.open_long_record`).
        lead: lead name or 0-based index for a single-lead model (default: lead I, else the first, unless it is unusable and another is clean).
        piece_s: about how many seconds of the record are read at a time.
        progress: `progress(done_s, total_s)`, called as each piece is classified (seconds of the record done, its
            length); the first pass, which gathers the normalisation's statistics, is not counted. `None` reports nothing.

    Returns:
        `(probabilities, lead)`: float array `(n_classes,)` and the lead used
        (`None` for a multi-lead model).

    Raises:
        RecordError: the record or `lead` cannot be used, or a piece cannot be read.
        NonFiniteOutputError: the network gave NaN or infinite probabilities.
    """
    n, pieces, name = stream_input(classifier, stream, lead, piece_s=piece_s)
    pieces = reported(pieces, classifier.preprocess_.fs, n, progress)
    fixed = classifier.preprocess_.fixed_samples
    if fixed is not None:
        return classifier.predict_prepared([first_samples(pieces, fixed, classifier.n_channels_)])[0], name
    chunks = stream_chunks(pieces, n, classifier.buckets_[-1], fs=classifier.preprocess_.fs, source=stream.header)
    probs, weights = [], []
    while group := list(itertools.islice(chunks, CHUNKS_PER_CALL)):
        probs.append(classifier.predict_prepared(group, calibrated=False))  # the calibration applies to the record's average
        weights += map(len, group)
    return classifier.calibrate(average_by_owner(np.concatenate(probs), np.zeros(len(weights), int), weights, 1))[0], name
