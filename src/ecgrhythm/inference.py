"""Classifying records with a trained model, in bounded memory, from Python.

Records are read, preprocessed and classified in chunks (256 records by
default): a background thread reads the next chunk while the network runs on
the current one, and only one or two chunks of signals are ever held. Batches
have a fixed number of rows and one of a few padded lengths, so JAX compiles
the network once per length.

Example:
>>> clf = RhythmClassifier.load()                      # the shipped model
>>> result = clf.predict_records(["A00001.hea"])       # doctest: +SKIP
>>> result.labels, result.probabilities.shape          # doctest: +SKIP
(['N'], (1, 4))
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .batching import bucket_for, bucket_lengths, inference_batches
from .preprocessing import choose_lead, preprocess
from .records import EcgRecord, RecordError, read_record, validate_signal

__all__ = [
    "RhythmClassifier",
    "Prediction",
    "predict_signals",
    "split_long",
    "average_by_owner",
    "default_model_dir",
    "NotFittedError",
    "BATCH_SIZE",
    "CHUNK_SIZE",
    "NO_LABEL",
]

logger = logging.getLogger(__name__)

BATCH_SIZE = 16
CHUNK_SIZE = 256
MIN_BUCKET_SIGNALS = 32
NO_LABEL = "-"  # the label of a multi-label prediction with no class over its threshold


class NotFittedError(RuntimeError):
    """The classifier has no model yet: call `load` (or train one) first."""


def default_model_dir() -> Path:
    """The shipped model: `models/cinc2017` in the checkout."""
    return Path(__file__).resolve().parents[2] / "models" / "cinc2017"


def split_long(signal: np.ndarray, max_length: int) -> list[np.ndarray]:
    """Split `(n, leads)` into the fewest near-equal chunks of at most `max_length` samples."""
    n = len(signal)
    if n <= max_length:
        return [signal]
    k = math.ceil(n / max_length)
    bounds = np.linspace(0, n, k + 1).astype(int)
    return [signal[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _batch_buckets(lengths, buckets, min_count: int = MIN_BUCKET_SIGNALS) -> tuple[int, ...]:
    """The padded lengths to use for signals of `lengths` (each at most `buckets[-1]`).

    A bucket holding fewer than `min_count` signals is merged into the next
    larger bucket in use: its few signals ride in that bucket's batches, which
    costs less than compiling the network for one more shape (seconds on a
    CPU). Padding never changes a prediction, so this only trades time.
    """
    counts = collections.Counter(bucket_for(n, buckets) for n in lengths)
    used = sorted(counts)
    if not used:
        return tuple(buckets)
    return tuple(b for b in used[:-1] if counts[b] >= min_count) + (used[-1],)


def predict_signals(model, signals, buckets, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Class probabilities of preprocessed signals of any length.

    Signals longer than the largest bucket are cut into chunks that fit; a
    record's probabilities are the length-weighted mean over its chunks, so
    memory stays bounded by one batch of the largest bucket.

    Args:
        model: network from `build_lstm_classifier`.
        signals: list of float32 arrays `(n_i, n_leads)` at the model's rate.
        buckets: padded lengths (multiples of the model's downsampling factor).
        batch_size: rows per compiled batch.

    Returns:
        float array `(len(signals), n_classes)`.
    """
    chunks, owners, weights = [], [], []
    for i, s in enumerate(signals):
        for c in split_long(s, buckets[-1]):
            chunks.append(c)
            owners.append(i)
            weights.append(len(c))
    n_classes = model.output.shape[-1]
    chunk_probs = np.zeros((len(chunks), n_classes), dtype=np.float64)
    padded = _batch_buckets(weights, buckets)
    for idx, x, mask in inference_batches(chunks, padded, batch_size):
        out = np.asarray(model.predict_on_batch({"signal": x, "mask": mask}))
        chunk_probs[idx] = out[: len(idx)]
    return average_by_owner(chunk_probs, owners, weights, len(signals))


