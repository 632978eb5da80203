"""Scores: the official CinC 2017 score, per-class F1 and the confusion matrix."""

from __future__ import annotations

import numpy as np

__all__ = ["confusion_matrix", "f1_per_class", "cinc2017_score", "CINC2017_SCORED"]

CINC2017_SCORED = ("N", "A", "O")


def confusion_matrix(y_true, y_pred, classes) -> np.ndarray:
    """Counts `(n_classes, n_classes)`: row = true class, column = predicted class."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    return sk_confusion_matrix(list(y_true), list(y_pred), labels=list(classes))


def f1_per_class(cm: np.ndarray, classes) -> dict[str, float]:
    """F1 of each class from a confusion matrix: `2 TP / (true count + predicted count)`.

    A class that is neither present nor predicted gets F1 = 0.
    """
    cm = np.asarray(cm)
    tp = np.diag(cm).astype(float)
    denom = cm.sum(axis=1) + cm.sum(axis=0)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return {c: float(v) for c, v in zip(classes, f1)}


def cinc2017_score(cm: np.ndarray, classes) -> float:
    """The official CinC 2017 score: mean F1 of classes N, A and O."""
    f1 = f1_per_class(cm, classes)
    return float(np.mean([f1[c] for c in CINC2017_SCORED]))
