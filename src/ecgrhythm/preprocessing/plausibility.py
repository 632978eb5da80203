"""Checks that a record's sampling rate and units are plausible, from the signal itself.

A wrong rate or unit gives no error: the networks see a heart that beats too fast or too slow, and
answer with confidence. :func:`check_signal` measures, on the first seconds of one lead, the
heart rate (from the median R-R interval of sleepecg's beats, :func:`~ecgrhythm.preprocessing.rpeaks.detect_beats`)
and the width of the median beat's main deflection (the R wave at half its height) that the given rate
implies, and the R-wave amplitude in the given unit. Both times scale with the rate: a record sampled at
300 Hz read as 500 Hz beats 5/3 as fast with R waves 3/5 as wide.

Bounds, set for few false alarms rather than many catches (a warning on a good record is worse than none):

- heart rate 25-250 bpm: escape rhythms of complete heart block go down to about 30 bpm, and ventricular
  rates over 250 bpm are exceptional even in AF with pre-excitation;
- R-wave width at half height 8-120 ms: a normal QRS lasts 70-110 ms and a bundle-branch block up to about
  200 ms (AHA/ACCF/HRS 2009 recommendations for the standardization of the ECG, part III), and the R wave's
  half-height width is a fraction of it; on real records at their true rate it ranged 12-85 ms (484 cinc2017
  records, the 18 cpsc2021 and 50 cinc2021 sample records);
- R-wave amplitude 0.02-20 mV: QRS voltages run from about 0.5 mV (low voltage) to 4-5 mV (hypertrophy);
  on those records 0.1-1.9 mV. Microvolts read as millivolts are 1000 times too large, volts 1000 times too small.

So the check catches gross errors (a rate off by a factor of 2 or more on most records; a factor 5/3 on fast
or slow hearts), not every wrong rate. When the beats cannot be trusted (too few beats, or beats that do not look
alike, as in noise: :mod:`~ecgrhythm.preprocessing.quality`'s beat template, under `MIN_LIKENESS`) the rate is undetermined and nothing is said. The unit check needs no beats.

It measures the first 10 s of the lead, and the first `CHECK_S` (180) seconds only when those 10 s give an
implausible rate or cannot tell (:data:`STAGES_S`). The beats are detected on the lead brought down to about 150 Hz
(`DETECT_FS`: means of 2 samples at 300 Hz, 3 at 500 Hz), each put back at the record's own rate, where the
beats are cut and the R wave measured (:func:`~ecgrhythm.preprocessing.rpeaks.detect_beats`' `min_fs`). On every real
record of `../shared/data`, at its true rate and at every common rate 1.6 or more times off it
(`python scripts/plausibility_settings.py`, in `docs/results/plausibility/settings.txt`), this warns less often at
the true rate than measuring 180 s (0.15 % of the 7,249 CinC 2017 records, against 0.19 %), leaves fewer records
undetermined (2.9 % against 4.5 %), and catches nearly as many wrong rates (30.8 % against 32.9 %; 61 % of the
cpsc2021 records' wrong rates against 64 %), at 61 % of the cost on the CinC 2017 records (0.18 against 0.30 ms a
record, process time on this project's 2-core machine with a training running beside it; starting from 15 s instead
gives 0.18 % false alarms, 3.5 % undetermined and 31.4 % caught, at 0.20 ms; their share of classifying a record:
`benchmarks/plausibility_checks.py`). Detecting at the record's own rate instead (that script at commit 2bb4a1e) gave
0.19 % false alarms, 2.9 % undetermined and 30.9 % caught on the CinC 2017 records, 63 % caught on the cpsc2021 ones
and 4 % undetermined on the cinc2021 ones (now 6 %: one record of 50 more): sleepecg's adaptive thresholds tip
differently at another rate on some records, either way. It holds at most `CHECK_S` seconds of one lead.

Those numbers are of the beats alone (`check_signal(..., quick=False)`; settings.txt at commit 673b0e3). Before them comes a quick look (`_quick`)
at the first `QUICK_S` (10) seconds, without beats: the lead's QRS envelope (its 13 ms differences squared, summed to
about 25 Hz) gives the heart rate at the highest peak of its autocorrelation, the correlation of those differences 13 ms
apart stands in for the QRS width (it falls when the rate given is too high), and half the median peak-to-peak of its
1 s blocks for the amplitude. It settles a record as plausible only well inside the bounds (`QUICK_BPM` 45-130 bpm, an
envelope repeating with correlation `QUICK_PERIODICITY` 0.2 or more, no peak at half that lag, `QUICK_SLOPE_CORR`,
`QUICK_AMPLITUDE_MV`). When the envelope does not repeat clearly (AF and other irregular rhythms), the rate comes
instead from the mean spacing of its peaks (`_quick_peaks`: each the largest within 150 ms either side and at least 0.3
of the median of the envelope's 1 s maxima), and settles the record only when the peaks are consistent (at least 6, none
closer than 0.2 of their mean spacing, spacings varying by at most half of it), the rate is within `QUICK_PEAK_BPM`
45-120 bpm and the slope correlation within `QUICK_PEAK_SLOPE_CORR` -0.1-0.6 (its upper end keeps out most rates given
too low, whose envelope doubles each beat). Anything else goes to the beats, so every warning still comes from them. Its
:class:`Plausibility` has the quick heart rate and amplitude and no R width. On the same records and rates (settings.txt
now, the shipped 10 then 180 s): the quick look settles 94 % of the CinC 2017 records at their true rate (80 % from the
autocorrelation alone; 33 % and 68 % of the cpsc2021 and cinc2021 ones), false alarms 0.04 % (it settles some records
the beats warned about), wrong rates caught 30.5 % against 30.8 % (121 of the 11,159 caught pairs settled by it instead,
18 of them by the peaks), true rate named 11.2 % against 11.3 %, the cpsc2021 numbers unchanged and the cinc2021 ones
but for 4 % undetermined (against 6 %); 0.9 % of the CinC 2017 records stay undetermined against 2.9 %: it gives a heart
rate for some records whose beats do not look alike (A00056, labelled noisy, at 300 and 500 Hz). The checks then cost
0.055 ms a CinC 2017 record (the script's process time, load average 2.6; 0.072 ms with the autocorrelation alone, load
1.8) against 0.178 ms for the beats alone (a scratch run of the same measure, load about 1.4).
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from ecgrhythm.preprocessing.quality import CHECK_S, beat_matrix, likeness

__all__ = [
    "ImplausibleRecordWarning",
    "Plausibility",
    "check_signal",
    "warn_if_implausible",
    "CHECK_S",
    "STAGES_S",
    "COMMON_RATES",
    "HEART_RATE_BPM",
    "R_WIDTH_MS",
    "R_AMPLITUDE_MV",
    "RATE_SCALE",
    "rate_scale",
]

STAGES_S = (10.0, CHECK_S)  # seconds measured in turn (see the module docstring)
DETECT_FS = 150.0  # beats detected at this rate or a little more, cut at the record's own (see the module docstring)
MIN_LIKENESS = 0.5  # median correlation of the beats with their median beat below this: noise, undetermined
HEART_RATE_BPM = (25.0, 250.0)
R_WIDTH_MS = (8.0, 120.0)
R_AMPLITUDE_MV = (0.02, 20.0)
RATE_SCALE = (0.45, 1.8)  # bounds of the rate scale the heart rate and width imply together (see `rate_scale`)
COMMON_RATES = (125.0, 128.0, 200.0, 250.0, 256.0, 300.0, 360.0, 500.0, 512.0, 1000.0)
_TYPICAL_BPM, _TYPICAL_WIDTH_MS = 73.0, 23.3  # medians on the real records above
# the quick first look (`_quick`): it settles a record as plausible only within these bounds, else the beats decide
QUICK_S = 10.0  # seconds it reads
QUICK_ENVELOPE_HZ = 25.0  # the QRS envelope's rate
QUICK_PERIODICITY = 0.2  # least autocorrelation of the QRS envelope at one beat's lag
QUICK_HALF = 0.5  # most autocorrelation at half that lag, relative to it (a lag of two beats taken for one)
QUICK_BPM = (45.0, 130.0)
QUICK_SLOPE_CORR = (0.0, 0.8)  # correlation of the lead's 13 ms differences 13 ms apart: lower for a rate given too high
QUICK_AMPLITUDE_MV = (0.05, 5.0)
# when the envelope does not repeat clearly (irregular rhythms): the rate from its peaks (`_quick_peaks`)
QUICK_PEAK_REACH_S = 0.15  # a peak is the envelope's largest value within this many seconds either side
QUICK_PEAK_HEIGHT = 0.3  # and at least this fraction of the median of the envelope's 1 s maxima
QUICK_PEAK_MIN_COUNT = 6
QUICK_PEAK_MIN_SPACING = 0.2  # least spacing of two peaks, relative to their mean spacing
QUICK_PEAK_MAX_CV = 0.5  # most standard deviation of the spacings, relative to their mean
QUICK_PEAK_BPM = (45.0, 120.0)
QUICK_PEAK_SLOPE_CORR = (-0.1, 0.6)


class ImplausibleRecordWarning(UserWarning):
    """A record's sampling rate or unit looks wrong from its signal: its heart rate, R-wave width or
    amplitude is not physiological. Turn it into an error with
    `warnings.simplefilter("error", ImplausibleRecordWarning)` (the command line's `--strict-checks`).

    Args:
        source: the record's file or name.
        reason: what is implausible and what would fix it.

    Example:
        >>> import warnings
        >>> import ecgrhythm
        >>> clf = ecgrhythm.RhythmClassifier.load()
        >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A01519")   # 300 Hz
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always", ecgrhythm.ImplausibleRecordWarning)
        ...     label = clf.predict(record.signal[:, 0], fs=500)              # the wrong rate
        >>> print(caught[0].message.reason)
        implausible record at fs=500 Hz: ...; its sampling rate looks like 300 Hz, not 500 Hz (check the rate given, or its header's)
    """

    def __init__(self, source, reason: str):
        self.source, self.reason = str(source), reason
        super().__init__(f"{self.source}: {reason}")


@dataclasses.dataclass(frozen=True)
class Plausibility:
    """What :func:`check_signal` measured, at the rate and unit it was given.

    Attributes:
        heart_rate_bpm: from the median R-R interval; None when the beats are undetermined.
        r_width_ms: width of the median beat's R wave at half its height; None when undetermined or settled by the
            quick look (see the module docstring), which measures no beat.
        r_amplitude: the median beat's R-wave amplitude in the signal's unit (without beats: half the range
            between the 1st and 99th percentiles; from the quick look: half the median peak-to-peak of its 1 s
            blocks); None for a flat signal.
        plausible_fs: a common rate (:data:`COMMON_RATES`) that puts the heart rate and width in range, the best
            centred, when the given rate does not (None: the rate is fine, undetermined, or no common rate fits).
        problems: what is not physiological, as phrases (empty: nothing).
        unit_hint: the unit the signal looks like when its amplitude is off by about 1000 (`"uV"`, `"V"`), else None.
    """

    heart_rate_bpm: float | None
    r_width_ms: float | None
    r_amplitude: float | None
    plausible_fs: float | None = None
    problems: tuple[str, ...] = ()
    unit_hint: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def check_signal(signal, fs: float, *, stages: tuple[float, ...] = STAGES_S, quick: bool = True) -> Plausibility:
    """Measure the heart rate, R-wave width and amplitude of one lead, and say what is not physiological.

    Args:
        signal: array `(n_samples,)` or `(n_samples, n_leads)` in mV (the first lead is checked); only its
            first `max(stages)` seconds are read.
        fs: the sampling rate it is said to have, in Hz.
        stages: how many seconds of the lead, from its start, are measured in turn: a longer stretch only when
            the one before found the rate implausible or could not tell, and the last one measured answers.
        quick: look first at the first `QUICK_S` seconds without beats, and answer from that look when it finds
            them plainly plausible (see the module docstring); False: the beats only.

    Returns:
        A :class:`Plausibility`.

    Example:
        >>> import ecgrhythm
        >>> from ecgrhythm.preprocessing.plausibility import check_signal
        >>> record = ecgrhythm.read_record("../shared/data/cinc2017/A00004.hea")
        >>> check_signal(record.signal, record.fs).ok
        True
    """
    x = np.asarray(signal)
    x = x if x.ndim == 1 else x[:, 0]
    if quick:
        settled = _quick(np.asarray(x[: int(QUICK_S * fs)], dtype=np.float64), fs)
        if settled is not None:
            return settled
    for i, seconds in enumerate(stages):
        found = _measure(np.asarray(x[: int(seconds * fs)], dtype=np.float64), fs)
        last = i == len(stages) - 1 or len(x) <= int(seconds * fs)
        if last or (found.heart_rate_bpm is not None and not any(_rate_problems(found.heart_rate_bpm, found.r_width_ms))):
            return found
    raise ValueError(f"Invalid argument `stages`: expected at least one length in seconds. Received: stages={stages!r}")


def _quick(x: np.ndarray, fs: float) -> Plausibility | None:
    """A plausible :class:`Plausibility` from `x`'s QRS envelope, without beats: the rate from its autocorrelation
    or, failing that, from its peaks; None when neither can settle it (see the module docstring)."""
    step = max(1, round(fs / 75))  # differences over about 13 ms
    d = x[step:] - x[:-step]
    m = max(1, round(fs / QUICK_ENVELOPE_HZ))
    n = len(d) // m
    lags = int(60 * fs / m / QUICK_BPM[0]) + 2
    if n < 2 * lags:
        return None
    e = d * d
    r = e[: n * m].reshape(n, m) @ np.ones(m)  # the envelope (a matrix product sums the rows fastest)
    total = float(r.sum())
    if not 0 < total < math.inf:  # flat, or not finite
        return None
    w = int(fs)
    blocks = x[: len(x) // w * w].reshape(-1, w)
    ranges = np.sort(blocks.max(1) - blocks.min(1))
    amplitude = float(ranges[len(ranges) // 2]) / 2
    lo, hi = QUICK_AMPLITUDE_MV
    if not lo <= amplitude <= hi:
        return None
    slope = float(d[:-step].dot(d[step:])) / float(d.dot(d))
    heart_rate = _quick_periodic(r - total / n, fs / m, lags) if QUICK_SLOPE_CORR[0] <= slope <= QUICK_SLOPE_CORR[1] else None
    if heart_rate is None and QUICK_PEAK_SLOPE_CORR[0] <= slope <= QUICK_PEAK_SLOPE_CORR[1]:
        heart_rate = _quick_peaks(r, fs / m)
    return None if heart_rate is None else Plausibility(heart_rate, None, amplitude)


def _quick_periodic(r: np.ndarray, rate: float, lags: int) -> float | None:
    """The heart rate (bpm) at the highest autocorrelation peak of the centred envelope `r` (`rate` Hz) within
    `QUICK_BPM`, when it repeats clearly (`QUICK_PERIODICITY`, `QUICK_HALF`); else None."""
    n = len(r)
    ac = np.correlate(r, r[: n - lags], "valid")
    lo = max(1, int(60 * rate / QUICK_BPM[1]))
    k = lo + int(ac[lo:-1].argmax())
    a, b, c = ac[k - 1 : k + 2].tolist()
    if not b >= QUICK_PERIODICITY * ac[0] or ac[round(k / 2)] > QUICK_HALF * b:
        return None
    curve = a - 2 * b + c
    lag = k + (min(0.5, max(-0.5, 0.5 * (a - c) / curve)) if curve < 0 else 0.0)
    heart_rate = 60 * rate / lag
    return heart_rate if QUICK_BPM[0] <= heart_rate <= QUICK_BPM[1] else None


def _quick_peaks(r: np.ndarray, rate: float) -> float | None:
    """The heart rate (bpm) from the mean spacing of the envelope `r`'s peaks (`rate` Hz; each the largest within
    `QUICK_PEAK_REACH_S`, at least `QUICK_PEAK_HEIGHT` of the median of its 1 s maxima), when they are consistent
    (`QUICK_PEAK_MIN_COUNT`, `QUICK_PEAK_MIN_SPACING`, `QUICK_PEAK_MAX_CV`) and the rate within `QUICK_PEAK_BPM`;
    else None."""
    from scipy.ndimage import maximum_filter1d

    reach = max(1, round(QUICK_PEAK_REACH_S * rate))
    w = max(1, round(rate))
    maxima = np.sort(r[: len(r) // w * w].reshape(-1, w).max(1))
    height = QUICK_PEAK_HEIGHT * float(maxima[len(maxima) // 2])
    peaks = np.flatnonzero((r == maximum_filter1d(r, 2 * reach + 1, mode="constant", cval=-math.inf)) & (r >= height))
    if len(peaks) < QUICK_PEAK_MIN_COUNT:
        return None
    spacing = np.diff(peaks)
    mean = float(peaks[-1] - peaks[0]) / len(spacing)
    if spacing.min() < QUICK_PEAK_MIN_SPACING * mean or float(spacing.std()) > QUICK_PEAK_MAX_CV * mean:
        return None
    heart_rate = 60 * rate / mean
    return heart_rate if QUICK_PEAK_BPM[0] <= heart_rate <= QUICK_PEAK_BPM[1] else None


def _measure(x: np.ndarray, fs: float) -> Plausibility:
    """:func:`check_signal` on all of `x` (float64, one lead)."""
    beats = _median_beat(x, fs)
    if beats is None:
        lo, hi = np.percentile(x, [1, 99]) if len(x) else (0.0, 0.0)
        amplitude = (hi - lo) / 2 if hi > lo else None
        return Plausibility(None, None, amplitude, problems=tuple(_unit_problems(amplitude)), unit_hint=_unit_hint(amplitude))
    heart_rate, width, amplitude = beats
    problems = list(_rate_problems(heart_rate, width))
    plausible = _plausible_rate(heart_rate, width, fs) if problems else None
    problems += _unit_problems(amplitude)
    return Plausibility(heart_rate, width, amplitude, plausible, tuple(problems), _unit_hint(amplitude))


def warn_if_implausible(signal, fs: float, source) -> Plausibility:
    """:func:`check_signal`, and an :class:`ImplausibleRecordWarning` naming `source`, the rate given and the
    plausible rate (or unit) when something is not physiological.

    Args:
        signal: as :func:`check_signal`.
        fs: the rate the record is classified at, in Hz.
        source: the record's file or name, for the message.

    Returns:
        The :class:`Plausibility`.

    Raises:
        ImplausibleRecordWarning: when warnings of that class are turned into errors.
    """
    found = check_signal(signal, fs)
    if not found.ok:
        warnings.warn(ImplausibleRecordWarning(source, message(found, fs)), stacklevel=2)
    return found


def message(found: Plausibility, fs: float) -> str:
    """One line: what is not physiological at `fs`, and the rate or unit that would make it so."""
    fix = []
    if found.plausible_fs is not None:
        fix.append(f"its sampling rate looks like {found.plausible_fs:g} Hz, not {fs:g} Hz (check the rate given, or its header's)")
    elif any("heart rate" in p or "width" in p for p in found.problems):
        fix.append(f"check its sampling rate ({fs:g} Hz, given or from its header)")
    if found.unit_hint is not None:
        fix.append(f"its unit looks like {found.unit_hint}, not mV (convert the signal to mV)")
    return f"implausible record at fs={fs:g} Hz: {'; '.join(found.problems)}; {'; '.join(fix)}"


def _median_beat(x: np.ndarray, fs: float):
    """`(heart rate bpm, R width ms, R amplitude)` of the median beat of `x`, or None when the beats are undetermined
    (too few of them, or unlike each other: :func:`~ecgrhythm.preprocessing.quality.beat_matrix`)."""
    found = beat_matrix(x, fs, min_fs=DETECT_FS)
    if found is None:
        return None
    beats, template, rr = found
    if likeness(beats, template) < MIN_LIKENESS:
        return None
    half = len(template) // 2
    width, amplitude = _half_height_width(np.abs(template), half, max(1, half // 4))
    return 60.0 * fs / rr, 1000.0 * width / fs, amplitude


def _half_height_width(a: np.ndarray, centre: int, reach: int) -> tuple[float, float]:
    """Width (samples, interpolated) at half height of the largest peak of `a` within `reach` of `centre`, and its height."""
    peak = centre - reach + int(np.argmax(a[centre - reach : centre + reach + 1]))
    height = float(a[peak])
    left = np.flatnonzero(a[:peak] <= height / 2)
    right = np.flatnonzero(a[peak + 1 :] <= height / 2)
    if height <= 0 or not len(left) or not len(right):
        return float("nan"), height
    lo, hi = left[-1], peak + 1 + right[0]
    lo_f = lo + (height / 2 - a[lo]) / (a[lo + 1] - a[lo])  # where the rising edge crosses half height
    hi_f = hi - (height / 2 - a[hi]) / (a[hi - 1] - a[hi])
    return float(hi_f - lo_f), height


def rate_scale(heart_rate: float, width: float) -> float:
    """How many times too high the given rate looks: the geometric mean of `heart_rate / 73 bpm` and
    `23.3 ms / width` (each 1 for the median record; both grow with a rate given too high).

    The two vary independently between people (correlation -0.05 of their logs on the real records above), so
    their mean varies less than either (log-spread 0.19 against 0.27 and 0.25): on those records at their true rate
    it ranged 0.49-1.63, hence the bounds :data:`RATE_SCALE`, 0.45-1.8.
    """
    if not math.isfinite(width) or width <= 0:
        return heart_rate / _TYPICAL_BPM
    return math.sqrt(heart_rate / _TYPICAL_BPM * _TYPICAL_WIDTH_MS / width)


def _rate_problems(heart_rate: float, width: float):
    lo, hi = HEART_RATE_BPM
    if not lo <= heart_rate <= hi:
        yield f"heart rate {heart_rate:.0f} bpm (physiological: {lo:g}-{hi:g})"
    lo, hi = R_WIDTH_MS
    if math.isfinite(width) and not lo <= width <= hi:
        yield f"R-wave width {width:.0f} ms at half height (physiological: {lo:g}-{hi:g})"
    scale = rate_scale(heart_rate, width)
    lo, hi = RATE_SCALE
    if not lo <= scale <= hi:
        yield f"heart rate {heart_rate:.0f} bpm with R waves {width:.0f} ms wide at half height: a rate {scale:.2g} times too {'high' if scale > 1 else 'low'}"


def _plausible_rate(heart_rate: float, width: float, fs: float) -> float | None:
    """The common rate at which the heart rate and width fall in range, best centred on typical values (None: none does)."""
    fits = [rate for rate in COMMON_RATES if not any(True for _ in _rate_problems(heart_rate * rate / fs, width * fs / rate))]
    return min(fits, key=lambda rate: abs(math.log(rate_scale(heart_rate * rate / fs, width * fs / rate))), default=None)


def _unit_hint(amplitude: float | None) -> str | None:
    if amplitude is None:
        return None
    lo, hi = R_AMPLITUDE_MV
    return "uV" if amplitude > hi else "V" if amplitude < lo else None


def _unit_problems(amplitude: float | None) -> list[str]:
    if _unit_hint(amplitude) is None:
        return []
    lo, hi = R_AMPLITUDE_MV
    return [f"R-wave amplitude {amplitude:.3g} in mV (physiological: {lo:g}-{hi:g})"]
