"""The rhythm timeline of a record: the prediction of each of the consecutive windows that cover it.

:class:`TimelineMixin` gives :class:`~ecgrhythm.inference.classifier.RhythmClassifier` its
:meth:`~TimelineMixin.predict_segments` and :meth:`~TimelineMixin.predict_with_segments`, built on the
classifier's :meth:`prepare`, :meth:`predict_prepared` (the one road to the networks), :meth:`calibrate`
and :meth:`labels_from_proba`, as scikit-learn's mixins build on an estimator's own methods.
"""

from __future__ import annotations

import numpy as np

from ecgrhythm.inference.predictions import Segment, window_bounds
from ecgrhythm.records import EcgRecord

__all__ = ["TimelineMixin"]


class TimelineMixin:
    """The rhythm timeline of a classifier (see the module docstring)."""

    def predict_segments(self, record: EcgRecord, window_s: float, *, signal: np.ndarray | None = None) -> list[Segment]:
        """The rhythm timeline: the prediction of each of the consecutive windows covering the record.

        The windows are the :func:`~ecgrhythm.inference.predictions.window_bounds` of about `window_s`
        seconds of the prepared signal, each classified on its own, with the networks' own probabilities:
        the model's calibration, fitted on whole records, is not applied to windows (each segment's
        `calibrated` is False).

        Args:
            record: the record.
            window_s: window length in seconds (positive).
            signal: `prepare(record)` when the caller has it already.

        Returns:
            The segments in time order, from 0 to the record's duration.

        Raises:
            RecordError: the record lacks the leads the model needs.
            NonFiniteOutputError: the network gave NaN or infinite probabilities.
            ValueError: `window_s` is not positive, or the model has a fixed input length
                (:meth:`require_whole_records`).

        Example:
            >>> import ecgrhythm
            >>> clf = ecgrhythm.RhythmClassifier.load()
            >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")   # 30 s
            >>> [(s.start_s, s.end_s, s.label) for s in clf.predict_segments(record, 10.0)]
            [(0.0, 10.0, 'A'), (10.0, 20.0, 'A'), (20.0, 30.0, 'A')]
        """
        return self._timeline(record, window_s, signal, with_record=False)[1]

    def predict_with_segments(self, record: EcgRecord, window_s: float, *, signal: np.ndarray | None = None) -> tuple[np.ndarray, list[Segment]]:
        """The record's probabilities and its rhythm timeline (:meth:`predict_segments`) from one call of the networks.

        The same numbers as :meth:`predict_prepared` on the prepared record (calibrated) and :meth:`predict_segments`
        (not calibrated), with the networks run once over the record and its windows together (an ensemble
        swaps its weights once, not twice).

        Args:
            record: the record.
            window_s: window length in seconds (positive).
            signal: `prepare(record)` when the caller has it already.

        Returns:
            `(probabilities, segments)`: float array `(n_classes,)` and the segments in time order.

        Raises:
            As :meth:`predict_segments`.

        Example:
            >>> import ecgrhythm
            >>> clf = ecgrhythm.RhythmClassifier.load()
            >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")
            >>> probabilities, segments = clf.predict_with_segments(record, 10.0)
            >>> probabilities.shape, len(segments)
            ((4,), 3)
        """
        return self._timeline(record, window_s, signal, with_record=True)

    def _timeline(self, record: EcgRecord, window_s: float, signal, *, with_record: bool) -> tuple[np.ndarray | None, list[Segment]]:
        self.require_whole_records("a rhythm timeline")
        if not window_s > 0:
            raise ValueError(f"Invalid argument `window_s`: expected a positive number of seconds. Received: window_s={window_s!r}")
        signal = self.prepare(record) if signal is None else signal
        bounds = window_bounds(len(signal), int(round(window_s * self.preprocess_.fs)))
        windows = [signal[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        probs = self.predict_prepared([signal, *windows] if with_record else windows, calibrated=False)
        whole, probs = (self.calibrate(probs[:1])[0], probs[1:]) if with_record else (None, probs)
        times = bounds / len(signal) * record.duration_s
        labels = self.labels_from_proba(probs)
        return whole, [Segment(float(times[i]), float(times[i + 1]), label, probs[i], calibrated=False) for i, label in enumerate(labels)]
