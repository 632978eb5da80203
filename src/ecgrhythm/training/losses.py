"""Losses and loss weights of a training run: class-weighted samples (one label) or weighted positives (several)."""

from __future__ import annotations

import numpy as np

__all__ = ["class_weights", "positive_weights", "weighted_binary_crossentropy", "loss_and_weights"]


def class_weights(labels, n_classes: int, method: str) -> np.ndarray:
    """Per-class loss weights: `n / (n_classes * count)` for `"balanced"`, ones for `"none"`."""
    if method == "none":
        return np.ones(n_classes)
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    return np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)


def positive_weights(targets: np.ndarray, method: str, cap: float = 50.0) -> np.ndarray:
    """Multi-label loss weight of the positives of each class: `negatives / positives`, capped.

    Rare codes get heavier positives, so the network does not learn to never predict them.
    """
    if method == "none":
        return np.ones(targets.shape[1])
    pos = targets.sum(axis=0)
    return np.clip((len(targets) - pos) / np.maximum(pos, 1), 1.0, cap)


def weighted_binary_crossentropy(pos_weight):
    """Binary cross-entropy with the positives of class `k` weighted by `pos_weight[k]`."""
    from keras import ops

    weight = np.asarray(pos_weight, dtype="float32")

    def loss(y_true, y_pred):
        eps = 1e-7
        p = ops.clip(y_pred, eps, 1 - eps)
        y = ops.cast(y_true, p.dtype)
        terms = -(weight * y * ops.log(p) + (1 - y) * ops.log(1 - p))
        return ops.mean(terms, axis=-1)

    return loss


def loss_and_weights(y_train, n_classes: int, multilabel: bool, method: str):
    """`(loss, sample_weight)`: weighted binary cross-entropy for multi-hot targets, else class-weighted samples.

    Args:
        y_train: class indices `(n,)`, or multi-hot targets `(n, n_classes)` when `multilabel`.
        n_classes: output classes.
        multilabel: whether `y_train` is multi-hot.
        method: `TrainConfig.class_weighting`.

    Returns:
        A Keras loss (name or function) and the per-sample weights `(n,)`, or None for multi-hot targets.
    """
    if multilabel:
        return weighted_binary_crossentropy(positive_weights(y_train, method)), None
    return "sparse_categorical_crossentropy", class_weights(y_train, n_classes, method)[y_train]