def average_by_owner(values, owners, weights, n_owners: int) -> np.ndarray:
    """Weighted mean of the rows of `values` per owner: row `i` belongs to record `owners[i]`.

    Returns:
        float array `(n_owners, values.shape[1])`; zeros for an owner without rows.
    """
    owners = np.asarray(owners, dtype=int)
    weights = np.asarray(weights, dtype=np.float64)
    out = np.zeros((n_owners, np.shape(values)[1]))
    np.add.at(out, owners, np.asarray(values) * weights[:, None])
    out /= np.maximum(np.bincount(owners, weights=weights, minlength=n_owners), 1.0)[:, None]
    return out


def _load_model_dir_fast(path):
    """:func:`ecgrhythm.saving.load_model_dir`, without drawing initial weights that loading replaces.

    Keras draws random initial values for every weight when it builds a
    network, and on JAX each weight shape compiles its own XLA program: many
    seconds per model on a small CPU. Building inside a `StatelessScope` defers
    that; the loaded values are then assigned, and only variables the weights
    file does not hold (random seed states) are initialised as usual. Falls
    back to the plain loader if this Keras lacks the internals used.
    """
    import keras

    from .saving import load_model_dir

    try:
        from keras.src.backend.common import global_state
        from keras.src.backend.common.stateless_scope import in_stateless_scope
        from keras.src.backend.common.variables import initialize_all_variables
    except ImportError:  # pragma: no cover - other Keras layouts
        return load_model_dir(path)
    if in_stateless_scope():  # the caller's scope would capture the loaded values
        return load_model_dir(path)
    key = "uninitialized_variables"
    before = len(global_state.get_global_attribute(key) or [])
    try:
        with keras.StatelessScope(initialize_variables=False) as scope:
            model, config = load_model_dir(path)
    except BaseException:
        pending = global_state.get_global_attribute(key) or []
        global_state.set_global_attribute(key, pending[:before])  # forget the half-built network
        raise
    pending = global_state.get_global_attribute(key) or []
    loaded = [(v, scope.get_current_value(v)) for v in pending[before:]]
    global_state.set_global_attribute(key, pending[:before] + [v for v, value in loaded if value is None])
    for variable, value in loaded:
        if value is not None:
            variable.assign(value)
    initialize_all_variables()
    return model, config


@dataclasses.dataclass
class Prediction:
    """Predictions for several records.

    Attributes:
        names: record names.
        labels: predicted label of each record.
        probabilities: array `(n_records, n_classes)`.
        classes: class names, the columns of `probabilities`.
    """

    names: list[str]
    labels: list[str]
    probabilities: np.ndarray
    classes: list[str]


