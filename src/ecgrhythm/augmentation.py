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

Example:
>>> import numpy as np
>>> x, mask = np.ones((2, 8, 1), np.float32), np.ones((2, 8), bool)
>>> y, m = augment_batch(x, mask, ("flip",), fs=100.0, rng=np.random.default_rng(0))
>>> y.shape, m.shape
((2, 8, 1), (2, 8))
"""

from __future__ import annotations

import numpy as np

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


def _stretch(x, mask, fs, rng):
    out, new_mask = np.zeros_like(x), np.zeros_like(mask)
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
        new_mask[i, :m] = True
    return out, new_mask


_AUGMENTERS = {"flip": _flip, "scale": _scale, "noise": _noise, "wander": _wander, "stretch": _stretch}
AUGMENTATIONS = tuple(_AUGMENTERS)


def augment_batch(x: np.ndarray, mask: np.ndarray, kinds, *, fs: float, rng: np.random.Generator):
    """Apply the augmentations `kinds` (in the order of `AUGMENTATIONS`) to a padded batch.

    Args:
        x: float32 `(batch, length, n_leads)`, padding zero.
        mask: bool `(batch, length)`, True for real samples (a prefix of each row).
        kinds: names from `AUGMENTATIONS`.
        fs: sampling rate of `x` in Hz (for baseline wander).
        rng: the random generator (seeded by the caller, so runs repeat).

    Returns:
        `(x, mask)` of the same shapes and dtypes; padded steps are zero.

    Raises:
        ValueError: an unknown augmentation name.
    """
    unknown = sorted(set(kinds) - set(AUGMENTATIONS))
    if unknown:
        raise ValueError(f"Invalid argument `kinds`: expected names from {AUGMENTATIONS}. Received: kinds={list(kinds)!r}")
    for name in AUGMENTATIONS:
        if name in kinds:
            x, mask = _AUGMENTERS[name](x, mask, fs, rng)
    return (x * mask[:, :, None]).astype(np.float32, copy=False), mask
