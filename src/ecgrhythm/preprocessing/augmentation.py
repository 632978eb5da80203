"""Random augmentation of training windows: sign inversion, amplitude, noise, baseline wander, time stretch.

Each augmentation acts on a padded batch `(x, mask)` as `pad_batch` builds it
(real samples first, then padding) and keeps that form: the shapes stay the
same, padded steps stay zero, and a time stretch moves the end of the real
samples and so the mask with them. Inputs are z-scored signals (about unit
variance), so amplitudes below are in those units.

Why these: many AliveCor recordings of CinC 2017 are upside down (sign
inversion); amplitude, noise and baseline wander vary between devices and
contacts; heart rate varies between people (a small time stretch changes
the rate, not the rhythm's regularity).

Interval channels (`PreprocessConfig.rr_channel`: the last channels, holding RR
intervals in seconds) are not a waveform: sign, amplitude, noise and wander
leave them alone, and a time stretch stretches them in time and scales their
values by the same factor (a slower rate has longer intervals).

Example:
>>> import numpy as np

>>> x, mask = np.ones((2, 8, 1), np.float32), np.ones((2, 8), bool)
>>> y, m = augment_batch(x, mask, ("flip",), fs=100.0, rng=np.random.default_rng(0))
>>> y.shape, m.shape
((2, 8, 1), (2, 8))
"""

from __future__ import annotations

import numpy as np

from ecgrhythm.config import AUGMENTATIONS

__all__ = ["AUGMENTATIONS", "augment_batch"]

FLIP_P = 0.5  # chance of inverting a window
SCALE_RANGE = (0.8, 1.25)  # amplitude factor, drawn log-uniform
NOISE_SD = (0.0, 0.05)  # sd of white noise, drawn uniform per window
WANDER = (0.05, 0.5, 0.3)  # baseline wander: lowest and highest frequency (Hz), largest amplitude
STRETCH_RANGE = (0.9, 1.1)  # time-stretch factor (>1 lengthens: a slower rate)


def _flip(x, mask, fs, rng):
    return x * rng.choice(np.array([-1.0, 1.0], np.float32), p=[FLIP_P, 1 - FLIP_P], size=(len(x), 1, 1)), mask


def _scale(x, mask, fs, rng):
    low, high = np.log(SCALE_RANGE)
    return x * np.exp(rng.uniform(low, high, size=(len(x), 1, 1))).astype(np.float32), mask


def _noise(x, mask, fs, rng):
    sd = rng.uniform(*NOISE_SD, size=(len(x), 1, 1)).astype(np.float32)
    return x + sd * rng.standard_normal(x.shape, dtype=np.float32), mask


def _wander(x, mask, fs, rng):
    low, high, amplitude = WANDER
    t = np.arange(x.shape[1], dtype=np.float32) / np.float32(fs)
    freq = rng.uniform(low, high, size=(len(x), 1))
    phase = rng.uniform(0, 2 * np.pi, size=(len(x), 1))
    size = rng.uniform(0, amplitude, size=(len(x), 1))
    return x + (size * np.sin(2 * np.pi * freq * t[None, :] + phase)).astype(np.float32)[:, :, None], mask


def _stretch(x, mask, fs, rng, interval_channels):
    out, new_mask = np.zeros_like(x), np.zeros_like(mask)
    first_interval = x.shape[2] - interval_channels
    length = x.shape[1]
    for i, factor in enumerate(rng.uniform(*STRETCH_RANGE, size=len(x))):
        n = int(mask[i].sum())
        if n < 2:
            out[i], new_mask[i] = x[i], mask[i]
            continue
        m = min(length, max(2, int(round(n * factor))))
        where = np.linspace(0, n - 1, int(round(n * factor)))[:m]
        for lead in range(x.shape[2]):
            out[i, :m, lead] = np.interp(where, np.arange(n), x[i, :n, lead])
        out[i, :m, first_interval:] *= np.float32(factor)
        new_mask[i, :m] = True
    return out, new_mask


_WAVEFORM_AUGMENTERS = {"flip": _flip, "scale": _scale, "noise": _noise, "wander": _wander}  # act on the lead channels only


def augment_batch(x: np.ndarray, mask: np.ndarray, kinds, *, fs: float, rng: np.random.Generator, interval_channels: int = 0):
    """Apply the augmentations `kinds` (in the order of `AUGMENTATIONS`) to a padded batch.

    Args:
        x: float32 `(batch, length, n_channels)`, padding zero: the leads, then `interval_channels` channels of intervals.
        mask: bool `(batch, length)`, True for real samples (a prefix of each row).
        kinds: names from `AUGMENTATIONS`.
        fs: sampling rate of `x` in Hz (for baseline wander).
        rng: the random generator (seeded by the caller, so runs repeat).
        interval_channels: how many of the last channels hold intervals in seconds
            (`PreprocessConfig.interval_channels`): only `"stretch"` changes them, scaling them by its factor.

    Returns:
        `(x, mask)` of the same shapes and dtypes; padded steps are zero.

    Raises:
        ValueError: an unknown augmentation name, or `interval_channels` outside 0 to `n_channels - 1`.
    """
    unknown = sorted(set(kinds) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"Invalid argument `kinds`: expected names from {AUGMENTATIONS}. Received: kinds={list(kinds)!r}")
    leads = x.shape[2] - interval_channels
    if not 0 <= interval_channels < x.shape[2]:
        raise ValueError(
            f"Invalid argument `interval_channels`: expected 0 to {x.shape[2] - 1} for a batch of {x.shape[2]} channels. "
            f"Received: interval_channels={interval_channels!r}"
        )
    for name in AUGMENTATIONS:
        if name not in kinds:
            continue
        if name == "stretch":
            x, mask = _stretch(x, mask, fs, rng, interval_channels)
        else:
            waveform, mask = _WAVEFORM_AUGMENTERS[name](x[:, :, :leads], mask, fs, rng)
            x = np.concatenate([waveform, x[:, :, leads:]], axis=2) if interval_channels else waveform
    return (x * mask[:, :, None]).astype(np.float32, copy=False), mask
