"""Scores of AF episodes against annotations: pure functions of sample indices.

The CPSC 2021 score follows the challenge's official scorer (`score_2021.py`
by Xingyao Wang and Chengyu Liu, Southeast University; described in Wang et
al., "Paroxysmal atrial fibrillation events detection from dynamic ECG
recordings: the 4th China Physiological Signal Challenge 2021", PhysioNet,
2021). Per record the score is `U = Ur + Ue`:

- `Ur` scores the record class (0 non-AF, 1 persistent, 2 paroxysmal) by the
  matrix `CLASS_SCORES[true][predicted]`. The predicted class is 0 with no AF
  episode, 1 with one episode spanning the whole record (`end - onset ==
  n_samples - 1`), 2 otherwise.
- `Ue` (AF records only) adds, for every predicted episode, the value of its
  onset in the onset score ranges and of its end in the end score ranges,
  times `n_true / max(n_true, n_predicted)`. With `L` the annotation sample
  positions (beats *and* rhythm-change marks, as the official `beat_loc`)
  and `s`, `e` the indices in `L` of the `(AFIB`/`(AFL` and `(N` marks: an
  onset in `[L[s-1], L[s+2])` scores 1 and in `[L[s-2], L[s-1])` or
  `[L[s+2], L[s+3])` 0.5; an end in `[L[e-2], L[e+1])` scores 1 and in
  `[L[e-3], L[e-2])` or `[L[e+1], L[e+2])` 0.5 (within one beat: 1, two: 0.5),
  with the official special cases at the record's ends. Indices outside `L`
  are clipped to it (the official code would fail or wrap there).

Differences from the official scorer, which reads `.atr` files itself: AF onsets are the `(AFIB` or
`(AFL` marks that start AF (the official code counts an `(AFL` right after `(AFIB` as a second onset;
the CPSC 2021 data has no such pair), AF ends are any other rhythm mark (the official code takes `(N`
only, the one other mark of that data), and a record whose last AF episode has no end mark ends it at
its last annotation (the official code fails there). On the CPSC 2021 records the two agree
(`tests/episodes/test_scoring.py` checks the ranges against a transcription of the official arrays).

The overall score is the mean over records; its best is 3 for a record with
one episode, the challenge's best entries scored about 2.06 on the hidden test.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "RECORD_CLASSES",
    "CLASS_SCORES",
    "predicted_class",
    "endpoint_ranges",
    "cpsc2021_record_score",
    "af_burden",
    "episode_overlaps",
    "boundary_hits",
    "in_intervals",
    "af_seconds",
]

RECORD_CLASSES = ("non-AF", "persistent", "paroxysmal")  # CPSC 2021 classes 0, 1, 2
CLASS_SCORES = np.array([[1.0, -1.0, -0.5], [-2.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])


def predicted_class(endpoints, n_samples: int) -> int:
    """CPSC 2021 class (0, 1, 2) of predicted `[onset, end]` pairs `(n, 2)` in a record of `n_samples`."""
    endpoints = np.asarray(endpoints).reshape(-1, 2)
    if len(endpoints) == 0:
        return 0
    return 1 if len(endpoints) == 1 and endpoints[0, 1] - endpoints[0, 0] == n_samples - 1 else 2


def endpoint_ranges(ann_samples, af_starts, af_ends, true_class: int, n_samples: int):
    """The official onset and end score ranges as `[(lo, hi, value)]` (`lo <= x < hi` scores `value`; ranges add up).

    Args:
        ann_samples: int array `(n_annotations,)`, every annotation's sample (the scorer's `beat_loc`).
        af_starts: indices into `ann_samples` of the AF onset marks.
        af_ends: indices into `ann_samples` of the AF end marks.
        true_class: 1 (persistent) or 2 (paroxysmal).
        n_samples: the record's length.

    Returns:
        `(onset_ranges, end_ranges)`, two lists of `(lo, hi, value)`.
    """
    loc = np.asarray(ann_samples, dtype=int)
    last = len(loc) - 1

    def at(i):
        return int(loc[min(max(i, 0), last)])

    onset, end = [], []
    for s in af_starts:
        if true_class == 2 and s > 2:
            onset += [(at(s - 1), at(s + 2), 1.0), (at(s - 2), at(s - 1), 0.5)]
        elif true_class == 2 and s == 2:
            onset += [(at(s - 1), at(s + 2), 1.0), (0, at(s - 1), 0.5)]
        else:  # paroxysmal AF from the first beat, or persistent AF
            onset += [(0, at(s + 2), 1.0)]
        onset.append((at(s + 2), at(s + 3), 0.5))
    for e in af_ends:
        if true_class == 2 and e + 2 < last:
            end += [(at(e - 2), at(e + 1), 1.0), (at(e + 1), min(at(e + 2), n_samples - 1), 0.5)]
        elif true_class == 2 and e + 1 < last:
            end += [(at(e - 2), at(e + 1), 1.0), (at(e + 1), n_samples, 0.5)]
        else:  # AF to the last beat, or persistent AF
            end += [(at(e - 2), n_samples, 1.0)]
        end.append((at(e - 3), at(e - 2), 0.5))
    return onset, end


def _value(ranges, x) -> float:
    return sum(v for lo, hi, v in ranges if lo <= x < hi)


def cpsc2021_record_score(endpoints, n_samples: int, ann_samples, af_starts, af_ends, true_class: int) -> dict:
    """CPSC 2021 score of one record (see the module docstring).

    Args:
        endpoints: predicted AF episodes, int array `(n_predicted, 2)` of `[onset, end]` samples (end at most `n_samples - 1`).
        n_samples: the record's length.
        ann_samples, af_starts, af_ends: the truth, as for :func:`endpoint_ranges`.
        true_class: 0 (non-AF), 1 (persistent) or 2 (paroxysmal).

    Returns:
        `{"score", "class_score", "endpoint_score", "predicted_class"}`.
    """
    endpoints = np.asarray(endpoints, dtype=int).reshape(-1, 2)
    pred = predicted_class(endpoints, n_samples)
    class_score = float(CLASS_SCORES[true_class, pred])
    endpoint_score = 0.0
    if true_class in (1, 2) and len(endpoints):
        onset, end = endpoint_ranges(ann_samples, af_starts, af_ends, true_class, n_samples)
        total = sum(_value(onset, a) + _value(end, b) for a, b in endpoints)
        endpoint_score = total * len(af_starts) / max(len(af_starts), len(endpoints))
    return {"score": class_score + endpoint_score, "class_score": class_score, "endpoint_score": endpoint_score, "predicted_class": pred}


def af_burden(intervals, n_samples: int) -> float:
    """Share of `n_samples` covered by `[onset, end]` sample intervals `(n, 2)` (assumed disjoint)."""
    intervals = np.asarray(intervals, dtype=float).reshape(-1, 2)
    return float(np.clip(intervals[:, 1] - intervals[:, 0], 0, None).sum() / n_samples) if n_samples else 0.0


def episode_overlaps(true_intervals, pred_intervals) -> tuple[int, int]:
    """`(true episodes overlapped by a predicted one, predicted episodes overlapping a true one)`.

    Episode sensitivity is the first over the number of true episodes,
    episode precision the second over the number of predicted ones.
    """
    t = np.asarray(true_intervals, dtype=float).reshape(-1, 2)
    p = np.asarray(pred_intervals, dtype=float).reshape(-1, 2)
    overlap = (t[:, None, 0] < p[None, :, 1]) & (p[None, :, 0] < t[:, None, 1])  # (n_true, n_pred)
    return int(overlap.any(axis=1).sum()), int(overlap.any(axis=0).sum())


def boundary_hits(true_points, pred_points, tolerance: float) -> int:
    """Number of true boundary points with a predicted one within `tolerance`, each prediction used once (greedy by distance)."""
    true_points, pred_points = list(np.asarray(true_points, dtype=float)), list(np.asarray(pred_points, dtype=float))
    pairs = sorted((abs(a - b), i, j) for i, a in enumerate(true_points) for j, b in enumerate(pred_points) if abs(a - b) <= tolerance)
    used_t, used_p = set(), set()
    for _, i, j in pairs:
        if i not in used_t and j not in used_p:
            used_t.add(i)
            used_p.add(j)
    return len(used_t)


def in_intervals(points, intervals) -> np.ndarray:
    """Whether each of `points` (sample indices or times) lies in one of the `[onset, end]` `intervals` (ends included), bool `(len(points),)`."""
    points, intervals = np.asarray(points), np.asarray(intervals, dtype=float).reshape(-1, 2)
    return ((points[:, None] >= intervals[None, :, 0]) & (points[:, None] <= intervals[None, :, 1])).any(axis=1)


def af_seconds(true_intervals, pred_intervals, n_samples: int, fs: float) -> tuple[int, int, int]:
    """`(true positive, false positive, false negative)` whole seconds of AF.

    Each whole second of the record is AF in the truth (and in the prediction) when its middle lies in
    one of the `[onset, end]` sample intervals; the AF F1 per second is `2 tp / (2 tp + fp + fn)`.
    """
    middles = (np.arange(int(n_samples // fs)) + 0.5) * fs
    t, p = in_intervals(middles, true_intervals), in_intervals(middles, pred_intervals)
    return int(np.sum(t & p)), int(np.sum(~t & p)), int(np.sum(t & ~p))
