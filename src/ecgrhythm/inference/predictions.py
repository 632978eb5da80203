"""What a classifier gives: the predictions of several records, and the segments of a record's rhythm timeline."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["Prediction", "Segment", "window_bounds"]


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
        af_burden: the share of each record's time in AF episodes, 0 to 1, for a record longer than the
            networks' training length classified with its episodes; `None` for the others.
        record_class: the CPSC 2021 class of such a record (`non-AF`, `paroxysmal`, `persistent`); `None` for
            the others. When it is given, the label follows it: `A` for paroxysmal or persistent AF, else the
            most probable of the other classes; the probabilities stay the networks' over the whole record
            (see :mod:`ecgrhythm.episodes.answers`, which gives them).

    What :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.predict_records` and
    :meth:`~ecgrhythm.inference.classifier.RhythmClassifier.predict_arrays` return.

    Example:
        >>> import ecgrhythm
        >>> clf = ecgrhythm.RhythmClassifier.load()
        >>> result = clf.predict_records(["../shared/data/cinc2017/A00001", "../shared/data/cinc2017/A00004"])
        >>> result.names, result.labels, result.classes
        (['A00001', 'A00004'], ['N', 'A'], ['N', 'A', 'O', '~'])
        >>> result.probabilities.round(2)                           # calibrated, one row per record
        array([[0.97, 0.  , 0.03, 0.  ],
               [0.01, 0.96, 0.03, 0.  ]])
    """

    names: list[str]
    labels: list[str]
    probabilities: np.ndarray
    classes: list[str]
    leads: list[str | None] | None = None
    af_burden: list[float | None] | None = None
    record_class: list[str | None] | None = None

    def __post_init__(self):
        if self.leads is None:  # no lead was chosen for any record (a multi-lead model, or arrays)
            self.leads = [None] * len(self.names)
        if self.af_burden is None:  # no record was answered with its episodes
            self.af_burden = [None] * len(self.names)
        if self.record_class is None:
            self.record_class = [None] * len(self.names)


@dataclasses.dataclass(frozen=True)
class Segment:
    """The prediction for one window of a record (see :meth:`RhythmClassifier.predict_segments`).

    Attributes:
        start_s: start of the window, seconds from the record's start.
        end_s: its end, seconds.
        label: predicted label of the window.
        probabilities: array `(n_classes,)`, in the classifier's `classes_` order.
        calibrated: whether `probabilities` carry the model's calibration: False, a window gets the networks'
            own probabilities (the calibration was fitted on whole records).
    """

    start_s: float
    end_s: float
    label: str
    probabilities: np.ndarray
    calibrated: bool = False


def window_bounds(n: int, window: int) -> np.ndarray:
    """Near-equal consecutive windows of about `window` samples covering `n` samples.

    Returns:
        int array `(k + 1,)` of bounds from 0 to `n`, `k = max(1, round(n / window))`.
    """
    k = max(1, round(n / window))
    return np.linspace(0, n, k + 1).round().astype(int)
