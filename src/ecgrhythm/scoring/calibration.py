"""Calibration of single-label probabilities: the top-class ECE, prior correction and temperature scaling.

:func:`top_class_calibration` measures the top-class expected calibration error
(ECE) over equal-width confidence bins, with the per-bin values of a reliability
diagram (a :class:`Calibration`); :func:`fit_temperature` fits one temperature,
one per class, or one per predicted class by negative log-likelihood, and
:func:`apply_temperature` scales probabilities by it (`softmax(log(p) / T)`).
:func:`apply_class_prior` multiplies probabilities by the class frequencies of the
training records and renormalises: a network trained with balanced class weights
estimates the posterior under equal class priors, and this gives it back under
the training records' priors (Saerens, Latinne & Decaestecker, Neural Computation
2002), which moves labels from rare classes to common ones where the network is
unsure. :func:`calibrate_probabilities` applies a model's prior, then its temperature.
Pure functions of probabilities and class indices: no files, no figures.

Example:
>>> apply_temperature([[0.8, 0.2]], 2.0).round(4)  # softmax(log(p) / 2): sqrt(0.8) : sqrt(0.2) = 2 : 1
array([[0.6667, 0.3333]])
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

__all__ = [
    "CALIBRATION_KEYS",
    "checked_temperature",
    "checked_class_prior",
    "checked_calibration",
    "class_frequencies",
    "apply_class_prior",
    "calibrate_probabilities",
    "invalid_probability_rows",
    "Calibration",
    "top_class_calibration",
    "fit_temperature",
    "apply_temperature",
    "ECE_BINS",
    "MIN_PREDICTED_ROWS",
    "PRIOR_SUM_TOLERANCE",
    "TEMPERATURE_BY_PREDICTED_CLASS",
]

ECE_BINS = 15
MIN_PREDICTED_ROWS = 10  # rows of a predicted class below which fit_temperature(per_predicted_class=True) keeps T = 1
CALIBRATION_KEYS = ("temperature", "temperature_by", "class_prior")  # a model's calibration, as config.json and ONNX metadata store it
PRIOR_SUM_TOLERANCE = 1e-3  # how far a stored class prior's sum may be from 1 (priors rounded by hand)
TEMPERATURE_BY_PREDICTED_CLASS = "predicted_class"  # a model's "temperature_by" for apply_temperature(..., per_predicted_class=True)
PROBABILITY_TOLERANCE = 1e-3  # how far float32 probabilities may stray from [0, 1], and softmax rows' sums from 1


def checked_temperature(value, by, n_classes: int, source: str):
    """A stored temperature and its `temperature_by`, validated (model folders and exported files store both).

    Args:
        value: the stored temperature: one positive number, or one per class.
        by: None, or `TEMPERATURE_BY_PREDICTED_CLASS` (then one temperature per class).
        n_classes: the model's number of classes.
        source: where they were stored, for the error message (`config.json`, an ONNX file's metadata).

    Returns:
        `(temperature, by)`: a float or a list of `n_classes` floats, and `by`.

    Raises:
        ValueError: `invalid "temperature_by" in SOURCE: ...` or `invalid "temperature" in SOURCE: ...`.
    """
    if by not in (None, TEMPERATURE_BY_PREDICTED_CLASS):
        raise ValueError(f'invalid "temperature_by" in {source}: expected "{TEMPERATURE_BY_PREDICTED_CLASS}" or none. Received: {by!r}')
    array = np.asarray(value, dtype=float) if isinstance(value, (int, float, list)) and not isinstance(value, bool) else None
    if array is None or array.shape not in (((n_classes,),) if by else ((), (n_classes,))) or not np.all(np.isfinite(array) & (array > 0)):
        expected = f'one per class ({n_classes}), as "temperature_by" is {by!r}' if by else f"one positive number or one per class ({n_classes})"
        raise ValueError(f'invalid "temperature" in {source}: expected {expected}. Received: {value!r}')
    return (float(array) if array.ndim == 0 else array.tolist()), by


def checked_class_prior(value, n_classes: int, source: str):
    """A class prior, validated (model folders and exported files store it as `"class_prior"`).

    Args:
        value: None (no prior correction), or a list of one positive number per class, summing to 1 (within
            :data:`PRIOR_SUM_TOLERANCE`: :func:`apply_class_prior` renormalises anyway).
        n_classes: the model's number of classes.
        source: where it was stored, for the error message.

    Returns:
        None, or a list of `n_classes` floats.

    Raises:
        ValueError: `invalid "class_prior" in SOURCE: ...`.
    """
    if value is None:
        return None
    numbers_only = isinstance(value, list) and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)
    array = np.asarray(value, dtype=float) if numbers_only else None
    if array is None or array.shape != (n_classes,) or not np.all(np.isfinite(array) & (array > 0)) or abs(array.sum() - 1) > PRIOR_SUM_TOLERANCE:
        total = f" (sum {array.sum():.6g})" if array is not None and array.shape == (n_classes,) else ""
        raise ValueError(
            f'invalid "class_prior" in {source}: expected none, or {n_classes} positive numbers summing to 1. Received: {value!r}{total}'
        )
    return array.tolist()


def checked_calibration(config: dict, source: str) -> dict:
    """The calibration a model configuration stores (:data:`CALIBRATION_KEYS`), validated, with its defaults filled in.

    Args:
        config: a model's parsed `config.json` (model folders) or its copy in an exported file's metadata.
        source: where it was stored, for the error messages.

    Returns:
        `{"temperature": ..., "temperature_by": ..., "class_prior": ...}` as :func:`checked_temperature` and
        :func:`checked_class_prior` give them (1.0 and None where absent).

    Raises:
        KeyError: the configuration has no `"classes"`.
        ValueError: `invalid "temperature" in SOURCE: ...`, or the same for `"temperature_by"` or `"class_prior"`.
    """
    n_classes = len(config["classes"])
    temperature, by = checked_temperature(config.get("temperature", 1.0), config.get("temperature_by"), n_classes, source)
    return {"temperature": temperature, "temperature_by": by, "class_prior": checked_class_prior(config.get("class_prior"), n_classes, source)}


def class_frequencies(targets, n_classes: int) -> np.ndarray:
    """The share of each class among `targets` (class indices): a prior for :func:`apply_class_prior`.

    Raises:
        ValueError: no targets, an index out of range, or a class without any record (its prior would be 0,
            and the class never predicted).
    """
    targets = np.asarray(targets)
    if not len(targets) or not np.issubdtype(targets.dtype, np.integer) or targets.min() < 0 or targets.max() >= n_classes:
        raise ValueError(f"Invalid argument `targets`: expected class indices 0 to {n_classes - 1}, at least one. Received: {targets[:10].tolist()}")
    counts = np.bincount(targets, minlength=n_classes)
    if not counts.all():
        raise ValueError(f"Invalid argument `targets`: classes {np.flatnonzero(counts == 0).tolist()} have no record, so no prior")
    return counts / counts.sum()


def apply_class_prior(probabilities, prior) -> np.ndarray:
    """Probabilities multiplied by a class prior and renormalised: `p * prior / sum(p * prior)`.

    For a network trained with balanced class weights (each class weighted by the inverse of its frequency),
    whose outputs estimate the posterior under equal class priors, `prior` = the training records' class
    frequencies gives the posterior under those frequencies (:func:`class_frequencies`).

    Example:
    >>> apply_class_prior([[0.5, 0.5]], [0.8, 0.2]).round(2)
    array([[0.8, 0.2]])
    """
    probs, prior = np.asarray(probabilities, dtype=float), np.asarray(prior, dtype=float)
    if probs.ndim != 2 or prior.shape != (probs.shape[1],) or not np.all(prior > 0):
        raise ValueError(
            f"Invalid arguments: expected probabilities (n_records, n_classes) and one positive prior per class. "
            f"Received: probabilities.shape={probs.shape}, prior={prior.tolist()}"
        )
    weighted = probs * prior
    return weighted / weighted.sum(axis=1, keepdims=True)


def calibrate_probabilities(probabilities, *, class_prior=None, temperature=1.0, temperature_by=None) -> np.ndarray:
    """A model's calibration of its probabilities: its class prior (if any), then its temperature (if not 1).

    The arguments are those of a model's configuration (:func:`checked_class_prior`, :func:`checked_temperature`).
    """
    if class_prior is not None:
        probabilities = apply_class_prior(probabilities, class_prior)
    if np.all(np.asarray(temperature) == 1.0):
        return probabilities
    return apply_temperature(probabilities, temperature, per_predicted_class=temperature_by == TEMPERATURE_BY_PREDICTED_CLASS)


def invalid_probability_rows(probabilities, *, softmax: bool) -> np.ndarray:
    """Indices of the rows that are no probabilities: a NaN or infinite value, a value outside [0, 1], or (`softmax`) a
    sum other than 1 (within :data:`PROBABILITY_TOLERANCE`), as a network of zeros gives; no label can be read from them.

    Example:
    >>> invalid_probability_rows([[0.5, 0.5], [0.0, 0.0], [np.nan, 1.0]], softmax=True).tolist()
    [1, 2]
    """
    probs = np.asarray(probabilities, dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(probs).all(axis=1) | (probs < -PROBABILITY_TOLERANCE).any(axis=1) | (probs > 1 + PROBABILITY_TOLERANCE).any(axis=1)
        if softmax:
            bad |= ~(np.abs(probs.sum(axis=1) - 1) <= PROBABILITY_TOLERANCE)
    return np.flatnonzero(bad)


@dataclasses.dataclass
class Calibration:
    """Top-class calibration of single-label probabilities, by equal-width confidence bins.

    A record falls in bin `b` when its top-class probability lies in
    `(edges[b], edges[b + 1]]` (the first bin also holds 0).

    Attributes:
        ece: expected calibration error, `sum_b count[b] / n * |accuracy[b] - confidence[b]|`.
        edges: bin edges `(n_bins + 1,)`, from 0 to 1.
        confidence: mean top-class probability of the records of each bin `(n_bins,)` (NaN where empty).
        accuracy: share of those records whose top class is the true class `(n_bins,)` (NaN where empty).
        count: records in each bin `(n_bins,)`.
    """

    ece: float
    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    def to_dict(self) -> dict:
        """JSON-serialisable data; empty bins have `None` for confidence and accuracy."""
        listed = lambda values: [None if np.isnan(v) else float(v) for v in values]  # noqa: E731
        return {
            "ece": self.ece,
            "bins": len(self.count),
            "edges": np.asarray(self.edges).tolist(),
            "confidence": listed(self.confidence),
            "accuracy": listed(self.accuracy),
            "count": np.asarray(self.count).tolist(),
        }


def _single_label_inputs(probabilities, targets) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probabilities, dtype=float)
    targets = np.asarray(targets)
    if probs.ndim != 2 or targets.shape != (len(probs),) or not len(probs):
        raise ValueError(
            "Invalid arguments `probabilities` and `targets`: expected probabilities (n_records, n_classes) and one class index "
            f"per record (n_records,), n_records > 0. Received: probabilities.shape={probs.shape}, targets.shape={targets.shape}"
        )
    if not np.issubdtype(targets.dtype, np.integer) or targets.min() < 0 or targets.max() >= probs.shape[1]:
        received = np.unique(targets)[:10].tolist()
        raise ValueError(f"Invalid argument `targets`: expected class indices 0 to {probs.shape[1] - 1}. Received: {received}")
    return probs, targets


def top_class_calibration(probabilities, targets, n_bins: int = ECE_BINS) -> Calibration:
    """Expected calibration error of the top class, with the per-bin values of a reliability diagram.

    Args:
        probabilities: predicted probabilities `(n_records, n_classes)`.
        targets: true class index of each record `(n_records,)`.
        n_bins: number of equal-width confidence bins over [0, 1].

    Returns:
        A :class:`Calibration`.

    Example:
    >>> calibration = top_class_calibration([[0.9, 0.1], [0.25, 0.75]], [0, 0])
    >>> round(calibration.ece, 3)  # (|1 - 0.9| + |0 - 0.75|) / 2
    0.425
    """
    probs, targets = _single_label_inputs(probabilities, targets)
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"Invalid argument `n_bins`: expected a positive integer. Received: n_bins={n_bins!r}")
    n_bins = int(n_bins)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == targets).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / count
        accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / count
    gaps = np.abs(np.nan_to_num(accuracy) - np.nan_to_num(mean_confidence))
    return Calibration(float(np.sum(count / len(probs) * gaps)), edges, mean_confidence, accuracy, count)


def _scaled_log_probabilities(log_probs: np.ndarray, temperature) -> np.ndarray:
    scaled = log_probs / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    return scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))


def _log_probabilities(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(probs, 1e-12, None))


def apply_temperature(probabilities, temperature, *, per_predicted_class: bool = False) -> np.ndarray:
    """Probabilities scaled by a temperature: `softmax(log(p) / T)`.

    Args:
        probabilities: probabilities `(n_records, n_classes)`.
        temperature: one positive temperature, or one per class `(n_classes,)`;
            T > 1 softens the probabilities, T < 1 sharpens them, T = 1 keeps them.
        per_predicted_class: `temperature` has one entry per class and each row is scaled as a whole
            by the entry of its predicted class (its argmax), which therefore stays the argmax;
            otherwise a per-class temperature scales each column by its own entry.

    Returns:
        float array `(n_records, n_classes)` whose rows sum to 1.
    """
    probs = np.asarray(probabilities, dtype=float)
    temperature = np.asarray(temperature, dtype=float)
    if probs.ndim != 2:
        raise ValueError(f"Invalid argument `probabilities`: expected an array (n_records, n_classes). Received: shape {probs.shape}")
    shapes = ((probs.shape[1],),) if per_predicted_class else ((), (probs.shape[1],))
    if temperature.shape not in shapes or not np.all(temperature > 0):
        expected = (
            f"{probs.shape[1]} positive numbers (one per predicted class)" if per_predicted_class else f"one positive number or {probs.shape[1]}"
        )
        raise ValueError(f"Invalid argument `temperature`: expected {expected}. Received: {temperature.tolist()}")
    if per_predicted_class:
        temperature = temperature[probs.argmax(axis=1)][:, None]
    return np.exp(_scaled_log_probabilities(_log_probabilities(probs), temperature))


def _nll_temperature(log_probs: np.ndarray, targets: np.ndarray, size: int) -> np.ndarray:
    """The `size` temperatures (one, or one per class) that minimise the NLL of `softmax(log_probs / T)`."""
    from scipy.optimize import minimize

    rows = np.arange(len(targets))

    def nll(log_t):
        return -_scaled_log_probabilities(log_probs, np.exp(log_t))[rows, targets].mean()

    limit = np.log(50.0)
    return np.exp(minimize(nll, np.zeros(size), method="L-BFGS-B", bounds=[(-limit, limit)] * size).x)


def fit_temperature(probabilities, targets, *, per_class: bool = False, per_predicted_class: bool = False) -> np.ndarray:
    """The temperature that minimises the negative log-likelihood of `apply_temperature(probabilities, T)`.

    Fitted on log T (so T stays positive) by L-BFGS-B, within 0.02 <= T <= 50.
    Fit it on records the network was not trained on (validation or out-of-fold).

    With `per_predicted_class` (top-label calibration conditioned on the predicted class, Gupta & Ramdas,
    ICLR 2022), entry k is the single temperature fitted on the rows whose argmax is k; a class predicted
    for fewer than :data:`MIN_PREDICTED_ROWS` rows (or never) gets 1.0, its rows left unscaled.

    Args:
        probabilities: predicted probabilities `(n_records, n_classes)`.
        targets: true class index of each record `(n_records,)`.
        per_class: fit one temperature per class (column) instead of one for all.
        per_predicted_class: fit one temperature per predicted class, for
            `apply_temperature(..., per_predicted_class=True)`; exclusive with `per_class`.

    Returns:
        float array: shape `()` (one temperature) or `(n_classes,)`.
    """
    if per_class and per_predicted_class:
        raise ValueError("Invalid arguments: `per_class` and `per_predicted_class` are exclusive; pass at most one")
    probs, targets = _single_label_inputs(probabilities, targets)
    log_probs = _log_probabilities(probs)
    if per_predicted_class:
        predicted = probs.argmax(axis=1)
        return np.array(
            [
                _nll_temperature(log_probs[predicted == k], targets[predicted == k], 1)[0]
                if np.count_nonzero(predicted == k) >= MIN_PREDICTED_ROWS
                else 1.0
                for k in range(probs.shape[1])
            ]
        )
    temperature = _nll_temperature(log_probs, targets, probs.shape[1] if per_class else 1)
    return temperature if per_class else temperature.reshape(())