class RhythmClassifier:
    """Load a trained model folder and classify records or arrays.

    Args:
        model_dir: model folder (default: the shipped CinC 2017 model).
        batch_size: rows of each compiled batch.
        chunk_size: records read and held at a time by `classify_files`.

    Attributes (after `fit`/`load`):
        model_: the Keras network.
        classes_: class names, the columns of every probability array.
        preprocess_: the model's :class:`~ecgrhythm.config.PreprocessConfig`.
        architecture_: its :class:`~ecgrhythm.config.ModelConfig`.
        n_leads_: leads the model takes.
        metadata_: facts about its training (`config.json` metadata).
        thresholds_: per-class decision thresholds (multi-label models; 0.5 otherwise).
        buckets_: padded lengths (samples) of inference batches.
    """

    def __init__(self, model_dir=None, *, batch_size: int = BATCH_SIZE, chunk_size: int = CHUNK_SIZE):
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.chunk_size = chunk_size

    @classmethod
    def load(cls, model_dir=None, **kwargs) -> "RhythmClassifier":
        """Create a classifier and load its model folder."""
        return cls(model_dir, **kwargs).fit()

    def fit(self) -> "RhythmClassifier":
        """Load the model folder (training is `ecgrhythm.training.train`). Returns self.

        Raises:
            ModelFolderError: the folder is missing, incomplete, altered or cannot be loaded.
            ValueError: `batch_size` or `chunk_size` is not a positive integer.
        """
        from .saving import ModelFolderError

        for name in ("batch_size", "chunk_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Invalid argument `{name}`: expected a positive integer. Received: {name}={value!r}")
        path = Path(self.model_dir) if self.model_dir is not None else default_model_dir()
        if not path.is_dir():
            raise ModelFolderError(f"{path}: model folder not found; pass the folder written by 'ecgrhythm train' (--model DIR)")
        try:
            model, config = _load_model_dir_fast(path)
        except ModelFolderError:
            raise
        except Exception as exc:
            raise ModelFolderError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None
        self.model_ = model
        self.classes_ = list(config["classes"])
        self.preprocess_ = config["preprocess"]
        self.architecture_ = config["model"]
        self.n_leads_ = int(config["n_leads"])
        self.thresholds_ = np.asarray(config.get("thresholds") or [0.5] * len(self.classes_), dtype=float)
        self.metadata_ = config.get("metadata", {})
        self.buckets_ = bucket_lengths(self.preprocess_.fs, self.architecture_.downsampling)
        return self

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("This RhythmClassifier has no model yet. Call 'load' or 'fit' first.")

    def prepare(self, record: EcgRecord, lead=None) -> np.ndarray:
        """Model input of one record (see :func:`ecgrhythm.preprocessing.preprocess`).

        A single-lead model takes one lead of a multi-lead record: `lead`
        (name or 0-based index), by default lead I, else the first lead
        (:meth:`choose_lead` says which).

        Returns:
            float32 array `(n_samples_at_model_fs, n_leads_)`.

        Raises:
            RecordError: the record lacks the leads the model needs, or `lead`.
        """
        self._check_fitted()
        record, _ = self.choose_lead(record, lead)
        signal = preprocess(record, self.preprocess_)
        if signal.shape[1] != self.n_leads_:
            raise RecordError(
                record.record_name,
                f"the record has {signal.shape[1]} leads ({', '.join(record.sig_name)}) but the model takes {self.n_leads_}; "
                f"classify records with {self.n_leads_} lead(s), or use a model trained on these leads",
            )
        return signal

    def choose_lead(self, record: EcgRecord, lead=None) -> tuple[EcgRecord, str | None]:
        """The record this model takes and the name of its lead (`None` for a multi-lead model).

        See :func:`ecgrhythm.preprocessing.choose_lead`.
        """
        self._check_fitted()
        return choose_lead(record, lead, self.n_leads_, model_leads=self.preprocess_.leads)

    def predict_proba(self, signals) -> np.ndarray:
        """Probabilities of already preprocessed signals (see :meth:`prepare`).

        Args:
            signals: list of float32 arrays `(n_i, n_leads_)` at the model's rate.

        Returns:
            float array `(len(signals), n_classes)`; rows sum to 1 for a softmax model.
        """
        self._check_fitted()
        signals = list(signals)
        for i, s in enumerate(signals):
            if not isinstance(s, np.ndarray) or s.ndim != 2 or s.shape[1] != self.n_leads_ or len(s) == 0:
                raise ValueError(
                    f"Invalid argument `signals`: expected arrays of shape (n_samples, {self.n_leads_}) from `prepare`. "
                    f"Received: signals[{i}] with shape {getattr(s, 'shape', None)}"
                )
        if not signals:
            return np.zeros((0, len(self.classes_)))
        return predict_signals(self.model_, signals, self.buckets_, self.batch_size)

    def labels_from_proba(self, probabilities: np.ndarray) -> list[str]:
        """The label of each row: the most probable class, or for a multi-label
        model every class at or over its threshold, separated by a space
        (`NO_LABEL` when none is)."""
        if not self.architecture_.multilabel:
            return [self.classes_[i] for i in np.argmax(probabilities, axis=1)]
        present = np.asarray(probabilities) >= self.thresholds_[None, :]
        return [" ".join(c for c, p in zip(self.classes_, row) if p) or NO_LABEL for row in present]

    def predict_records(self, records) -> Prediction:
        """Classify records given as `EcgRecord` objects or file paths (read with their headers).

        Raises:
            RecordError: a record cannot be read or used (see `classify_files` to keep going).
        """
        self._check_fitted()
        records = [r if isinstance(r, EcgRecord) else read_record(r) for r in records]
        probs = self.predict_proba([self.prepare(r) for r in records])
        return Prediction([r.record_name for r in records], self.labels_from_proba(probs), probs, self.classes_)

    def predict_arrays(self, arrays, fs: float, names=None) -> Prediction:
        """Classify arrays `(n_samples,)` or `(n_samples, n_leads)` in mV sampled at `fs` Hz."""
        self._check_fitted()
        records = []
        for i, a in enumerate(arrays):
            name = names[i] if names is not None else f"array{i}"
            signal = np.asarray(a, dtype=np.float32)
            signal = signal[:, None] if signal.ndim == 1 else signal
            validate_signal(signal, fs, source=name)
            records.append(EcgRecord(signal, float(fs), tuple(f"lead{j + 1}" for j in range(signal.shape[1])), name))
        return self.predict_records(records)

    def iter_classify_files(self, paths, *, fs: float | None = None):
        """Classify files chunk by chunk, keeping going past those that cannot be read.

        At most two chunks of `chunk_size` records are in memory at a time:
        the one being classified and the next, read in a background thread.
        Any error of one record (whatever its kind) makes that record a
        failure; it never stops the run.

        Args:
            paths: record files (see :func:`ecgrhythm.records.find_records` for folders).
            fs: sampling rate (Hz) of files without a header.

        Yields:
            `(prediction, failures)` per chunk, in input order: predictions for
            the chunk's readable records and `(path, reason)` for the others.
        """
        self._check_fitted()
        paths = list(paths)
        chunks = [paths[i : i + self.chunk_size] for i in range(0, len(paths), self.chunk_size)]
        if not chunks:
            return
        stop = threading.Event()  # set when the caller stops early (Ctrl-C, a write error)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecgrhythm-reader") as pool:
            try:
                pending = pool.submit(self._read_chunk, chunks[0], fs, stop)
                for k in range(len(chunks)):
                    read, failures = pending.result()
                    if k + 1 < len(chunks):
                        pending = pool.submit(self._read_chunk, chunks[k + 1], fs, stop)
                    yield self._classify_chunk(read, failures)
            finally:
                stop.set()  # the reader drops the rest of its chunk instead of finishing it

    def classify_files(self, paths, *, fs: float | None = None):
        """Classify files, keeping going past those that cannot be read.

        Returns:
            `(prediction, failures)`: predictions for the readable records, in
            input order, and a list of `(path, reason)` for the others.
        """
        names, labels, probs, failures = [], [], [], []
        for prediction, bad in self.iter_classify_files(paths, fs=fs):
            names += prediction.names
            labels += prediction.labels
            probs.append(prediction.probabilities)
            failures += bad
        probs = np.concatenate(probs) if probs else np.zeros((0, len(self.classes_)))
        return Prediction(names, labels, probs, self.classes_), failures

    def _read_chunk(self, paths, fs, stop=None):
        """Read and prepare records: `([(path, name, signal)], [(path, reason)])`; stops early once `stop` is set."""
        read, failures = [], []
        for path in paths:
            if stop is not None and stop.is_set():
                break
            try:
                record = read_record(path, fs=fs)
                read.append((str(path), record.record_name, self.prepare(record)))
            except RecordError as exc:
                failures.append((str(path), exc.reason))
            except Exception as exc:  # a hostile file must fail alone, never stop the run
                failures.append((str(path), f"unexpected error while reading ({type(exc).__name__}: {exc})"))
        return read, failures

    def _classify_chunk(self, read, failures):
        """Predict a chunk at once; if that fails, record by record so one bad record fails alone."""
        try:
            probs = self.predict_proba([s for _, _, s in read])
        except Exception as exc:
            logger.warning("classifying a chunk of %d records failed (%s: %s); retrying record by record", len(read), type(exc).__name__, exc)
            kept, rows = [], []
            for item in read:
                try:
                    rows.append(self.predict_proba([item[2]])[0])
                    kept.append(item)
                except Exception as exc_one:
                    failures = failures + [(item[0], f"cannot be classified ({type(exc_one).__name__}: {exc_one})")]
            read, probs = kept, np.asarray(rows).reshape(len(rows), len(self.classes_))
        names = [name for _, name, _ in read]
        return Prediction(names, self.labels_from_proba(probs), probs, self.classes_), failures
