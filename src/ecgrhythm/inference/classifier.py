"""Classifying records with a trained model, in bounded memory, from Python.

One classifier for every model: it composes a backend (:mod:`ecgrhythm.inference.backend`): Keras for a
model folder, onnxruntime for an exported `.onnx` file. Every route to the networks (files and folders in a
stream, long records read in pieces, episode windows, the service, the Ray engine, the rhythm timeline) goes
through :meth:`RhythmClassifier.predict_prepared`, the one place that batches signals and runs the backend.
Batches have a fixed number of rows and one of a few padded lengths, so JAX compiles the network once per
length (an ensemble's networks share it; see :mod:`ecgrhythm.inference.forward`). Classifying many files,
chunk by chunk in bounded memory, is :mod:`ecgrhythm.inference.streaming`.

Signals given as NumPy arrays (:meth:`~RhythmClassifier.predict`, :meth:`~RhythmClassifier.predict_proba`,
:meth:`~RhythmClassifier.predict_arrays`) come from :class:`~ecgrhythm.inference.signals.SignalsMixin`, the
rhythm timeline (:meth:`~RhythmClassifier.predict_segments`) from
:class:`~ecgrhythm.inference.timeline.TimelineMixin`; both go through :meth:`RhythmClassifier.predict_prepared`.

A model's calibration (class prior and temperature) was fitted on whole records, and is applied to them
only: windows of a record (:meth:`RhythmClassifier.predict_segments`, episodes) get the networks' own
probabilities, and each :class:`Segment` says so.

Example:
    >>> import ecgrhythm
    >>> clf = ecgrhythm.RhythmClassifier.load()                     # the shipped model
    >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")
    >>> clf.predict(record.signal[:, 0], fs=300)                    # one 1-D signal in mV
    'A'
    >>> clf.predict_records(["../shared/data/cinc2017/A00001.hea"]).labels
    ['N']
"""

from __future__ import annotations

import numpy as np

from ecgrhythm.inference.backend import default_model_dir, load_backend
from ecgrhythm.inference.forward import BATCH_SIZE, average_by_owner, chunk_bounds, predict_signals, run_signals, split_long
from ecgrhythm.inference.predictions import Prediction, Segment, window_bounds
from ecgrhythm.inference.signals import SignalsMixin
from ecgrhythm.inference.timeline import TimelineMixin
from ecgrhythm.preprocessing.batching import bucket_lengths
from ecgrhythm.preprocessing.leads import choose_lead, input_columns
from ecgrhythm.preprocessing.pipeline import preprocess_signal
from ecgrhythm.records import EcgRecord
from ecgrhythm.scoring.calibration import calibrate_probabilities, invalid_probability_rows
from ecgrhythm.utils.validation import check_positive_int

__all__ = [
    "RhythmClassifier",
    "Prediction",
    "Segment",
    "window_bounds",
    "default_model_dir",
    "NotFittedError",
    "NonFiniteOutputError",
    "NO_LABEL",
    "BATCH_SIZE",
    "predict_signals",
    "split_long",
    "chunk_bounds",
    "average_by_owner",
]

NO_LABEL = "-"  # the label of a multi-label prediction with no class over its threshold


class NonFiniteOutputError(ValueError):
    """The network gave NaN or infinite probabilities: no label can be trusted."""


class NotFittedError(RuntimeError):
    """The classifier has no model yet: create it with `RhythmClassifier.load`."""


