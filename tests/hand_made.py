"""A hand-made confusion matrix and label lists that produce it, shared by the metrics and report tests."""

import numpy as np

CLASSES = ["N", "A", "O", "~"]

# Hand-made confusion matrix (rows: true class, columns: predicted class).
HAND_CM = np.array(
    [
        [5, 1, 1, 0],  # true N: 7
        [1, 3, 0, 0],  # true A: 4
        [2, 0, 4, 1],  # true O: 7
        [0, 0, 1, 1],  # true ~: 2
    ]
)


def labels_from(cm, seed=0):
    """Label lists whose confusion matrix is `cm`, in a shuffled order."""
    pairs = [(CLASSES[i], CLASSES[j]) for i in range(4) for j in range(4) for _ in range(cm[i, j])]
    order = np.random.default_rng(seed).permutation(len(pairs))
    return [pairs[k][0] for k in order], [pairs[k][1] for k in order]
