"""Grouped cross-validation of the AF episode finder: the windows method against the beats method (the default).

Both methods are scored on records whose settings (and, for the beats method, whose model) were fitted
without them: leave one patient out on the cpsc2021 sample, and leave a fold of joined CinC 2017 records
out (:mod:`ecgrhythm.lab.episode_data`; each source record in one joined record, so in one fold).

- windows: the `EpisodeParams` grid of :data:`WINDOW_GRID` (HMM over windows, changes moved onto beats);
  per fold, the setting with the best mean CPSC 2021 score on the training records. `emission_bias` is
  the windows' prior of AF (log-odds added to each window's), chosen with the rest.
- beats: per fold, the logistic model of each beat's own evidence (:func:`~ecgrhythm.episodes.beats.beat_evidence`: the R-R
  tagger's log-odds, whose tagger was fitted on other joined records, :mod:`ecgrhythm.lab.rr_tagger_fit`, and the P-wave
  coherence before the QRS; `evidence=("rr_tagger",)` leaves the P waves out) fitted on the training records' beats plus every record of the
  other data set (the joins for cpsc2021, the cpsc2021 sample for the joins), and the blend with the
  network fitted on cpsc2021 training records only (network probabilities on the joins are in-sample:
  the shipped networks saw every CinC record); then the `beat_switch_cost` and `beat_bias` (the beats'
  prior of AF) of :data:`BEAT_GRID` with the best mean CPSC 2021 score on the training records.
"""

from __future__ import annotations

import itertools

import numpy as np

from ecgrhythm.episodes.beats import EVIDENCE, BeatModel, beat_evidence, beat_network_logit
from ecgrhythm.episodes.finder import EpisodeParams, episodes_from_windows
from ecgrhythm.evaluation.episodes import score_record, summarise_records
from ecgrhythm.scoring.episodes import in_intervals

__all__ = ["WINDOW_GRID", "BEAT_GRID", "grid_params", "beat_labels", "evidence_auc", "fit_beat_model", "score_grid", "cross_validate", "fold_groups"]

WINDOW_GRID = {
    "method": ("windows",),
    "switch_prob": (0.01, 0.05),
    "emission_scale": (0.5, 1.0),
    "pull": (0.2, 1.0),
    "irregularity": (0.1, 0.2),
    "refine_s": (3.0, 6.0),
    "emission_bias": (-2.0, -1.0, 0.0, 1.0),
}
BEAT_GRID = {
    "method": ("beats",),
    "beat_switch_cost": (5.0, 10.0, 20.0, 40.0),
    "beat_bias": (-2.0, -1.0, 0.0, 1.0, 2.0),
}


def grid_params(grid: dict) -> list[EpisodeParams]:
    """Every combination of a grid's values as `EpisodeParams`."""
    return [EpisodeParams(**dict(zip(grid, values))) for values in itertools.product(*grid.values())]


def beat_labels(case) -> np.ndarray:
    """Truth per beat (bool): the beat lies in an AF episode `[onset, end]` of the case's truth."""
    return in_intervals(case.beats, case.truth.af_intervals())


def _features(case, evidence: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The case's beat evidence and the network's log-odds at its beats."""
    return beat_evidence(case.read, case.fs, case.n_samples, case.beats, evidence), beat_network_logit(case.windows, case.beats, case.fs)


def evidence_auc(cases) -> dict[str, float]:
    """How well each piece of a beat's own evidence alone tells AF beats from the rest over `cases`' beats: the ROC AUC
    of the R-R tagger's log-odds and of the P-wave coherence (lower for AF), before any floor."""
    from sklearn.metrics import roc_auc_score

    from ecgrhythm.episodes.atrial import p_wave_coherence

    y = np.concatenate([beat_labels(c) for c in cases])
    tagger = np.concatenate([beat_evidence(c.read, c.fs, c.n_samples, c.beats, ("rr_tagger",))[:, 0] for c in cases])
    coherence = np.concatenate([p_wave_coherence(c.read, c.fs, c.n_samples, c.beats) for c in cases])
    return {"rr_tagger": float(roc_auc_score(y, tagger)), "p_wave_coherence": float(roc_auc_score(y, -coherence))}


def _logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    fitted = LogisticRegression(C=1.0, max_iter=2000).fit(x, y)
    return fitted.coef_[0], float(fitted.intercept_[0])


def fit_beat_model(rr_cases, blend_cases, evidence: tuple[str, ...] = EVIDENCE) -> BeatModel:
    """A :class:`BeatModel` of the named `evidence`: its logistic model of the beats' own evidence fitted on `rr_cases`'
    beats, its blend with the network on `blend_cases`'."""
    x = np.concatenate([_features(c, evidence)[0] for c in rr_cases])
    y = np.concatenate([beat_labels(c) for c in rr_cases])
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    coef, intercept = _logistic((x - mean) / scale, y)
    partial = BeatModel(tuple(mean), tuple(scale), tuple(coef), intercept, (1.0, 0.0, 0.0), evidence)
    rows = [np.stack([partial.evidence_logit(f), net], axis=1) for f, net in (_features(c, evidence) for c in blend_cases)]
    w, b = _logistic(np.concatenate(rows), np.concatenate([beat_labels(c) for c in blend_cases]))
    return BeatModel(tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, coef)), intercept, (float(w[0]), float(w[1]), b), evidence)