class RhythmClassifier(SignalsMixin, TimelineMixin):
    """Load a trained model (a model folder, or an exported `.onnx` file) and classify records or arrays.

    Create one with :meth:`load`; the constructor only stores its arguments.

    Args:
        model_dir: model folder or `.onnx` file (default: the shipped CinC 2017 model, see :func:`default_model_dir`).
        batch_size: rows of each compiled batch.
        backend: what runs a model folder's networks: `"auto"` (its ONNX graph on onnxruntime when both are there,
            else Keras), `"onnx"` or `"keras"` (see :func:`~ecgrhythm.inference.backend.load_backend`).

    Attributes (after `load`):
        backend_: what runs the networks (:class:`~ecgrhythm.inference.keras_backend.KerasBackend` or
            :class:`~ecgrhythm.inference.onnx_backend.OnnxBackend`).
        model_dir_: the model folder or file that was loaded.
        n_networks_: networks whose probabilities are averaged.
        networks_: a model folder's Keras networks (an `.onnx` file has none: not set); they all run on the first
            one's compiled function, which takes their weights in turn.
        model_: the first of `networks_` (a model folder only).
        temperature_: the model's temperature, one number or one per class (1.0: none); probabilities
            are `softmax(log p / T)` of the networks' mean `p` (see :func:`ecgrhythm.scoring.calibration.apply_temperature`).
        temperature_by_: None (one temperature, or each class's column by its own), or "predicted_class"
            (each row by the temperature of its predicted class, which keeps every label).
        class_prior_: None, or the class frequencies of the training records that the networks' mean is multiplied by
            (and renormalised) before the temperature (see :func:`ecgrhythm.scoring.calibration.apply_class_prior`).
        classes_: class names, the columns of every probability array.
        preprocess_: the model's :class:`~ecgrhythm.config.PreprocessConfig`.
        architecture_: its network family's config (a :class:`~ecgrhythm.networks.family.NetworkConfig`).
        n_leads_: leads the model takes.
        n_channels_: input channels of its network: the leads, then any RR channel (`preprocess_.n_channels(n_leads_)`).
        metadata_: facts about its training (`config.json` metadata).
        thresholds_: per-class decision thresholds (multi-label models; 0.5 otherwise).
        buckets_: padded lengths (samples) of inference batches.

    Example:
        >>> import ecgrhythm
        >>> clf = ecgrhythm.RhythmClassifier.load()                 # the shipped CinC 2017 model
        >>> clf.classes_, clf.n_leads_, clf.preprocess_.fs
        (['N', 'A', 'O', '~'], 1, 150.0)
        >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")
        >>> clf.predict(record)
        'A'
    """

    def __init__(self, model_dir=None, *, batch_size: int = BATCH_SIZE, backend: str = "auto"):
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.backend = backend

    @classmethod
    def load(cls, model_dir=None, **kwargs) -> RhythmClassifier:
        """Load a model folder written by `ecgrhythm train`, or an `.onnx` file written by `ecgrhythm export`.

        A path ending in `.onnx` runs on onnxruntime alone (no Keras, no JAX are imported); anything else is a
        model folder, run on onnxruntime from the ONNX graph it carries when onnxruntime is installed and the graph is
        of the folder's weights (the shipped model's is), else on Keras (training itself is :func:`ecgrhythm.training.trainer.train`).

        Args:
            model_dir: model folder or `.onnx` file (default: the shipped model, :func:`default_model_dir`).
            **kwargs: `batch_size` and `backend` (see the class).

        Returns:
            The loaded classifier.

        Raises:
            ModelFolderError: the folder is missing, incomplete, altered or cannot be loaded.
            OnnxModelError: the `.onnx` file is missing, unreadable or not written by `ecgrhythm export`.
            ImportError: onnxruntime is not installed (for an `.onnx` file).
            ValueError: `batch_size` is not a positive integer.

        Example:
            >>> import ecgrhythm
            >>> clf = ecgrhythm.RhythmClassifier.load()                 # the shipped model
            >>> clf.model_dir_ == ecgrhythm.default_model_dir()
            True
            >>> clf.n_networks_                                         # one network (a folder of several averages them)
            1
        """
        clf = cls(model_dir, **kwargs)
        check_positive_int("batch_size", clf.batch_size)
        backend = load_backend(model_dir, clf.backend)
        config = backend.config
        clf.backend_, clf.model_dir_, clf.n_networks_ = backend, backend.path, backend.n_networks
        if backend.networks is not None:
            clf.networks_, clf.model_ = backend.networks, backend.networks[0]
        clf.temperature_, clf.temperature_by_ = config["temperature"], config["temperature_by"]
        clf.class_prior_ = config["class_prior"]
        clf.classes_ = backend.classes
        clf.preprocess_ = config["preprocess"]
        clf.architecture_ = config["model"]
        clf.n_leads_ = int(config["n_leads"])
        clf.n_channels_ = clf.preprocess_.n_channels(clf.n_leads_)
        clf.thresholds_ = np.asarray(config.get("thresholds") or [0.5] * len(clf.classes_), dtype=float)
        clf.metadata_ = config.get("metadata", {})
        clf.buckets_ = bucket_lengths(clf.preprocess_.fs, clf.architecture_.downsampling)
        return clf

    @property
    def split_source(self) -> str:
        """Where :meth:`training_split` reads the split, for messages (`"split.json"`, or the `.onnx` file's metadata)."""
        self._check_fitted()
        return self.backend_.split_source

    def training_split(self) -> dict[str, list[str]] | None:
        """The records the model was trained and validated on: a folder's `split.json`
        (:func:`ecgrhythm.networks.split.load_split`), or the split an `.onnx` file's folder had when exported.

        Returns:
            `{"train": [names], "val": [names]}`, or None when unknown (no `split.json`, or a file exported without it).

        Raises:
            ValueError: the split is not such a mapping (naming the file).
        """
        self._check_fitted()
        return self.backend_.training_split()

    def _check_fitted(self):
        if not hasattr(self, "backend_"):
            raise NotFittedError("This RhythmClassifier has no model yet. Call 'load' to create one: RhythmClassifier.load(model_dir).")

    def input_columns(self, sig_name, lead=None, *, source="record", signal=None, fs: float | None = None) -> tuple[list[int], str | None]:
        """The columns this model takes from a record with leads `sig_name`, and the name of a single-lead model's lead.

        See :func:`ecgrhythm.preprocessing.leads.input_columns` (the one check that the record has the model's leads).
        Pass the record's `signal` (or its first :data:`~ecgrhythm.preprocessing.quality.CHECK_S` seconds, for a record
        read in pieces) and `fs` so that, with no `lead`, an unusable lead is passed over as :meth:`choose_lead` does.

        Raises:
            RecordError: the record lacks the leads the model needs, or `lead`.
            ValueError: `lead` was given for a multi-lead model.
        """
        self._check_fitted()
        return input_columns(sig_name, lead, self.n_leads_, model_leads=self.preprocess_.leads, source=source, signal=signal, fs=fs)

    def prepare(self, record: EcgRecord, lead=None) -> np.ndarray:
        """Model input of one record (see :func:`ecgrhythm.preprocessing.pipeline.preprocess`).

        A single-lead model takes one lead of a multi-lead record: `lead`
        (name or 0-based index), by default lead I, else the first lead, unless it is unusable and another is clean
        (:meth:`choose_lead` says which).

        Returns:
            float32 array `(n_samples_at_model_fs, n_channels_)`: the leads, then the RR channel of a model
            trained with it (`preprocess_.rr_channel`).

        Raises:
            RecordError: the record lacks the leads the model needs, or `lead`.
        """
        columns, _ = self.input_columns(record.sig_name, lead, source=record.record_name, signal=record.signal, fs=record.fs)
        signal = record.signal if columns == list(range(record.n_leads)) else record.signal[:, columns]
        return preprocess_signal(signal, record.fs, self.preprocess_, record.record_name)

    def require_whole_records(self, use: str) -> None:
        """Refuse a model with a fixed input length (`preprocess_.fixed_length_s`) for `use`, which needs whole records.

        Such a model sees only the first seconds of a record, so it cannot give a timeline of windows
        or find episodes; classifying records of any length works (a long one by its first seconds).

        Args:
            use: what needs whole records, for the message (`"ecgrhythm episodes"`).

        Raises:
            ValueError: the model crops or pads every record (naming the model folder).
        """
        self._check_fitted()
        fixed = self.preprocess_.fixed_length_s
        if fixed is not None:
            raise ValueError(
                f"{self.model_dir_}: {use} needs whole records, but this model crops or zero-pads every record to its first {fixed:g} s "
                f"(its preprocessing has fixed_length_s={fixed:g}); use a model trained on whole records"
            )

    def choose_lead(self, record: EcgRecord, lead=None) -> tuple[EcgRecord, str | None]:
        """The record this model takes and the name of its lead (`None` for a multi-lead model).

        A single-lead model takes `lead` when given; else its own lead, else lead I, else the first, unless the
        record's first minutes show that lead unusable (flat, disconnected, noise) and another clearly better
        (:func:`ecgrhythm.preprocessing.quality.best_lead`). See :func:`ecgrhythm.preprocessing.leads.choose_lead`.
        """
        self._check_fitted()
        return choose_lead(record, lead, self.n_leads_, model_leads=self.preprocess_.leads)

    def predict_prepared(self, signals, *, calibrated: bool = True, networks: int | None = None, batch_size: int | None = None) -> np.ndarray:
        """Probabilities of already preprocessed signals (see :meth:`prepare`): the one place that runs the backend.

        Args:
            signals: list of float32 arrays `(n_i, n_channels_)` at the model's rate.
            calibrated: apply the model's calibration, its class prior then its temperature (fitted on whole
                records; :meth:`calibrate`); `False` gives the networks' own probabilities, as windows of a
                record and the AF episode model take them.
            networks: average only the model's first `networks` networks (`None`: all of them). The
                calibration was fitted on all of them: pass `calibrated=False` with a subset.
            batch_size: signals per network call (`None`: the classifier's `batch_size`). Larger batches of one
                length run faster on a backend that takes any batch (`backend_.any_batch`, onnxruntime) with the same
                probabilities; on Keras each new batch shape is compiled.

        Returns:
            float array `(len(signals), n_classes)`: the mean over the model's networks, calibrated unless
            `calibrated` is false; rows sum to 1 for a softmax model.

        Raises:
            ValueError: a signal does not have the shape the model takes, or `networks` is not a whole number
                from 1 to the number of networks (or is fewer than all with `calibrated`), or the backend cannot
                average that many (an old `.onnx` file of several networks).
            NonFiniteOutputError: the network gave NaN or infinite probabilities for a signal.
        """
        self._check_fitted()
        check_positive_int("networks", networks, optional=True)
        check_positive_int("batch_size", batch_size, optional=True)
        if networks is not None:
            if networks > self.n_networks_:
                raise ValueError(f"Invalid argument `networks`: the model has {self.n_networks_} network(s). Received: networks={networks!r}")
            if calibrated and networks < self.n_networks_:
                raise ValueError("Invalid argument `networks`: the folder's calibration was fitted on all its networks; pass calibrated=False")
        signals = list(signals)
        for i, s in enumerate(signals):
            if not isinstance(s, np.ndarray) or s.ndim != 2 or s.shape[1] != self.n_channels_ or len(s) == 0:
                raise ValueError(
                    f"Invalid argument `signals`: expected arrays of shape (n_samples, {self.n_channels_}) from `prepare`. "
                    f"Received: signals[{i}] with shape {getattr(s, 'shape', None)}"
                )
        if not signals:
            return np.zeros((0, len(self.classes_)))
        probs = self._mean_probabilities(signals, networks or self.n_networks_, batch_size or self.batch_size)
        for step in ("the networks", "the calibration") if calibrated else ("the networks",):  # each step that can make NaN
            probs = self.calibrate(probs) if step == "the calibration" else probs
            bad = invalid_probability_rows(probs, softmax=not self.architecture_.multilabel)
            if len(bad):
                kind = "non-finite" if not np.isfinite(probs[bad[0]]).all() else "invalid (not in [0, 1], or not summing to 1)"
                raise NonFiniteOutputError(
                    f"the model gave {kind} probabilities ({probs[bad[0]].tolist()}) after {step} for {len(bad)} of {len(signals)} "
                    f"signal(s), the first being signals[{bad[0]}]: the model may be damaged or the signal holds extreme values"
                )
        return probs

    def _mean_probabilities(self, signals, networks: int, batch_size: int) -> np.ndarray:
        """The mean probabilities of the first `networks` networks: each of the backend's batch functions over every batch in turn."""
        with self.backend_.batch_functions(networks) as functions:
            outs = [run_signals(run, signals, self.buckets_, batch_size, n_classes=len(self.classes_)) for run in functions]
        return outs[0] if len(outs) == 1 else np.mean(outs, axis=0)

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Whole-record probabilities corrected by the model's class prior, then scaled by its temperature (unchanged without them).

        :meth:`predict_prepared` applies it; a caller that averages uncalibrated pieces of one record
        (`predict_prepared(..., calibrated=False)`) applies it once to the average.

        Args:
            probabilities: float array `(n_records, n_classes)`.

        Returns:
            float array of the same shape.
        """
        return calibrate_probabilities(
            probabilities, class_prior=self.class_prior_, temperature=self.temperature_, temperature_by=self.temperature_by_
        )

    def labels_from_proba(self, probabilities: np.ndarray) -> list[str]:
        """The label of each row: the most probable class, or for a multi-label
        model every class at or over its threshold, separated by a space
        (`NO_LABEL` when none is)."""
        if not self.architecture_.multilabel:
            return [self.classes_[i] for i in np.argmax(probabilities, axis=1)]
        present = np.asarray(probabilities) >= self.thresholds_[None, :]
        return [" ".join(c for c, p in zip(self.classes_, row) if p) or NO_LABEL for row in present]
