"""Classifying many record files in memory bounded by samples, keeping going past bad files.

Files are read and prepared in a background thread, in chunks of at most
`chunk_samples` signal values (samples x leads, at the model's rate) while the
network classifies the previous chunk, so at most about two chunks' worth of
samples are held however long the records are: a record longer than the
budget forms a chunk alone. A WFDB record declaring more than an hour is
never read whole: it forms a chunk alone and is classified in pieces
(:func:`ecgrhythm.inference.long_records.classify_stream`, the same probabilities), so
records up to 14 days are accepted. Any error of one record (unreadable, unusable, or
probabilities that are not finite) makes that record a failure, never a stop
or a label. A single-lead model takes one lead of a multi-lead record (`lead`,
by default lead I, else the first, unless it is unusable and another is clean); each prediction says which in `leads`.

Each record's rate and unit are checked from its signal as it is read (the first minutes of the lead it is
classified from, :func:`~ecgrhythm.preprocessing.plausibility.warn_if_implausible`): an implausible one gives an
:class:`~ecgrhythm.preprocessing.plausibility.ImplausibleRecordWarning` naming the file, and is still classified,
unless that warning is turned into an error, which makes the record a failure.

A record longer than the networks' training length can be answered from its AF episodes (`long_records`, a
:class:`~ecgrhythm.episodes.answers.LongRecordAnswer` from the stage above, whose docstring gives the rule): its
label follows its episodes, and the prediction gives its AF burden and CPSC 2021 class. The episodes are found on
the same read: the record as it was read whole (all its leads, the lead chosen per stretch:
:mod:`ecgrhythm.episodes.leads`), or the same open stream of a record read in pieces (which the episode finder goes
through once more). A record whose episodes cannot be found is a failure.

Example:
>>> clf = RhythmClassifier.load()                                  # doctest: +SKIP
>>> prediction, failures = classify_files(clf, ["A00001.hea"])     # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ecgrhythm.inference.classifier import Prediction
from ecgrhythm.inference.long_records import classify_stream, stream_columns
from ecgrhythm.inference.signals import answered_prediction
from ecgrhythm.preprocessing.leads import check_lead_argument
from ecgrhythm.preprocessing.plausibility import CHECK_S, ImplausibleRecordWarning, warn_if_implausible
from ecgrhythm.preprocessing.quality import HEAD_VALUES
from ecgrhythm.records import RecordError, read_record
from ecgrhythm.records.long_records import open_long_record, should_stream
from ecgrhythm.utils.validation import check_positive_int

__all__ = ["iter_classify_files", "classify_files", "check_stream_start", "CHUNK_SAMPLES"]

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = 2_000_000  # signal values per chunk: 8 MB of float32, about 400 CinC 2017 records at 150 Hz


def iter_classify_files(
    classifier, paths, *, fs: float | None = None, lead=None, chunk_samples: int = CHUNK_SAMPLES, progress=None, long_records=None
):
    """Classify files chunk by chunk, keeping going past those that cannot be read or classified.

    A chunk ends before the record that would take its signal values over
    `chunk_samples`; a record over the budget is a chunk alone. The chunk
    being classified and the next one, read in a background thread, are all
    that is held (about `2 * chunk_samples` values, plus the record that did
    not fit).

    Args:
        classifier: a loaded :class:`~ecgrhythm.inference.classifier.RhythmClassifier`
            (of a model folder or an `.onnx` file).
        paths: record files (see :func:`ecgrhythm.records.find_records` for folders).
        fs: sampling rate (Hz) of files without a header.
        lead: lead name or 0-based index a single-lead model takes from
            multi-lead records (default: lead I, else the first lead, unless it is unusable and another is clean).
        chunk_samples: budget of signal values (samples x leads at the model's rate) per chunk.
        progress: `progress(done_s, total_s)`, called as a long record read in pieces is classified (seconds of
            it done, its length; see :func:`~ecgrhythm.inference.long_records.classify_stream`); records read whole
            are done when their chunk is yielded, and as the episodes of a record `long_records` answers are found.
            `None` reports nothing.
        long_records: answers records longer than its `after_s` from their episodes (a
            :class:`~ecgrhythm.episodes.answers.LongRecordAnswer`: `applies(duration_s)`, and
            `long_records(source, probabilities, lead=, progress=)` giving the label, `af_burden` and `record_class`);
            `None`: every record's label is the most probable class of its probabilities.

    Yields:
        `(prediction, failures)` per chunk, in input order: a
        :class:`~ecgrhythm.inference.classifier.Prediction` for the chunk's usable
        records and `(path, reason)` for the others.

    Raises:
        NotFittedError: the classifier has no model.
        ValueError: `chunk_samples` is not a positive integer, or `lead` is given for a multi-lead model.
    """
    classifier.predict_prepared([])  # raises NotFittedError before any file is read
    check_positive_int("chunk_samples", chunk_samples)
    check_lead_argument(lead, classifier.n_leads_)
    stop = threading.Event()  # set when the caller stops early (Ctrl-C, a write error)
    chunks = _chunks(_read_records(classifier, paths, fs, lead, stop, long_records), chunk_samples)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecgrhythm-reader") as pool:
        try:
            pending = pool.submit(next, chunks, None)
            while (chunk := pending.result()) is not None:
                pending = pool.submit(next, chunks, None)  # read the next chunk while this one is classified
                read, failures = chunk
                del chunk
                prediction, failures = _classify_chunk(classifier, read, failures, fs, lead, progress, long_records)
                del read  # drop the signals before waiting for the next chunk
                yield prediction, failures
        finally:
            stop.set()  # the reader drops the rest of its chunk instead of finishing it


def classify_files(
    classifier, paths, *, fs: float | None = None, lead=None, chunk_samples: int = CHUNK_SAMPLES, on_failure=None, progress=None, long_records=None
):
    """Classify files, keeping going past those that cannot be read or classified.

    Args: as :func:`iter_classify_files`, and `on_failure(path, reason)`, called for each failed file as soon as its
    chunk is done (to report failures while the rest goes on).

    Returns:
        `(prediction, failures)`: predictions for the usable records, in
        input order (probabilities `(n_records, n_classes)`), and a list of
        `(path, reason)` for the others.
    """
    names, labels, probs, leads, burdens, classes, failures = [], [], [], [], [], [], []
    chunks = iter_classify_files(classifier, paths, fs=fs, lead=lead, chunk_samples=chunk_samples, progress=progress, long_records=long_records)
    for prediction, bad in chunks:
        names += prediction.names
        labels += prediction.labels
        probs.append(prediction.probabilities)
        leads += prediction.leads
        burdens += prediction.af_burden
        classes += prediction.record_class
        failures += bad
        if on_failure is not None:
            for path, reason in bad:
                on_failure(path, reason)
    probs = np.concatenate(probs) if probs else np.zeros((0, len(classifier.classes_)))
    return Prediction(names, labels, probs, list(classifier.classes_), leads, burdens, classes), failures


def check_stream_start(classifier, stream, lead, source) -> None:
    """:func:`~ecgrhythm.preprocessing.plausibility.warn_if_implausible` on the first `CHECK_S` seconds of the lead
    `classifier` takes from a record read in pieces (the rest is not read for it).

    Raises:
        RecordError: the record lacks the model's leads, or `lead`.
    """
    columns, _ = stream_columns(classifier, stream, lead)
    start = stream.read(0, min(stream.n_samples, int(CHECK_S * stream.fs), HEAD_VALUES), columns[:1])
    warn_if_implausible(start, stream.fs, source)


class _Long:
    """A long WFDB record, classified in pieces when its turn comes (it holds no samples until then)."""

    size = 0

    def __init__(self, path):
        self.path = path


def _read_records(classifier, paths, fs, lead, stop, long_records=None):
    """Yield `(path, (name, lead, signal, kept))` for each usable record and `(path, reason)` for the others; stops once `stop` is set.

    `kept` is the record as read, all its leads (an :class:`~ecgrhythm.records.EcgRecord`, whose episodes choose
    their lead per stretch), when `long_records` answers a record of its length, else `None`. A long WFDB record
    is not read here: its `signal` is a :class:`_Long` (and its lead not known yet).
    """
    for path in paths:
        if stop.is_set():
            return
        try:
            if should_stream(path, fs):
                yield str(path), (Path(path).stem, None, _Long(path), None)
                continue
            record = read_record(path, fs=fs)
            one, name = classifier.choose_lead(record, lead)
            warn_if_implausible(one.signal, one.fs, path)
            kept = record if long_records is not None and long_records.applies(one.duration_s) else None
            yield str(path), (record.record_name, name, classifier.prepare(one), kept)
        except RecordError as exc:
            yield str(path), exc.reason
        except ImplausibleRecordWarning as exc:  # turned into an error (`warnings.simplefilter("error", ...)`)
            yield str(path), exc.reason
        except Exception as exc:  # a hostile file must fail alone, never stop the run
            yield str(path), f"unexpected error while reading ({type(exc).__name__}: {exc})"


def _chunks(outcomes, budget: int):
    """Group `_read_records` outcomes into `([(path, name, lead, signal, kept)], [(path, reason)])` chunks of at most `budget` values.

    A record that would take a non-empty chunk over the budget starts the
    next chunk; a full chunk is handed over before the next record is read;
    a long record is a chunk alone; failures hold no samples and join the chunk being built.
    A record's values are those of its signal and of the record kept for its episodes.
    """
    read, failures, held = [], [], 0
    for path, outcome in outcomes:
        if isinstance(outcome, str):
            failures.append((path, outcome))
            continue
        name, lead, signal, kept = outcome
        long = isinstance(signal, _Long)
        size = signal.size + (0 if kept is None else kept.signal.size)
        if read and (long or held + size > budget):
            yield read, failures
            read, failures, held = [], [], 0
        read.append((path, name, lead, signal, kept))
        held += size
        if long or held >= budget:  # full: hand it over before reading on
            yield read, failures
            read, failures, held = [], [], 0
    if read or failures:
        yield read, failures


def _classify_chunk(classifier, read, failures, fs, lead, progress=None, long_records=None):
    """Predict a chunk at once; if that fails, record by record so one bad record fails alone.

    A classifier's `predict_prepared` raises on probabilities that are not finite
    (a broken model), so such records become failures rather than labels. A
    long record (a chunk alone) is read and classified in pieces here. The records
    `long_records` answers then get their answer from their episodes.
    """
    if len(read) == 1 and isinstance(read[0][3], _Long):
        return _classify_long(classifier, read[0], failures, fs, lead, progress, long_records)
    try:
        probs = classifier.predict_prepared([item[3] for item in read])
    except Exception as exc:
        logger.warning("classifying a chunk of %d records failed (%s: %s); retrying record by record", len(read), type(exc).__name__, exc)
        kept, rows = [], []
        for item in read:
            try:
                rows.append(classifier.predict_prepared([item[3]])[0])
                kept.append(item)
            except Exception as exc_one:
                failures = failures + [(item[0], f"cannot be classified ({type(exc_one).__name__}: {exc_one})")]
        read, probs = kept, np.asarray(rows).reshape(len(rows), len(classifier.classes_))
    rows, answers = [], []
    for i, item in enumerate(read):
        try:
            answers.append(None if item[4] is None else long_records(item[4], probs[i], lead=lead, progress=progress))
            rows.append(i)
        except Exception as exc:
            failures = failures + [(item[0], _reason(exc, "its episodes cannot be found"))]
    return _prediction(classifier, [read[i] for i in rows], probs[np.asarray(rows, dtype=int)], answers), failures


def _classify_long(classifier, item, failures, fs, lead, progress, long_records):
    """A long record read in pieces: its probabilities, then, when `long_records` answers it, its episodes from the same open stream."""
    path, name = item[0], item[1]
    try:
        with open_long_record(item[3].path, fs) as stream:
            check_stream_start(classifier, stream, lead, path)
            answered = long_records is not None and long_records.applies(stream.n_samples / stream.fs)
            row, chosen = classify_stream(classifier, stream, lead, progress=_share(progress, 0.0, 0.5 if answered else 1.0))
            answer = long_records(stream, row, lead=lead, progress=_share(progress, 0.5, 0.5)) if answered else None
    except Exception as exc:
        empty = np.zeros((0, len(classifier.classes_)))
        return _prediction(classifier, [], empty, []), failures + [(path, _reason(exc, "cannot be classified"))]
    return _prediction(classifier, [(path, name, chosen)], row[None], [answer]), failures


def _prediction(classifier, read, probs, answers) -> Prediction:
    """The :class:`Prediction` of the records `read` (`(path, name, lead, ...)`), their `answers` applied
    (:func:`~ecgrhythm.inference.signals.answered_prediction`, the one place that does it for every route)."""
    return answered_prediction(classifier, [item[1] for item in read], [item[2] for item in read], probs, answers)


def _reason(exc: Exception, what: str) -> str:
    """Why a record failed: a :class:`RecordError`'s or a warning-turned-error's own reason, else `what` and the error."""
    if isinstance(exc, RecordError | ImplausibleRecordWarning):
        return exc.reason
    return f"{what} ({type(exc).__name__}: {exc})"


def _share(progress, start: float, share: float):
    """`progress` told of one of two passes over a record: `done_s` mapped to `start + share * done_s / total_s` of it."""
    if progress is None:
        return None
    return lambda done_s, total_s: progress((start + share * done_s / total_s) * total_s, total_s)
