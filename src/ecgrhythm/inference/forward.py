"""Running a network over preprocessed signals of any length, in fixed-shape batches and bounded memory.

Signals are padded to one of a few lengths (buckets) and run `BATCH_SIZE` at a time with their masks, so
JAX compiles the network once per length; signals longer than the largest bucket are cut into near-equal
chunks whose probabilities are averaged by length. :func:`run_signals` does it for any function of a padded,
masked batch (the classifier's backends give one per network, see :mod:`ecgrhythm.inference.backend`);
:func:`predict_signals` for one Keras network (training's validation, the studies).
"""

from __future__ import annotations

import collections
import math

import numpy as np

from ecgrhythm.preprocessing.batching import bucket_for, inference_batches

__all__ = [
    "run_signals",
    "predict_signals",
    "keras_batch_function",
    "split_long",
    "chunk_bounds",
    "average_by_owner",
    "BATCH_SIZE",
    "MIN_BUCKET_SIGNALS",
]

BATCH_SIZE = 16
MIN_BUCKET_SIGNALS = 32


def split_long(signal: np.ndarray, max_length: int) -> list[np.ndarray]:
    """Split `(n, leads)` into the fewest near-equal chunks of at most `max_length` samples (see :func:`chunk_bounds`)."""
    if len(signal) <= max_length:
        return [signal]
    bounds = chunk_bounds(len(signal), max_length)
    return [signal[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def chunk_bounds(n: int, max_length: int) -> np.ndarray:
    """Bounds of the fewest near-equal chunks of at most `max_length` samples covering `n`: int array `(k + 1,)` from 0 to `n`."""
    k = max(1, math.ceil(n / max_length))
    return np.linspace(0, n, k + 1).astype(int)


def _batch_buckets(lengths, buckets, min_count: int = MIN_BUCKET_SIGNALS) -> tuple[int, ...]:
    """The padded lengths to use for signals of `lengths` (each at most `buckets[-1]`).

    A bucket holding fewer than `min_count` signals is merged into the next
    larger bucket in use: its few signals ride in that bucket's batches, which
    costs less than compiling the network for one more shape (seconds on a
    CPU). Padding never changes a prediction, so this only trades time.
    """
    counts = collections.Counter(bucket_for(n, buckets) for n in lengths)
    used = sorted(counts)
    if not used:
        return tuple(buckets)
    return tuple(b for b in used[:-1] if counts[b] >= min_count) + (used[-1],)


def run_signals(run, signals, buckets, batch_size: int = BATCH_SIZE, *, n_classes: int) -> np.ndarray:
    """Class probabilities of preprocessed signals of any length, from a function of padded, masked batches.

    Signals longer than the largest bucket are cut into chunks that fit; a
    signal's probabilities are the length-weighted mean over its chunks, so
    memory stays bounded by one batch of the largest bucket.

    Args:
        run: `run(x, mask)` gives the probabilities `(batch_size, n_classes)` of a batch `x` float32
            `(batch_size, length, n_channels)` padded at the end, with its mask bool `(batch_size, length)`
            (rows of padding alone included).
        signals: list of float32 arrays `(n_i, n_channels)` at the model's rate.
        buckets: padded lengths (multiples of the model's downsampling factor).
        batch_size: rows per batch.
        n_classes: columns of the probabilities.

    Returns:
        float array `(len(signals), n_classes)`.
    """
    chunks, owners, weights = [], [], []
    for i, s in enumerate(signals):
        for c in split_long(s, buckets[-1]):
            chunks.append(c)
            owners.append(i)
            weights.append(len(c))
    chunk_probs = np.zeros((len(chunks), n_classes), dtype=np.float64)
    padded = _batch_buckets(weights, buckets)
    for idx, x, mask in inference_batches(chunks, padded, batch_size):
        chunk_probs[idx] = np.asarray(run(x, mask))[: len(idx)]
    return average_by_owner(chunk_probs, owners, weights, len(signals))


def predict_signals(model, signals, buckets, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """:func:`run_signals` with one Keras network (from :func:`ecgrhythm.networks.registry.build_network`).

    Returns:
        float array `(len(signals), n_classes)`.
    """
    return run_signals(keras_batch_function(model), signals, buckets, batch_size, n_classes=model.output.shape[-1])


def keras_batch_function(model):
    """`run(x, mask)` of a Keras network for :func:`run_signals`: its probabilities of a padded, masked batch."""

    def run(x, mask):
        return np.asarray(model.predict_on_batch({"signal": x, "mask": mask}))

    return run


def average_by_owner(values, owners, weights, n_owners: int) -> np.ndarray:
    """Weighted mean of the rows of `values` per owner: row `i` belongs to record `owners[i]`.

    Returns:
        float array `(n_owners, values.shape[1])`; zeros for an owner without rows.
    """
    owners = np.asarray(owners, dtype=int)
    weights = np.asarray(weights, dtype=np.float64)
    out = np.zeros((n_owners, np.shape(values)[1]))
    np.add.at(out, owners, np.asarray(values) * weights[:, None])
    out /= np.maximum(np.bincount(owners, weights=weights, minlength=n_owners), 1.0)[:, None]
    return out
