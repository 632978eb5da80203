"""Per-record rhythm and beat features of one ECG lead: what the 2017 winners fed to gradient boosting.

:func:`rhythm_features` detects the beats once (sleepecg's detector, :func:`~ecgrhythm.preprocessing.rpeaks.detect_beats`)
and returns :data:`FEATURE_NAMES`, NaN where a feature is undefined (too few beats); gradient boosting
(scikit-learn's `HistGradientBoostingClassifier`) takes NaN as missing. The groups:

- **R-R irregularity and entropy** (R-R intervals in seconds): the heart rate, the coefficient of variation, the
  RMSSD over the mean interval (`nrmssd`), the share of successive differences over 50 ms (`pnn50`), the
  median absolute successive difference over the median interval (`madsd`: robust to a few ectopic beats), the
  turning-point ratio (`tpr`: 2/3 for a random sequence, lower for a smooth one), and the sample entropy (m = 1,
  r = 30 ms) with the coefficient of sample entropy of Lake and Moorman ("Accurate estimation of entropy in very
  short physiological time series: the problem of atrial fibrillation detection in implanted ventricular
  devices", Am J Physiol Heart Circ Physiol 300, 2011): `cosen` = SampEn + ln(2r) − ln(mean R-R).
- **Premature beats**: an interval shorter than `PREMATURE` times the median of its neighbours followed by one
  longer than `PAUSE` times it (a compensatory pause) is one premature beat; `premature_share` is their share
  of the intervals, and `regular_nrmssd` the RMS of the successive differences left once the intervals of those
  beats are dropped, over the median interval: low for sinus rhythm with ectopic beats, high for AF, whose irregularity has no pattern.
- **Atrial activity before the QRS** (on the signal band-passed 0.5-40 Hz): the window of up to 0.22 s ending
  60 ms before each R peak, of the beats after an interval of at least 0.8 times the median. `p_corr` is the
  median correlation of each beat's window with the average of the *other* beats' windows (a P wave repeats
  beat after beat; fibrillatory waves do not), `p_amplitude` the peak-to-peak of the averaged window over the
  R amplitude. `f_wave` is the RMS of the signal band-passed 4-9 Hz in the T-Q intervals (from 0.45 s, or
  55 % of the interval, after an R peak to 0.2 s before the next, where there is room), over the R amplitude.
- **Averaged-beat morphology and quality**: the beats cut as :func:`ecgrhythm.preprocessing.quality.beat_matrix`
  cuts them (40 % of the median interval each side) and their median beat; `beat_corr` is their median
  correlation with it (:func:`~ecgrhythm.preprocessing.quality.likeness`, the template-matching index of the
  lead quality, here on the band-passed signal), `beat_match_share` the share of beats correlating at least
  `MATCH`, `r_amplitude` (mV) the median beat's largest deviation within 50 ms of the R peak, and `qrs_width` (s)
  the span within 0.12 s of it where the median beat's slope exceeds 20 % of its steepest.

About 3 ms a 30-s 300 Hz record (median of 200 records; 3.6 ms at the 90th percentile) on one core of the
project's 2-core machine with other work running (`benchmarks/rhythm_features.py`, `docs/benchmarks/rhythm_features.json`).
"""

from __future__ import annotations

import math

import numpy as np

from ecgrhythm.preprocessing.filters import butterworth_sos, zero_phase
from ecgrhythm.preprocessing.quality import likeness
from ecgrhythm.preprocessing.rpeaks import detect_beats

__all__ = ["rhythm_features", "FEATURE_NAMES", "MIN_BEATS", "PREMATURE", "PAUSE", "MATCH"]

FEATURE_NAMES = (
    "n_beats",
    "heart_rate",
    "rr_cv",
    "nrmssd",
    "pnn50",
    "madsd",
    "tpr",
    "sampen",
    "cosen",
    "premature_share",
    "regular_nrmssd",
    "p_corr",
    "p_amplitude",
    "f_wave",
    "beat_corr",
    "beat_match_share",
    "r_amplitude",
    "qrs_width",
)
MIN_BEATS = 5  # fewer beats: every feature but n_beats is NaN
PREMATURE = 0.85  # an interval shorter than this times its neighbours' median is premature ...
PAUSE = 1.05  # ... when the next one is longer than this times that median (the compensatory pause)
MATCH = 0.9  # a beat correlating at least this with the median beat matches it
SAMPEN_R = 0.03  # s: the tolerance of the R-R sample entropy
NEIGHBOURS = 4  # intervals each side whose median an interval is compared with


