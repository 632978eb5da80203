"""Classifying records with a trained model, in bounded memory, from Python.

Example:
>>> clf = RhythmClassifier.load()                      # the shipped model
>>> result = clf.predict_records(["A00001.hea"])       # doctest: +SKIP
>>> result.labels, result.probabilities.shape          # doctest: +SKIP
(['N'], (1, 4))
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import numpy as np

from .batching import bucket_lengths, inference_batches
from .preprocessing import preprocess
from .records import EcgRecord, RecordError, read_record, validate_signal

__all__ = ["RhythmClassifier", "Prediction", "predict_signals", "split_long", "default_model_dir", "NotFittedError"]

logger = logging.getLogger(__name__)

BATCH_SIZE = 32


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
    for idx, x, mask in inference_batches(chunks, buckets, batch_size):
        out = np.asarray(model.predict_on_batch({"signal": x, "mask": mask}))
        chunk_probs[idx] = out[: len(idx)]
    owners = np.asarray(owners, dtype=int)
    weights = np.asarray(weights, dtype=np.float64)
    probs = np.zeros((len(signals), n_classes))
    np.add.at(probs, owners, chunk_probs * weights[:, None])
    probs /= np.bincount(owners, weights=weights, minlength=len(signals))[:, None]
    return probs


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
    """

    def __init__(self, model_dir=None):
        self.model_dir = model_dir

    @classmethod
    def load(cls, model_dir=None) -> "RhythmClassifier":
        """Create a classifier and load its model folder."""
        return cls(model_dir).fit()

    def fit(self) -> "RhythmClassifier":
        """Load the model folder (training is `ecgrhythm.training.train`). Returns self."""
        from .saving import load_model_dir

        self.model_, config = load_model_dir(self.model_dir or default_model_dir())
        self.classes_ = list(config["classes"])
        self.preprocess_ = config["preprocess"]
        self.architecture_ = config["model"]
        self.metadata_ = config.get("metadata", {})
        self.buckets_ = bucket_lengths(self.preprocess_.fs, self.architecture_.downsampling)
        return self

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("This RhythmClassifier has no model yet. Call 'load' or 'fit' first.")

    def prepare(self, record: EcgRecord) -> np.ndarray:
        """Model input of one record (see :func:`ecgrhythm.preprocessing.preprocess`)."""
        self._check_fitted()
        return preprocess(record, self.preprocess_)

    def predict_proba_signals(self, signals) -> np.ndarray:
        """Probabilities `(n, n_classes)` of already preprocessed signals."""
        self._check_fitted()
        if not signals:
            return np.zeros((0, len(self.classes_)))
        return predict_signals(self.model_, signals, self.buckets_)

    def labels_from_proba(self, probabilities: np.ndarray) -> list[str]:
        """The most probable class of each row."""
        return [self.classes_[i] for i in np.argmax(probabilities, axis=1)]

    def predict_records(self, records) -> Prediction:
        """Classify records given as `EcgRecord` objects or file paths (read with their headers).

        Raises:
            RecordError: a record cannot be read or used (see `classify_files` to keep going).
        """
        self._check_fitted()
        records = [r if isinstance(r, EcgRecord) else read_record(r) for r in records]
        probs = self.predict_proba_signals([self.prepare(r) for r in records])
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

    def classify_files(self, paths, *, fs: float | None = None):
        """Classify files, keeping going past those that cannot be read.

        Returns:
            `(prediction, failures)`: predictions for the readable records, in
            input order, and a list of `(path, reason)` for the others.
        """
        self._check_fitted()
        names, signals, failures = [], [], []
        for path in paths:
            try:
                record = read_record(path, fs=fs)
                signals.append(self.prepare(record))
                names.append(record.record_name)
            except RecordError as exc:
                failures.append((str(path), exc.reason))
        probs = self.predict_proba_signals(signals)
        return Prediction(names, self.labels_from_proba(probs), probs, self.classes_), failures