def score_grid(cases, grid: list[EpisodeParams], beat_model: BeatModel | None = None) -> list[list[dict]]:
    """`rows[i][j]`: :func:`score_record` of case `i` under setting `j`."""
    out = []
    for case in cases:
        row = []
        for params in grid:
            found = episodes_from_windows(
                case.windows, case.read, case.fs, case.n_samples, record_name=case.name, params=params, beats=case.beats, beat_model=beat_model
            )
            row.append(score_record(found, case.truth))
        out.append(row)
    return out


def _best(rows, train: np.ndarray) -> int:
    scores = np.array([[r["cpsc2021_score"] for r in row] for row in rows])
    return int(np.argmax(scores[train].mean(axis=0)))


def fold_groups(cases, n_folds: int | None = None) -> np.ndarray:
    """Fold of each case: one per group (`n_folds=None`), or groups dealt in order into `n_folds` folds."""
    groups = np.array([c.group for c in cases])
    names = list(dict.fromkeys(groups))
    if n_folds is None:
        return np.array([names.index(g) for g in groups])
    return np.array([names.index(g) % n_folds for g in groups])


def cross_validate(
    cases, folds: np.ndarray, other_cases, *, blend_on_cases: bool = True, window_grid=None, beat_grid=None, evidence: tuple[str, ...] = EVIDENCE
) -> dict:
    """Both methods scored fold by fold on `cases`, with settings and models fitted on the other folds.

    Args:
        cases: the records scored (:class:`~ecgrhythm.lab.episode_data.EpisodeCase`).
        folds: fold index of each case.
        other_cases: records of another data set, added to every fold's R-R training beats; when
            `blend_on_cases` is False the network blend is fitted on them instead of the training folds.
        blend_on_cases: fit the blend with the network on the training folds (cpsc2021), or on `other_cases`.
        evidence: the beats' own evidence the beats method uses (names of :data:`~ecgrhythm.episodes.beats.EVIDENCE`).

    Returns:
        `{"windows": [...], "beats": [...], "folds": [...], "chosen": {...}}`: the held-out rows of each
        method in case order, and per fold its cases and the settings each method chose.
    """
    window_grid = grid_params(WINDOW_GRID) if window_grid is None else window_grid
    beat_grid = grid_params(BEAT_GRID) if beat_grid is None else beat_grid
    window_rows = score_grid(cases, window_grid)
    held = {"windows": [None] * len(cases), "beats": [None] * len(cases)}
    fold_info = []
    for fold in np.unique(folds):
        test, train = folds == fold, folds != fold
        w = _best(window_rows, train)
        train_cases = [c for c, t in zip(cases, train) if t]
        model = fit_beat_model(train_cases + list(other_cases), train_cases if blend_on_cases else list(other_cases), evidence)
        beat_rows = score_grid(cases, beat_grid, model)
        b = _best(beat_rows, train)
        for i in np.flatnonzero(test):
            held["windows"][i], held["beats"][i] = window_rows[i][w], beat_rows[i][b]
        fold_info.append(
            {
                "cases": [c.name for c, t in zip(cases, test) if t],
                "windows": _changed(window_grid[w], WINDOW_GRID),
                "beats": _changed(beat_grid[b], BEAT_GRID),
                "blend": model.blend,
            }
        )
    return {**held, "folds": fold_info}


def _changed(params: EpisodeParams, grid: dict) -> dict:
    return {name: getattr(params, name) for name in grid if name != "method"}


def fold_table(cases, folds, result) -> str:
    """Per fold: records, and for each method the mean CPSC 2021 score, burden error and boundary F1 within 3 s."""
    lines = [f"{'fold (held out)':<22} {'n':>2}  {'windows: CPSC  burden  bF1':>27}  {'beats: CPSC  burden  bF1':>25}"]
    for fold in np.unique(folds):
        idx = np.flatnonzero(folds == fold)
        label = cases[idx[0]].group if len({cases[i].group for i in idx}) == 1 else f"fold {fold}"
        cells = []
        for method in ("windows", "beats"):
            s = summarise_records([result[method][i] for i in idx])
            bf1 = "n/a" if s["boundary_f1"] is None else f"{s['boundary_f1']:.2f}"
            cells.append(f"{s['cpsc2021_score']:>6.3f} {100 * s['burden_error']:>6.1f} {bf1:>5}")
        lines.append(f"{label:<22} {len(idx):>2}  {'':>9}{cells[0]}  {'':>7}{cells[1]}")
    return "\n".join(lines)


def summary_line(name: str, rows) -> str:
    """One line of every overall score of `rows` (:func:`summarise_records`)."""
    s = summarise_records(rows)

    def f(v):
        return "n/a" if v is None else f"{v:.3f}"

    return (
        f"{name:<8} CPSC 2021 {s['cpsc2021_score']:.3f}  burden error {100 * s['burden_error']:.1f} points  "
        f"episode sensitivity {f(s['episode_sensitivity'])} PPV {f(s['episode_precision'])}  "
        f"boundary F1 (3 s) {f(s['boundary_f1'])}  AF F1 per second {f(s['af_f1_per_second'])}  ({s['n_records']} records)"
    )