def rhythm_features(signal, fs: float) -> dict[str, float]:
    """The rhythm and beat features of one lead (see the module docstring).

    Args:
        signal: array `(n_samples,)` in mV (a few seconds or more; 9 to 60 s in CinC 2017).
        fs: sampling rate in Hz (100 or more, as the beat detector needs).

    Returns:
        `{name: value}` for every name of :data:`FEATURE_NAMES`, in that order: floats, NaN where undefined
        (fewer than `MIN_BEATS` beats, or no beat with room for its window).

    Raises:
        ValueError: `signal` is not 1-D or not finite, or `fs` is not positive.

    Example:
        >>> import ecgrhythm
        >>> from ecgrhythm.features.rhythm import rhythm_features
        >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004")   # AF
        >>> features = rhythm_features(record.signal[:, 0], record.fs)
        >>> features["madsd"] > 0.1, features["p_corr"] < 0.5
        (True, True)
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"Invalid argument `signal`: expected a finite 1-D array (one lead). Received: shape {x.shape}")
    if not fs > 0:
        raise ValueError(f"Invalid argument `fs`: expected a positive sampling rate in Hz. Received: fs={fs!r}")
    peaks = detect_beats(x, fs) if len(x) else np.zeros(0, dtype=int)
    out = dict.fromkeys(FEATURE_NAMES, math.nan)
    out["n_beats"] = float(len(peaks))
    if len(peaks) < MIN_BEATS:
        return out
    rr = np.diff(peaks) / fs
    out.update(_rr_features(rr))
    y = zero_phase(x, butterworth_sos(float(fs), 0.5, 40.0))
    out.update(_beat_features(y, peaks, fs))
    out.update(_atrial_features(y, peaks, rr, fs, out["r_amplitude"]))
    return out


def _rr_features(rr: np.ndarray) -> dict[str, float]:
    """The irregularity, entropy and premature-beat features of the R-R intervals `rr` (s, at least 4)."""
    mean, median = float(rr.mean()), float(np.median(rr))
    d = np.diff(rr)
    premature = _premature(rr)
    kept = ~(premature | np.roll(premature, 1))  # a premature interval and its pause
    regular = d[kept[:-1] & kept[1:]]
    sampen = _sample_entropy(rr, SAMPEN_R)
    return {
        "heart_rate": 60.0 / median,
        "rr_cv": float(rr.std() / mean),
        "nrmssd": float(np.sqrt(np.mean(d**2)) / mean),
        "pnn50": float(np.mean(np.abs(d) > 0.05)),
        "madsd": float(np.median(np.abs(d)) / median),
        "tpr": _turning_point_ratio(rr),
        "sampen": sampen,
        "cosen": sampen + math.log(2 * SAMPEN_R) - math.log(mean),
        "premature_share": float(premature.sum() / len(rr)),
        "regular_nrmssd": float(np.sqrt(np.mean(regular**2)) / median) if len(regular) else math.nan,
    }


def _premature(rr: np.ndarray) -> np.ndarray:
    """Boolean `(len(rr),)`: the intervals ending on a premature beat (shorter than `PREMATURE` times the median of
    the `NEIGHBOURS` intervals each side, itself excluded, and followed by one longer than `PAUSE` times it)."""
    padded = np.r_[np.full(NEIGHBOURS, np.nan), rr, np.full(NEIGHBOURS, np.nan)]
    around = np.lib.stride_tricks.sliding_window_view(padded, 2 * NEIGHBOURS + 1)
    local = np.nanmedian(np.delete(around, NEIGHBOURS, axis=1), axis=1)
    following = np.r_[rr[1:], 0.0]
    flags = (rr < PREMATURE * local) & (following > PAUSE * local)
    flags[-1] = False  # the last interval has no following one
    return flags


def _turning_point_ratio(rr: np.ndarray) -> float:
    """Share of the inner intervals that are a local peak or trough (2/3 for a random sequence)."""
    a, b, c = rr[:-2], rr[1:-1], rr[2:]
    return float(np.mean(((b > a) & (b > c)) | ((b < a) & (b < c))))


def _sample_entropy(rr: np.ndarray, r: float) -> float:
    """Sample entropy of `rr` with templates of length 1 and tolerance `r`: −ln(matches of length 2 / of length 1),
    each count at least 1 (so a short record gives a large, finite value instead of infinity)."""
    n = len(rr) - 1  # templates of length 1 that have a next value
    close1 = np.abs(rr[:n, None] - rr[None, :n]) <= r
    close2 = close1 & (np.abs(rr[1 : n + 1, None] - rr[None, 1 : n + 1]) <= r)
    pairs1 = (close1.sum() - n) / 2
    pairs2 = (close2.sum() - n) / 2
    return float(-math.log(max(pairs2, 1) / max(pairs1, 1)))


def _beat_features(y: np.ndarray, peaks: np.ndarray, fs: float) -> dict[str, float]:
    """Averaged-beat morphology and template matching of the band-passed signal `y` at the beats `peaks`."""
    nan = dict.fromkeys(("beat_corr", "beat_match_share", "r_amplitude", "qrs_width"), math.nan)
    half = int(0.4 * np.median(np.diff(peaks)))
    inner = peaks[(peaks >= half) & (peaks < len(y) - half)]
    if len(inner) < MIN_BEATS or half < 2:
        return nan
    beats = y[inner[:, None] + np.arange(-half, half + 1)]
    beats -= np.median(beats, axis=1, keepdims=True)
    template = np.median(beats, axis=0)
    b = beats - beats.mean(axis=1, keepdims=True)
    t = template - template.mean()
    norms = np.linalg.norm(b, axis=1) * np.linalg.norm(t)
    corr = np.divide(b @ t, norms, out=np.zeros(len(b)), where=norms > 0)
    near = int(0.05 * fs)
    centre = template[max(0, half - near) : half + near + 1]
    wide = int(0.12 * fs)
    slope = np.abs(np.diff(template[max(0, half - wide) : half + wide + 1]))
    steep = np.flatnonzero(slope > 0.2 * slope.max()) if slope.max() > 0 else np.zeros(0, dtype=int)
    return {
        "beat_corr": likeness(beats, template),
        "beat_match_share": float(np.mean(corr >= MATCH)),
        "r_amplitude": float(np.abs(centre).max()),
        "qrs_width": float((steep[-1] - steep[0] + 1) / fs) if len(steep) else math.nan,
    }


def _atrial_features(y: np.ndarray, peaks: np.ndarray, rr: np.ndarray, fs: float, r_amplitude: float) -> dict[str, float]:
    """P-wave repetition and amplitude before the R peaks, and 4-9 Hz activity in the T-Q intervals, of `y`."""
    out = dict.fromkeys(("p_corr", "p_amplitude", "f_wave"), math.nan)
    scale = r_amplitude if r_amplitude > 0 else math.nan
    median = float(np.median(rr))
    end, width = int(0.06 * fs), int(min(0.22, 0.33 * median) * fs)
    starts = peaks[1:] - end - width
    usable = (rr >= 0.8 * median) & (starts >= 0)
    if usable.sum() >= 3 and width >= 4:
        windows = y[starts[usable, None] + np.arange(width)]
        windows = windows - windows.mean(axis=1, keepdims=True)
        total = windows.sum(axis=0)
        others = (total[None, :] - windows) / (len(windows) - 1)  # each beat's window against the others' average
        w = windows - windows.mean(axis=1, keepdims=True)
        o = others - others.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(w, axis=1) * np.linalg.norm(o, axis=1)
        corr = np.divide((w * o).sum(axis=1), norms, out=np.zeros(len(w)), where=norms > 0)
        out["p_corr"] = float(np.median(corr))
        out["p_amplitude"] = float(np.ptp(total / len(windows)) / scale)
    f = zero_phase(y, butterworth_sos(float(fs), 4.0, 9.0))
    segments = [f[a + int(min(0.45, 0.55 * (b - a) / fs) * fs) : b - int(0.2 * fs)] for a, b in zip(peaks[:-1], peaks[1:])]
    samples = [s for s in segments if len(s) >= int(0.08 * fs)]
    if samples:
        joined = np.concatenate(samples).astype(np.float64)
        out["f_wave"] = float(np.sqrt(np.mean(joined**2)) / scale)
    return out
