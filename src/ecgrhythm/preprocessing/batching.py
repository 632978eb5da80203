"""Batches of variable-length records: bucket padding with boolean masks.

Records are padded at the end ("post", as recommended for RNNs) to the
smallest of a few bucket lengths, each a multiple of the network's
downsampling factor, and carry a boolean mask (True = real sample). With the
same few shapes over and over, JAX compiles once per bucket.

Reading, preprocessing and batching never import Keras: `WindowSequence`
(training batches, a `keras.utils.PyDataset`) is built on first use, so an
onnxruntime-only classifier can use this module without Keras or JAX.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["bucket_lengths", "bucket_for", "window_length", "pad_batch", "WindowSequence", "inference_batches"]  # noqa: F822 (built lazily)


def bucket_lengths(fs: float, downsampling: int, seconds=(10, 20, 30, 45, 65)) -> tuple[int, ...]:
    """Bucket lengths (samples) for durations in `seconds`, rounded up to a multiple of `downsampling`."""
    return tuple(int(math.ceil(s * fs / downsampling) * downsampling) for s in seconds)


def window_length(seconds: float, fs: float, downsampling: int) -> int:
    """A training window of about `seconds` at `fs`, in samples: the nearest multiple of `downsampling`."""
    return int(round(seconds * fs / downsampling)) * downsampling


def bucket_for(n_samples: int, buckets) -> int:
    """The smallest bucket that holds `n_samples` (the largest bucket if none does)."""
    for b in buckets:
        if n_samples <= b:
            return b
    return buckets[-1]


def pad_batch(signals, length: int, batch_size: int | None = None):
    """Pad signals at the end to `length` and build their masks.

    Args:
        signals: list of float32 arrays `(n_i, n_leads)`, each `n_i <= length`.
        length: padded length.
        batch_size: if given, add all-padding rows so the batch always has this
            many rows (one compiled shape for every batch).

    Returns:
        `(x, mask)`: x float32 `(batch, length, n_leads)`, mask bool `(batch, length)`.
    """
    rows = batch_size or len(signals)
    n_leads = signals[0].shape[1]
    x = np.zeros((rows, length, n_leads), dtype=np.float32)
    mask = np.zeros((rows, length), dtype=bool)
    for i, s in enumerate(signals):
        n = min(len(s), length)
        x[i, :n] = s[:n]
        mask[i, :n] = True
    return x, mask


def __getattr__(name):
    if name == "WindowSequence":
        return _window_sequence_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _window_sequence_class():
    """Define `WindowSequence` (it subclasses a Keras class, so Keras is imported here, once)."""
    import keras

    from ecgrhythm.preprocessing.augmentation import augment_batch

    class WindowSequence(keras.utils.PyDataset):
        """Training batches of random windows, reshuffled every epoch from a seed.

        Each epoch, every record contributes one window of `window` samples at a
        random start. A record as long as the window, or shorter, starts at 0:
        it is taken whole, the samples it lacks padded and masked (so a fixed
        input a few samples short of a window that is a multiple of the
        downsampling factor trains exactly as it is classified).
        Batches are full (the last partial batch is dropped), so one shape compiles.

        Args:
            signals: list of float32 arrays `(n_i, n_leads)`.
            targets: array `(n_records,)` of class indices or `(n_records, n_classes)`.
            window: window length in samples (a multiple of the downsampling factor).
            batch_size: records per batch.
            sample_weight: per-record weights `(n_records,)`, or `None`.
            seed: base seed; epoch `e` uses `seed + e`, so a resumed run sees the same windows.
            augment: names of the augmentations to apply to every batch (see :mod:`ecgrhythm.preprocessing.augmentation`),
                drawn from the seed, the epoch and the batch index, so a resumed run sees the same batches.
            fs: sampling rate of the signals in Hz (needed by the augmentations).
            interval_channels: how many of the last channels hold RR intervals, not waveform
                (`PreprocessConfig.interval_channels`; see :func:`~ecgrhythm.preprocessing.augmentation.augment_batch`).
            rows: `(index, count)`: give block `index` of `count` equal blocks of rows of every batch
                (a process of a multi-process run feeds its own block of the same batches; `count`
                should divide `batch_size`); default all rows.
        """

        def __init__(
            self, signals, targets, *, window, batch_size, sample_weight=None, seed=0, epoch=0, augment=(), fs=None, interval_channels=0, rows=(0, 1)
        ):
            super().__init__(workers=1, use_multiprocessing=False)
            self.signals = signals
            self.targets = np.asarray(targets)
            self.window = int(window)
            self.batch_size = int(batch_size)
            self.sample_weight = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
            self.seed = seed
            self.augment = tuple(augment)
            self.fs = fs
            self.interval_channels = int(interval_channels)
            if self.augment and not fs:
                raise ValueError(f"Invalid argument `fs`: augmentations need the sampling rate in Hz. Received: fs={fs!r}")
            index, count = rows
            if not 0 <= index < count:
                raise ValueError(f"Invalid argument `rows`: expected (index, count) with 0 <= index < count. Received: rows={rows!r}")
            self.rows = slice(index * self.batch_size // count, (index + 1) * self.batch_size // count)
            self.set_epoch(epoch)

        def set_epoch(self, epoch: int) -> None:
            """Draw the order and window starts of epoch `epoch`."""
            self.epoch = epoch
            rng = np.random.default_rng([self.seed, epoch])
            self.order = rng.permutation(len(self.signals))
            lengths = np.array([len(s) for s in self.signals])
            self.starts = (rng.random(len(self.signals)) * np.maximum(lengths - self.window + 1, 1)).astype(np.int64)

        def __len__(self):
            return len(self.signals) // self.batch_size

        def __getitem__(self, index):
            idx = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            windows = [self.signals[i][self.starts[i] : self.starts[i] + self.window] for i in idx]
            x, mask = pad_batch(windows, self.window)
            if self.augment:  # drawn for the whole batch, so a block is the same rows as in a run of one process
                rng = np.random.default_rng([self.seed, self.epoch, index, 1])
                x, mask = augment_batch(x, mask, self.augment, fs=self.fs, rng=rng, interval_channels=self.interval_channels)
            idx, x, mask = idx[self.rows], x[self.rows], mask[self.rows]
            inputs = {"signal": x, "mask": mask}
            if self.sample_weight is None:
                return inputs, self.targets[idx]
            return inputs, self.targets[idx], self.sample_weight[idx]

    WindowSequence.__qualname__ = "WindowSequence"
    return WindowSequence


def inference_batches(signals, buckets, batch_size):
    """Group signals by bucket and yield padded batches.

    Signals longer than the largest bucket must be split by the caller.

    Yields:
        `(indices, x, mask)`: positions in `signals` of the batch's rows, and
        the padded batch with `batch_size` rows (extra rows are padding).
    """
    by_bucket: dict[int, list[int]] = {}
    for i, s in enumerate(signals):
        by_bucket.setdefault(bucket_for(len(s), buckets), []).append(i)
    for length in sorted(by_bucket):
        members = by_bucket[length]
        for start in range(0, len(members), batch_size):
            idx = members[start : start + batch_size]
            x, mask = pad_batch([signals[i] for i in idx], length, batch_size)
            yield idx, x, mask
