"""Classifying records with a trained model, in bounded memory, from Python.

Batches have a fixed number of rows and one of a few padded lengths, so JAX
compiles the network once per length (an ensemble's networks share it;
the batched runs themselves are :mod:`ecgrhythm.inference.forward`). Classifying many files, chunk by chunk
in bounded memory, is :mod:`ecgrhythm.inference.streaming`.

Example:
>>> clf = RhythmClassifier.load()                      # the shipped model
>>> result = clf.predict_records(["A00001.hea"])       # doctest: +SKIP
>>> result.labels, result.probabilities.shape          # doctest: +SKIP
(['N'], (1, 4))
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np

from ecgrhythm.inference.forward import BATCH_SIZE, average_by_owner, chunk_bounds, predict_signals, split_long
from ecgrhythm.preprocessing.batching import bucket_lengths
from ecgrhythm.preprocessing.pipeline import choose_lead, preprocess
from ecgrhythm.records import EcgRecord, RecordError, read_record, validate_signal
from ecgrhythm.scoring.calibration import calibrate_probabilities
from ecgrhythm.utils.validation import check_positive_int

__all__ = [
    "RhythmClassifier",
    "Prediction",
    "predict_signals",
    "Segment",
    "window_bounds",
    "split_long",
    "chunk_bounds",
    "average_by_owner",
    "default_model_dir",
    "NotFittedError",
    "NonFiniteOutputError",
    "BATCH_SIZE",
    "NO_LABEL",
]

NO_LABEL = "-"  # the label of a multi-label prediction with no class over its threshold
SHIPPED_MODEL = "cinc2017"  # the name of the shipped model folder


class NonFiniteOutputError(ValueError):
    """The network gave NaN or infinite probabilities: no label can be trusted."""


class NotFittedError(RuntimeError):
    """The classifier has no model yet: create it with `RhythmClassifier.load`."""


def default_model_dir() -> Path:
    """The shipped CinC 2017 model folder, wherever ecgrhythm runs from.

    In a source checkout (run from `src/`, or installed editable) that is
    `models/cinc2017` at the repository root, where the model is documented.
    An installed wheel carries the same files as the package data
    `ecgrhythm/pretrained/cinc2017` (`setup.py` maps the package
    `ecgrhythm.pretrained` onto `models/`). Every default model folder of the
    library and its commands comes from here.
    """
    package = Path(__file__).resolve().parents[1]
    if package.parent.name == "src":  # src/ecgrhythm/ in a checkout
        return package.parent.parent / "models" / SHIPPED_MODEL
    return package / "pretrained" / SHIPPED_MODEL


def _load_model_dir_fast(path):
    """:func:`ecgrhythm.networks.saving.load_networks`, without drawing initial weights that loading replaces.

    Keras draws random initial values for every weight when it builds a
    network, and on JAX each weight shape compiles its own XLA program: many
    seconds per model on a small CPU. Building inside a `StatelessScope` defers
    that; the loaded values are then assigned, and only variables the weights
    file does not hold (random seed states) are initialised as usual. Falls
    back to the plain loader if this Keras lacks the internals used.
    """
    import keras

    from ecgrhythm.networks.saving import load_networks

    try:
        from keras.src.backend.common import global_state
        from keras.src.backend.common.stateless_scope import in_stateless_scope
        from keras.src.backend.common.variables import initialize_all_variables
    except ImportError:  # pragma: no cover - other Keras layouts
        return load_networks(path)
    if in_stateless_scope():  # the caller's scope would capture the loaded values
        return load_networks(path)
    key = "uninitialized_variables"
    before = len(global_state.get_global_attribute(key) or [])
    try:
        with keras.StatelessScope(initialize_variables=False) as scope:
            networks, config = load_networks(path)
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
    return networks, config


@dataclasses.dataclass
class Prediction:
    """Predictions for several records.

    Attributes:
        names: record names.
        labels: predicted label of each record.
        probabilities: array `(n_records, n_classes)`.
        classes: class names, the columns of `probabilities`.
        leads: the lead a single-lead model took from each record (`None`
            for a multi-lead model), when the caller tracked them.
    """

    names: list[str]
    labels: list[str]
    probabilities: np.ndarray
    classes: list[str]
    leads: list[str | None] | None = None

    def __post_init__(self):
        if self.leads is None:  # no lead was chosen for any record (a multi-lead model, or arrays)
            self.leads = [None] * len(self.names)


@dataclasses.dataclass(frozen=True)
class Segment:
    """The prediction for one window of a record (see :meth:`RhythmClassifier.predict_segments`).

    Attributes:
        start_s: start of the window, seconds from the record's start.
        end_s: its end, seconds.
        label: predicted label of the window.
        probabilities: array `(n_classes,)`, in the classifier's `classes_` order.
    """

    start_s: float
    end_s: float
    label: str
    probabilities: np.ndarray


def window_bounds(n: int, window: int) -> np.ndarray:
    """Near-equal consecutive windows of about `window` samples covering `n` samples.

    Returns:
        int array `(k + 1,)` of bounds from 0 to `n`, `k = max(1, round(n / window))`.
    """
    k = max(1, round(n / window))
    return np.linspace(0, n, k + 1).round().astype(int)


class RhythmClassifier:
    """Load a trained model folder and classify records or arrays.

    Create one with :meth:`load`; the constructor only stores its arguments.

    Args:
        model_dir: model folder (default: the shipped CinC 2017 model, see :func:`default_model_dir`).
        batch_size: rows of each compiled batch.

    Attributes (after `load`):
        model_dir_: the model folder that was loaded.
        model_: the Keras network (the first of an ensemble's).
        networks_: every network of the folder; their probabilities are averaged (each run with the first one's
            compiled function, which takes their weights in turn).
        temperature_: the folder's temperature, one number or one per class (1.0: none); probabilities
            are `softmax(log p / T)` of the networks' mean `p` (see :func:`ecgrhythm.scoring.calibration.apply_temperature`).
        temperature_by_: None (one temperature, or each class's column by its own), or "predicted_class"
            (each row by the temperature of its predicted class, which keeps every label).
        class_prior_: None, or the class frequencies of the training records that the networks' mean is multiplied by
            (and renormalised) before the temperature (see :func:`ecgrhythm.scoring.calibration.apply_class_prior`).
        classes_: class names, the columns of every probability array.
        preprocess_: the model's :class:`~ecgrhythm.config.PreprocessConfig`.
        architecture_: its :class:`~ecgrhythm.config.ModelConfig`.
        n_leads_: leads the model takes.
        n_channels_: input channels of its network: the leads, then any RR channel (`preprocess_.n_channels(n_leads_)`).
        metadata_: facts about its training (`config.json` metadata).
        thresholds_: per-class decision thresholds (multi-label models; 0.5 otherwise).
        buckets_: padded lengths (samples) of inference batches.
    """

    def __init__(self, model_dir=None, *, batch_size: int = BATCH_SIZE):
        self.model_dir = model_dir
        self.batch_size = batch_size
        self._swap_lock = threading.Lock()  # an ensemble's members run in turn on its first network

    @classmethod
    def load(cls, model_dir=None, **kwargs) -> RhythmClassifier:
        """Load a model folder written by `ecgrhythm train` (training itself is :func:`ecgrhythm.training.trainer.train`).

        Args:
            model_dir: model folder (default: the shipped model, :func:`default_model_dir`).
            **kwargs: `batch_size` (see the class).

        Returns:
            The loaded classifier.

        Raises:
            ModelFolderError: the folder is missing, incomplete, altered or cannot be loaded.
            ValueError: `batch_size` is not a positive integer.
        """
        clf = cls(model_dir, **kwargs)
        check_positive_int("batch_size", clf.batch_size)
        networks, config = clf._load_model()
        clf.model_dir_ = Path(model_dir) if model_dir is not None else default_model_dir()
        clf.networks_, clf.model_ = networks, networks[0]
        clf.temperature_, clf.temperature_by_ = config["temperature"], config["temperature_by"]
        clf.class_prior_ = config["class_prior"]
        clf.classes_ = list(config["classes"])
        clf.preprocess_ = config["preprocess"]
        clf.architecture_ = config["model"]
        clf.n_leads_ = int(config["n_leads"])
        clf.n_channels_ = clf.preprocess_.n_channels(clf.n_leads_)
        clf.thresholds_ = np.asarray(config.get("thresholds") or [0.5] * len(clf.classes_), dtype=float)
        clf.metadata_ = config.get("metadata", {})
        clf.buckets_ = bucket_lengths(clf.preprocess_.fs, clf.architecture_.downsampling)
        return clf

    def _load_model(self):
        """`(networks, config)` of `model_dir`, as :func:`ecgrhythm.networks.saving.load_networks` returns them."""
        from ecgrhythm.networks.saving import ModelFolderError

        path = Path(self.model_dir) if self.model_dir is not None else default_model_dir()
        if not path.is_dir():
            raise ModelFolderError(f"{path}: model folder not found; pass the folder written by 'ecgrhythm train' (--model DIR)")
        try:
            return _load_model_dir_fast(path)
        except ModelFolderError:
            raise
        except Exception as exc:
            raise ModelFolderError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None

    @property
    def split_source(self) -> str:
        """Where :meth:`training_split` reads the split, for messages (`"split.json"`)."""
        from ecgrhythm.networks.saving import SPLIT_FILE

        return SPLIT_FILE

    def training_split(self) -> dict[str, list[str]] | None:
        """The records the model was trained and validated on: its folder's `split.json` (:func:`ecgrhythm.networks.saving.load_split`).

        Returns:
            `{"train": [names], "val": [names]}`, or None when the folder has no `split.json`.

        Raises:
            ValueError: `split.json` is not such a mapping (naming the file).
        """
        from ecgrhythm.networks.saving import load_split

        self._check_fitted()
        return load_split(self.model_dir_)

    def _check_fitted(self):
        if not hasattr(self, "model_"):
            raise NotFittedError("This RhythmClassifier has no model yet. Call 'load' to create one: RhythmClassifier.load(model_dir).")

    def prepare(self, record: EcgRecord, lead=None) -> np.ndarray:
        """Model input of one record (see :func:`ecgrhythm.preprocessing.pipeline.preprocess`).

        A single-lead model takes one lead of a multi-lead record: `lead`
        (name or 0-based index), by default lead I, else the first lead
        (:meth:`choose_lead` says which).

        Returns:
            float32 array `(n_samples_at_model_fs, n_channels_)`: the leads, then the RR channel of a model
            trained with it (`preprocess_.rr_channel`).

        Raises:
            RecordError: the record lacks the leads the model needs, or `lead`.
        """
        self._check_fitted()
        record, _ = self.choose_lead(record, lead)
        signal = preprocess(record, self.preprocess_)
        leads = signal.shape[1] - self.preprocess_.interval_channels
        if leads != self.n_leads_:
            raise RecordError(
                record.record_name,
                f"the record has {leads} leads ({', '.join(record.sig_name)}) but the model takes {self.n_leads_}; "
                f"classify records with {self.n_leads_} lead(s), or use a model trained on these leads",
            )
        return signal

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
                "(trained with --fixed-length); use a model trained on whole records"
            )

    def choose_lead(self, record: EcgRecord, lead=None) -> tuple[EcgRecord, str | None]:
        """The record this model takes and the name of its lead (`None` for a multi-lead model).

        See :func:`ecgrhythm.preprocessing.pipeline.choose_lead`.
        """
        self._check_fitted()
        return choose_lead(record, lead, self.n_leads_, model_leads=self.preprocess_.leads)

    def predict_proba(self, signals, *, calibrated: bool = True, networks: int | None = None) -> np.ndarray:
        """Probabilities of already preprocessed signals (see :meth:`prepare`).

        Args:
            signals: list of float32 arrays `(n_i, n_channels_)` at the model's rate.
            calibrated: apply the folder's calibration, its class prior then its temperature (fitted on whole
                records; :meth:`calibrate`); `False` gives the networks' own probabilities, which the AF episode
                model was fitted on.
            networks: average only the folder's first `networks` networks (`None`: all of them). The
                calibration was fitted on all of them: pass `calibrated=False` with a subset.

        Returns:
            float array `(len(signals), n_classes)`: the mean over the folder's networks, calibrated unless
            `calibrated` is false; rows sum to 1 for a softmax model.

        Raises:
            ValueError: a signal does not have the shape the model takes, or `networks` is not a whole number
                from 1 to the number of networks (or is fewer than all with `calibrated`).
            NonFiniteOutputError: the network gave NaN or infinite probabilities for a signal.
        """
        self._check_fitted()
        members = self.networks_
        check_positive_int("networks", networks, optional=True)
        if networks is not None:
            if networks > len(members):
                raise ValueError(f"Invalid argument `networks`: the model has {len(members)} network(s). Received: networks={networks!r}")
            members = members[:networks]
            if calibrated and len(members) < len(self.networks_):
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
        probs = self._mean_probabilities(members, signals)
        bad = np.flatnonzero(~np.isfinite(probs).all(axis=1))
        if len(bad):
            raise NonFiniteOutputError(
                f"the model gave non-finite probabilities ({probs[bad[0]].tolist()}) for {len(bad)} of {len(signals)} signal(s), "
                f"the first being signals[{bad[0]}]: the model folder may be damaged or the signal holds extreme values"
            )
        return self.calibrate(probs) if calibrated else probs

    def _mean_probabilities(self, members, signals) -> np.ndarray:
        """The mean of `members`' probabilities, every member run by the first one's compiled function.

        JAX compiles a network's function once per input shape and per network object, seconds each
        on a small CPU. The members share one architecture (:func:`ecgrhythm.networks.saving.assemble_ensemble`),
        so the first network takes each other member's weights in turn and gets its own back after:
        each shape compiles once for the whole ensemble. In a folder of several networks every call holds
        a lock, so that a call running the first network alone never sees another member's weights.
        """
        runner = members[0]
        if len(self.networks_) == 1:
            return predict_signals(runner, signals, self.buckets_, self.batch_size)
        with self._swap_lock:
            if len(members) == 1:
                return predict_signals(runner, signals, self.buckets_, self.batch_size)
            own = runner.get_weights()
            try:
                outs = []
                for k, network in enumerate(members):
                    if k:
                        runner.set_weights(network.get_weights())
                    outs.append(predict_signals(runner, signals, self.buckets_, self.batch_size))
            finally:
                runner.set_weights(own)
        return np.mean(outs, axis=0)

    def calibrate(self, probabilities: np.ndarray) -> np.ndarray:
        """Whole-record probabilities corrected by the folder's class prior, then scaled by its temperature (unchanged without them).

        :meth:`predict_proba` applies it; a caller that averages uncalibrated pieces of one record
        (`predict_proba(..., calibrated=False)`) applies it once to the average.

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

    def predict_records(self, records) -> Prediction:
        """Classify records given as `EcgRecord` objects or file paths (read with their headers).

        Raises:
            RecordError: a record cannot be read or used (see :func:`ecgrhythm.inference.streaming.classify_files` to keep going).
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

    def predict_segments(self, record: EcgRecord, window_s: float, *, signal: np.ndarray | None = None) -> list[Segment]:
        """The rhythm timeline: the prediction of each of the consecutive windows covering the record.

        The windows are the :func:`window_bounds` of about `window_s` seconds
        of the prepared signal, each classified on its own.

        Args:
            record: the record.
            window_s: window length in seconds (positive).
            signal: `prepare(record)` when the caller has it already.

        Returns:
            The segments in time order, from 0 to the record's duration.

        Raises:
            RecordError: the record lacks the leads the model needs.
            NonFiniteOutputError: the network gave NaN or infinite probabilities.
            ValueError: the model has a fixed input length (:meth:`require_whole_records`).
        """
        return self._timeline(record, window_s, signal, with_record=False)[1]

    def predict_with_segments(self, record: EcgRecord, window_s: float, *, signal: np.ndarray | None = None) -> tuple[np.ndarray, list[Segment]]:
        """The record's probabilities and its rhythm timeline (:meth:`predict_segments`) from one call of the networks.

        The same numbers as :meth:`predict_proba` on the prepared record and :meth:`predict_segments`,
        with the networks run once over the record and its windows together (an ensemble swaps its
        weights once, not twice).

        Returns:
            `(probabilities, segments)`: float array `(n_classes,)` and the segments in time order.

        Raises:
            As :meth:`predict_segments`.
        """
        return self._timeline(record, window_s, signal, with_record=True)

    def _timeline(self, record: EcgRecord, window_s: float, signal, *, with_record: bool) -> tuple[np.ndarray | None, list[Segment]]:
        self.require_whole_records("a rhythm timeline")
        if not window_s > 0:
            raise ValueError(f"Invalid argument `window_s`: expected a positive number of seconds. Received: window_s={window_s!r}")
        signal = self.prepare(record) if signal is None else signal
        bounds = window_bounds(len(signal), int(round(window_s * self.preprocess_.fs)))
        windows = [signal[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        probs = self.predict_proba([signal, *windows] if with_record else windows)
        whole, probs = (probs[0], probs[1:]) if with_record else (None, probs)
        times = bounds / len(signal) * record.duration_s
        labels = self.labels_from_proba(probs)
        return whole, [Segment(float(times[i]), float(times[i + 1]), label, probs[i]) for i, label in enumerate(labels)]
