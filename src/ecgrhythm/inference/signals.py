"""Classifying records and signals given as NumPy arrays: the classifier's `predict_records`, `predict`, `predict_proba` and `predict_arrays`.

As in scikit-learn and NeuroKit2, one signal gives one answer and a list (or tuple) of signals a list of
answers, and arrays come with their rate (`fs=`): :func:`signal_list` tells one signal from a list,
:func:`array_record` makes an array sampled at `fs` Hz an :class:`~ecgrhythm.records.EcgRecord`, and
:func:`as_records` does both for a mix of arrays and records. :class:`SignalsMixin` gives
:class:`~ecgrhythm.inference.classifier.RhythmClassifier` the methods, which hand the records to its
`predict_records`: the same road to the networks, and the same calibrated probabilities, as files take; given the
record-level rule (`long_records=`, :mod:`ecgrhythm.episodes.answers`), the same answer for a record longer than the
networks' training length, through :func:`answered_prediction`, which every route shares.
Errors name the argument (`fs`, `x`), never a command-line flag.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from ecgrhythm.inference.predictions import Prediction
from ecgrhythm.preprocessing.plausibility import warn_if_implausible
from ecgrhythm.records import EcgRecord, RecordError, check_fs, read_record

__all__ = ["SignalsMixin", "signal_list", "check_array_fs", "array_record", "as_records", "answered_prediction"]

_FS_FIX = "pass fs=, the sampling rate in Hz"


def signal_list(x, argument: str, single: tuple[type, ...]) -> tuple[list, bool]:
    """The signals of `x` as a list, and whether `x` was one signal.

    Args:
        x: one signal (an instance of one of `single`), or a list, tuple or other iterable of signals.
        argument: the argument's name, for messages.
        single: the types taken as one signal (`np.ndarray`, `EcgRecord`, a path).

    Returns:
        `(signals, is_single)`: `[x], True` for one signal, `list(x), False` otherwise.

    Raises:
        ValueError: `x` is a string where no path is taken, is not iterable, or is a list of plain numbers
            (one signal given as a list: ambiguous with a list of signals, so refused with the fix).
    """
    if isinstance(x, single):
        return [x], True
    _refuse_path(x, argument)
    try:
        signals = list(x)
    except TypeError:
        raise ValueError(
            f"Invalid argument `{argument}`: expected one signal or a list of signals. Received: {argument} of type {type(x).__name__}"
        ) from None
    if signals and isinstance(signals[0], numbers.Number):
        raise ValueError(
            f"Invalid argument `{argument}`: a list is taken as several signals, but {argument}[0] is a number ({signals[0]!r}); "
            f"pass one signal as a NumPy array (np.asarray({argument})), or several as a list of arrays"
        )
    return signals, False


def check_array_fs(fs) -> float:
    """The sampling rate of arrays, which carry none: `fs` as a float.

    Raises:
        ValueError: `fs` is missing, or not a rate from 20 to 100,000 Hz.
    """
    if fs is None:
        raise ValueError(f"Invalid argument `fs`: arrays carry no sampling rate; {_FS_FIX}. Received: fs=None")
    try:
        return check_fs(fs, "fs", _FS_FIX)
    except RecordError as exc:
        raise ValueError(f"Invalid argument `fs`: {exc.reason}. Received: fs={fs!r}") from None


def array_record(a, fs: float, name: str, argument: str = "arrays") -> EcgRecord:
    """A signal given as an array, as a record named `name` with leads `lead1`, `lead2`, ...

    Args:
        a: array-like `(n_samples,)` (one lead) or `(n_samples, n_leads)`, in mV.
        fs: its sampling rate in Hz, checked (:func:`check_array_fs`).
        name: the record's name, for results and messages.
        argument: the argument it came from, for messages.

    Raises:
        ValueError: `a` is not numeric, has another number of dimensions, or more leads than samples
            (transposed).
        RecordError: the signal is unusable (too short or long, NaN or infinite samples, over 64 leads).
    """
    try:
        signal = np.asarray(a, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Invalid argument `{argument}`: {name} is not an array of numbers ({exc})") from None
    if signal.ndim == 1:
        signal = signal[:, None]
    elif signal.ndim != 2:
        raise ValueError(
            f"Invalid argument `{argument}`: expected a signal of shape (n_samples,) or (n_samples, n_leads). Received: {name} of shape {signal.shape}"
        )
    if signal.shape[1] > signal.shape[0]:
        raise ValueError(
            f"Invalid argument `{argument}`: {name} of shape {signal.shape} has more leads than samples; "
            "pass it as (n_samples, n_leads), e.g. its transpose `.T`"
        )
    return EcgRecord(signal, fs, tuple(f"lead{j + 1}" for j in range(signal.shape[1])), name)


def as_records(signals: list, fs, names: list[str], argument: str = "x") -> list[EcgRecord]:
    """Records of a list of signals given as arrays (sampled at `fs` Hz) or :class:`EcgRecord` objects.

    Args:
        signals: arrays `(n_samples,)` or `(n_samples, n_leads)` in mV, and records.
        fs: sampling rate (Hz) of the arrays; required when there is one. A record carries its own rate:
            `fs`, if given, must agree with it.
        names: the arrays' names (a record keeps its own), one per signal.
        argument: the argument the signals came from, for messages.

    Raises:
        ValueError: `fs` is missing for an array, invalid, or disagrees with a record's rate; a signal is a
            file path or an array of another shape (:func:`array_record`).
        RecordError: a signal is unusable.
    """
    checked = None if fs is None else check_array_fs(fs)
    records = []
    for item, name in zip(signals, names, strict=True):
        if isinstance(item, EcgRecord):
            if checked is not None and not np.isclose(checked, item.fs):
                raise ValueError(
                    f"Invalid argument `fs`: record {item.record_name!r} was sampled at {item.fs:g} Hz; a record carries its rate, "
                    f"so leave fs= out (or pass that rate). Received: fs={fs!r}"
                )
            records.append(item)
        else:
            _refuse_path(item, name)
            if checked is None:
                check_array_fs(fs)  # raises: an array needs fs
            records.append(array_record(item, checked, name, argument))
    return records


def _refuse_path(x, argument: str) -> None:
    if isinstance(x, (str, os.PathLike)):
        raise ValueError(
            f"Invalid argument `{argument}`: expected a NumPy array, an EcgRecord or a list of them, not a file path; "
            f"read the file with ecgrhythm.read_record, or classify files with predict_records. Received: {argument}={x!r}"
        )


def answered_prediction(classifier, names, leads, probabilities: np.ndarray, answers) -> Prediction:
    """The :class:`~ecgrhythm.inference.predictions.Prediction` of records with their answers applied: what every route gives.

    Args:
        classifier: the loaded classifier that gave `probabilities`.
        names: the records' names.
        leads: the lead each was classified from (`None` for a multi-lead model).
        probabilities: float array `(n_records, n_classes)`, their whole-record probabilities.
        answers: each record's answer (a :class:`~ecgrhythm.episodes.answers.RecordAnswer`: `label`, `af_burden`,
            `record_class`), or `None` for one the rule leaves to the networks.

    Returns:
        Each label the answer's where there is one, else the networks' (:meth:`RhythmClassifier.labels_from_proba`),
        with the answers' AF burden and class (`None` for the others).
    """
    answers = list(answers)
    labels = [a.label if a is not None else label for a, label in zip(answers, classifier.labels_from_proba(probabilities), strict=True)]
    burdens = [None if a is None else a.af_burden for a in answers]
    classes = [None if a is None else a.record_class for a in answers]
    return Prediction(list(names), labels, probabilities, list(classifier.classes_), list(leads), burdens, classes)


class SignalsMixin:
    """`predict_records`, and `predict`, `predict_proba` and `predict_arrays` on top of it, of a classifier."""

    def predict_records(self, records, fs: float | None = None, *, long_records=None) -> Prediction:
        """Classify records given as file paths or :class:`~ecgrhythm.records.EcgRecord` objects.

        Args:
            records: one record or a list of them: paths of any format :func:`~ecgrhythm.records.read_record`
                reads (a `.hea` header, a bare WFDB record name, `.mat`, `.csv`, `.npy`), or records.
            fs: sampling rate (Hz) of the files without a header (`.csv`, `.npy`, bare `.mat`); required for them.
                WFDB headers and records carry their own.
            long_records: the record-level rule, as :func:`~ecgrhythm.inference.streaming.classify_files` takes it
                (a :class:`~ecgrhythm.episodes.answers.LongRecordAnswer`, the stage above this one): a record it
                applies to is answered from its AF episodes; `None`: every label is the networks'.

        Returns:
            The names, labels, calibrated probabilities `(n_records, n_classes)` and leads of the records, in order.
            With `long_records`, a record longer than the networks' training length gets the answer of its AF
            episodes, its `af_burden` and `record_class`, as `classify_files` and `ecgrhythm classify` give them
            (:mod:`ecgrhythm.episodes.answers`; its label follows its episodes, its probabilities stay the networks').

        Raises:
            RecordError: a record cannot be read or used, or a file without a header is given without `fs`
                (see :func:`ecgrhythm.inference.streaming.classify_files` to keep going past failures).
            NotFittedError: the classifier was not created with :meth:`load`.

        Warns:
            ImplausibleRecordWarning: the heart rate, R-wave width or amplitude the record implies is not
                physiological at its rate (a wrong `fs`, or microvolts read as millivolts); the record is still
                classified. `warnings.simplefilter("error", ImplausibleRecordWarning)` makes it an error.

        Example:
            >>> import ecgrhythm
            >>> clf = ecgrhythm.RhythmClassifier.load()
            >>> result = clf.predict_records(["../shared/data/cinc2017/A00001.hea", "../shared/data/cinc2017/A00004.hea"])
            >>> result.names, result.labels
            (['A00001', 'A00004'], ['N', 'A'])
            >>> result.probabilities.shape
            (2, 4)
        """
        self._check_fitted()
        records = signal_list(records, "records", (str, os.PathLike, EcgRecord))[0]
        records = [r if isinstance(r, EcgRecord) else read_record(r, fs=fs) for r in records]
        chosen = [self.choose_lead(r) for r in records]  # the lead chosen once, by quality, as classify_files does
        for one, _ in chosen:  # warns (ImplausibleRecordWarning) when the rate or the unit looks wrong; never changes the result
            warn_if_implausible(one.signal, one.fs, one.record_name)
        probs = self.predict_prepared([self.prepare(one) for one, _ in chosen])
        answers = [None if long_records is None else long_records.answer(record, row) for record, row in zip(records, probs)]
        return answered_prediction(self, [r.record_name for r in records], [name for _, name in chosen], probs, answers)

    def predict(self, x, fs: float | None = None):
        """The label of one signal, or of each of a list of signals.

        Args:
            x: one signal: a NumPy array in mV, 1-D `(n_samples,)` (one lead) or 2-D `(n_samples, n_leads)`,
                or an :class:`~ecgrhythm.records.EcgRecord`; or a list (or tuple) of signals, of any lengths.
                A plain list of numbers is refused (it reads as a list of signals): pass `np.asarray(x)`.
            fs: sampling rate of the arrays in Hz, required for them; a record carries its own rate, and
                `fs`, if given, must agree with it.

        Returns:
            The label (str, one of `classes_`) of one signal, or a list of labels for a list. The label of
            the calibrated whole-record probabilities (:meth:`predict_proba`).

        Raises:
            ValueError: `fs` is missing for an array, invalid, or disagrees with a record's rate; `x` is not a
                signal or a list of signals.
            RecordError: a signal is unusable (shorter than 2 s, NaN samples, lacks the model's leads, ...).
            NotFittedError: the classifier was not created with :meth:`load`.

        Example:
            >>> import ecgrhythm
            >>> clf = ecgrhythm.RhythmClassifier.load()                # the shipped model
            >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")
            >>> signal = record.signal[:, 0]                           # 1-D, in mV, 300 Hz
            >>> clf.predict(signal, fs=300)
            'A'
            >>> clf.predict([signal, signal[:3000]], fs=300)           # a list of signals
            ['A', 'A']
            >>> clf.predict(record)                                    # a record carries its rate
            'A'
        """
        return self._predict_signals(x, fs)[1]

    def predict_proba(self, x, fs: float | None = None) -> np.ndarray:
        """The class probabilities of one signal, or of each of a list of signals.

        The calibrated whole-record probabilities, as :meth:`predict_records` gives them.

        Args:
            x: one signal or a list of signals, as for :meth:`predict`.
            fs: the signals' sampling rate in Hz, as for :meth:`predict`.

        Returns:
            float array `(n_classes,)` for one signal, `(n_signals, n_classes)` for a list; its columns are
            `classes_`.

        Raises:
            As :meth:`predict`.

        Example:
            >>> import ecgrhythm
            >>> clf = ecgrhythm.RhythmClassifier.load()
            >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")
            >>> clf.classes_
            ['N', 'A', 'O', '~']
            >>> clf.predict_proba(record.signal[:, 0], fs=300).round(2)
            array([0.01, 0.96, 0.03, 0.  ])
            >>> clf.predict_proba([record, record.signal[:3000]], fs=300).shape
            (2, 4)
        """
        return self._predict_signals(x, fs)[0]

    def _predict_signals(self, x, fs) -> tuple[np.ndarray, str | list[str]]:
        """The probabilities and labels of :meth:`predict` and :meth:`predict_proba`: one row and label for one signal."""
        self._check_fitted()
        signals, single = signal_list(x, "x", (np.ndarray, EcgRecord))
        names = ["x"] if single else [f"x[{i}]" for i in range(len(signals))]
        prediction = self.predict_records(as_records(signals, fs, names))
        if single:
            return prediction.probabilities[0], prediction.labels[0]
        return prediction.probabilities, prediction.labels

    def predict_arrays(self, arrays, fs: float, names=None) -> Prediction:
        """Classify signals given as NumPy arrays in mV, sampled at `fs` Hz.

        Args:
            arrays: one array, 1-D `(n_samples,)` (one lead) or 2-D `(n_samples, n_leads)`, or a list of them.
            fs: their sampling rate in Hz.
            names: the arrays' names in the result, one per array (default `array0`, `array1`, ...).

        Returns:
            The names, labels and calibrated probabilities `(n_arrays, n_classes)`.

        Raises:
            ValueError: `fs` is missing or invalid, `names` has another length, or an array has another shape.
            RecordError: an array is unusable (shorter than 2 s, NaN samples, ...).
            NotFittedError: the classifier was not created with :meth:`load`.

        Example:
            >>> import ecgrhythm
            >>> clf = ecgrhythm.RhythmClassifier.load()
            >>> signal = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea").signal[:, 0]
            >>> clf.predict_arrays(signal, fs=300).labels
            ['A']
        """
        self._check_fitted()
        fs = check_array_fs(fs)
        arrays = signal_list(arrays, "arrays", (np.ndarray,))[0]
        names = [f"array{i}" for i in range(len(arrays))] if names is None else list(names)
        if len(names) != len(arrays):
            raise ValueError(f"Invalid argument `names`: expected one name per array ({len(arrays)}). Received: {len(names)} names")
        return self.predict_records(as_records(arrays, fs, names, "arrays"))
