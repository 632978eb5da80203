"""Sinus rhythm with premature beats, made from real records, and the cinc2021 sample's rhythm labels.

:func:`insert_premature_beats` makes a record "by the rules of the rhythm": in a sinus record, every few beats one
beat (its P wave, QRS and T wave, copied unchanged) comes early by a share of the interval before it, and the beat
after it keeps its time, so the premature beat is followed by a full compensatory pause (the two intervals add up to
two of the underlying rhythm). The beat is moved by cutting that many samples out of the end of the preceding
interval (after the T wave of the beat before, so a short cut may land on its tail, as a P wave on a T wave does) and
putting as many back in the diastole after the moved beat (the diastole there, stretched, with its level kept). The
morphology of every beat is the record's own; only the timing changes. What it cannot make: an ectopic P wave of
another shape, or a ventricular beat's wide QRS.

:func:`scp_labels` reads the SNOMED-CT codes of a CinC 2021 header (`# Dx:`) as the challenge's abbreviations.
`scripts/ectopy_af.py` measures with both how often the shipped model calls such records AF.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["insert_premature_beats", "scp_labels", "ECTOPY", "SINUS", "AF_LABELS"]

ECTOPY = ("PAC", "PVC", "SVPB", "VPB", "BPAC")  # premature beats, atrial and ventricular
SINUS = ("STach", "SB", "SA")  # sinus tachycardia, bradycardia and arrhythmia
AF_LABELS = ("AF", "AFL")
T_WAVE_S = 0.35  # the cut starts this long after the beat before (its QRS and most of its T wave)
BEFORE_P_S = 0.22  # ... and ends this long before the moved beat's R peak (its P wave and PR interval)


def insert_premature_beats(signal, fs: float, peaks, *, prematurity: float = 0.25, spacing=(4, 8), seed: int | None = None):
    """A copy of a sinus record with every few beats moved early, each followed by a compensatory pause.

    Args:
        signal: array `(n_samples,)`, one lead.
        fs: sampling rate in Hz.
        peaks: its R peaks (sample indices, increasing), e.g. :func:`ecgrhythm.preprocessing.rpeaks.detect_beats`'.
        prematurity: how much earlier a moved beat comes, as a share of the interval before it (0 to 0.5); where the
            diastole is too short for that, as much as it allows, and the beat is left alone below 60 % of it.
        spacing: `(low, high)`: beats between two moved ones, drawn uniformly in `[low, high)` (low at least 2).
        seed: random seed of the spacing.

    Returns:
        `(new_signal, moved)`: float array of the same length as `signal`, and the sample indices of the moved
        beats' R peaks in it.

    Raises:
        ValueError: `prematurity` is outside (0, 0.5] or `spacing` is not two increasing integers from 2.
    """
    x, peaks = np.asarray(signal, dtype=np.float64).ravel(), np.asarray(peaks, dtype=int)
    if not 0 < prematurity <= 0.5:
        raise ValueError(f"Invalid argument `prematurity`: expected a share of the R-R interval in (0, 0.5]. Received: {prematurity!r}")
    low, high = (int(v) for v in spacing)
    if not 2 <= low < high:
        raise ValueError(f"Invalid argument `spacing`: expected (low, high) with 2 <= low < high. Received: {spacing!r}")
    rng = np.random.default_rng(seed)
    pieces, moved, pos = [], [], 0
    i = int(rng.integers(1, high))
    while i < len(peaks) - 1:
        a, b, c = peaks[i - 1], peaks[i], peaks[i + 1]
        want = int(prematurity * (b - a))
        cut_lo, cut_hi = a + int(T_WAVE_S * fs), b - int(BEFORE_P_S * fs)
        fill_lo, fill_hi = b + int(T_WAVE_S * fs), c - int(BEFORE_P_S * fs)
        d = min(want, cut_hi - cut_lo)
        if d < 0.6 * want or d < 2 or fill_hi - fill_lo < 4 or cut_lo < pos:
            i += 1
            continue
        start = cut_hi - d
        mid = (fill_lo + fill_hi) // 2
        diastole = x[fill_lo:fill_hi]
        filler = np.interp(np.linspace(0, len(diastole) - 1, d), np.arange(len(diastole)), diastole - diastole.mean()) + x[mid]
        pieces += [x[pos:start], x[start + d : mid], filler]
        moved.append(b - d)
        pos = mid
        i += int(rng.integers(low, high))
    pieces.append(x[pos:])
    return np.concatenate(pieces), np.array(moved, dtype=int)


def scp_labels(header, mapping_dir=None) -> list[str]:
    """The diagnoses of a CinC 2021 record as the challenge's abbreviations (`PAC`, `STach`, ...).

    Args:
        header: the record's `.hea` file.
        mapping_dir: the folder of `dx_mapping_scored.csv` and `dx_mapping_unscored.csv` (default: the header's).

    Returns:
        One abbreviation per code of the header's `# Dx:` line, in its order (the code itself where no mapping names it).

    Raises:
        ValueError: the header has no `# Dx:` line.
    """
    header = Path(header)
    folder = Path(mapping_dir) if mapping_dir is not None else header.parent
    names = {}
    for file in ("dx_mapping_scored.csv", "dx_mapping_unscored.csv"):
        if (folder / file).is_file():
            with (folder / file).open(encoding="utf-8", newline="") as f:
                names.update({row["SNOMEDCTCode"].strip(): row["Abbreviation"].strip() for row in csv.DictReader(f)})
    for line in header.read_text(encoding="utf-8").splitlines():
        if line.lstrip("#").strip().startswith("Dx:"):
            codes = [c.strip() for c in line.split(":", 1)[1].split(",") if c.strip()]
            return [names.get(c, c) for c in codes]
    raise ValueError(f"{header}: no '# Dx:' line; expected a CinC 2021 header")
