"""Length strategies: how records of different lengths reach the network in training and at prediction.

One class per strategy; a new one is a subclass plus :func:`register_length`
(the length study then runs it as a variant).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ecgrhythm.preprocessing.pipeline import crop_or_pad

__all__ = [
    "LengthStrategy",
    "LENGTHS",
    "register_length",
    "length_strategy",
    "advised_length",
    "resample_to",
    "pad_to",
    "window_starts",
    "discarded_share",
    "ADVISED_SAMPLES",
    "ADVISED_FS",
]

# The common advice: crop or pad every record to 9,000 samples at 300 Hz (30 s).
ADVISED_SAMPLES, ADVISED_FS = 9000, 300.0


def advised_length(fs: float, downsampling: int) -> tuple[int, int]:
    """`(kept, padded)`: the advised 9,000 samples at 300 Hz in samples at `fs`, and that
    rounded up to a multiple of the network's downsampling factor."""
    kept = int(round(ADVISED_SAMPLES * fs / ADVISED_FS))
    return kept, int(math.ceil(kept / downsampling) * downsampling)


def resample_to(signal: np.ndarray, length: int) -> np.ndarray:
    """`signal` `(n, n_leads)` stretched or squeezed to exactly `(length, n_leads)` float32 (Fourier method)."""
    from scipy.signal import resample

    return resample(signal.astype(np.float64), length, axis=0).astype(np.float32)


def pad_to(signal: np.ndarray, length: int) -> np.ndarray:
    """`signal` `(n, n_leads)` zero-padded at the end to at least `length` samples (the padding is not masked)."""
    if len(signal) >= length:
        return signal
    return np.concatenate([signal, np.zeros((length - len(signal), signal.shape[1]), dtype=signal.dtype)])


def window_starts(n: int, window: int, hop: int) -> list[int]:
    """Starts of windows of `window` samples every `hop` samples, the last one ending at `n`."""
    if n <= window:
        return [0]
    starts = list(range(0, n - window + 1, hop))
    if starts[-1] != n - window:
        starts.append(n - window)
    return starts


def discarded_share(lengths, fs: float, kept_seconds: float = ADVISED_SAMPLES / ADVISED_FS) -> dict[str, float]:
    """What cropping records of `lengths` samples at `fs` to `kept_seconds` throws away."""
    lengths = np.asarray(lengths, dtype=float)
    kept = np.minimum(lengths, kept_seconds * fs)
    return {"share_of_signal": round(float(1 - kept.sum() / lengths.sum()), 4), "share_of_records_cut": round(float(np.mean(lengths > kept)), 4)}


class LengthStrategy:
    """Turns signals `(n_i, n_leads)` into training signals and validation probabilities.

    Args:
        fs: the signals' rate (Hz).
        downsampling: the network's downsampling factor (input lengths are multiples of it).
        window_s: the training window (seconds).

    Attributes:
        name, description: the strategy's name (a length-study variant) and what it does, in words.
        crops: whether it throws away the signal past the advised 30 s (the report's `signal_discarded`).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    crops: ClassVar[bool] = False

    def __init__(self, fs: float, downsampling: int, window_s: float):
        from ecgrhythm.preprocessing.batching import bucket_lengths, window_length  # keras: only when a run needs it

        self.window = window_length(window_s, fs, downsampling)
        self.kept, self.fixed = advised_length(fs, downsampling)
        self.buckets = bucket_lengths(fs, downsampling)

    def training(self, signals: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
        """Training signals and the window cut from them each epoch: by default the signals as they are, and the training window."""
        return list(signals), self.window

    def predict(self, model, signals: list[np.ndarray]) -> np.ndarray:
        """Class probabilities `(n_records, n_classes)` of `model` for `signals`."""
        raise NotImplementedError


LENGTHS: dict[str, type[LengthStrategy]] = {}


def register_length(cls: type[LengthStrategy]) -> type[LengthStrategy]:
    """Class decorator: make `cls` a length strategy known by `cls.name`."""
    LENGTHS[cls.name] = cls
    return cls


def length_strategy(name: str, fs: float, downsampling: int, window_s: float) -> LengthStrategy:
    """The registered strategy `name`, set up for signals at `fs`."""
    if name not in LENGTHS:
        raise ValueError(f"Invalid argument `length`: expected one of {list(LENGTHS)}. Received: length={name!r}")
    return LENGTHS[name](fs, downsampling, window_s)


class _FixedInput(LengthStrategy):
    """Trains and predicts on one fixed input length (`self.fixed` samples)."""

    def fixed_input(self, signal: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def training(self, signals):
        return [self.fixed_input(s) for s in signals], self.fixed

    def predict(self, model, signals):
        from ecgrhythm.inference.forward import predict_signals

        return predict_signals(model, [self.fixed_input(s) for s in signals], (self.fixed,))


@register_length
class CropPad(_FixedInput):
    name = "crop_pad"
    description = "crop or zero-pad every record to 9,000 samples at 300 Hz (30 s)"
    crops = True

    def fixed_input(self, signal):
        return crop_or_pad(signal, self.kept, self.fixed)


@register_length
class Resample(_FixedInput):
    name = "resample"
    description = "resample every record to one fixed length (30 s at the model's rate)"

    def fixed_input(self, signal):
        return resample_to(signal, self.fixed)


@register_length
class BucketMask(LengthStrategy):
    name = "bucket_mask"
    description = "pad each batch to a length bucket and mask the padding (ecgrhythm's default)"

    def predict(self, model, signals):
        from ecgrhythm.inference.forward import predict_signals

        return predict_signals(model, signals, self.buckets)


@register_length
class Windows(LengthStrategy):
    name = "windows"
    description = "fixed 20 s windows, no mask; a record's prediction is the mean over windows with 50% overlap"

    def training(self, signals):
        return [pad_to(s, self.window) for s in signals], self.window

    def predict(self, model, signals):
        from ecgrhythm.inference.forward import average_by_owner, predict_signals

        windows, owners = [], []
        for i, s in enumerate(signals):
            s = pad_to(s, self.window)
            for start in window_starts(len(s), self.window, self.window // 2):
                windows.append(s[start : start + self.window])
                owners.append(i)
        return average_by_owner(predict_signals(model, windows, (self.window,)), owners, np.ones(len(windows)), len(signals))
