"""Every episode score of the windows and beats methods, with settings fitted without the records scored.

Leave one patient out on the cpsc2021 sample (the record name before its last `_` is the patient), and
grouped folds of long records joined from CinC 2017 records (each source record in one fold; the
shipped networks saw every CinC record, so the network part is in-sample there: the cpsc2021 numbers
are the ones to weigh). Per fold, each method's settings (and the beats method's model) are fitted on
the other folds (:mod:`ecgrhythm.lab.episode_cv`). It prints, per fold, the CPSC 2021 score, AF burden
error (points) and boundary F1 within 3 s of each method, then for each method and data set the CPSC
2021 score, burden error, episode sensitivity and PPV, boundary F1 within 3 s and AF F1 per second of
the held-out records pooled, and the shipped defaults' scores (fitted on the cpsc2021 sample: in-sample).

Window probabilities (the model's first network, at the default window and hop) and beats are cached
under `runs/episodes/` (about 30 s for the sample and 50 s for the joins on a 2-core CPU the first
time); then the run takes a few minutes. Example:

    .venv/bin/python scripts/episode_settings_crossfit.py
    .venv/bin/python scripts/episode_settings_crossfit.py --fit-beat-model   # the shipped BeatModel's numbers
    .venv/bin/python scripts/episode_settings_crossfit.py --hop-s 2          # windows every 2 s (the finder's before 7 Dec 2026)
    .venv/bin/python scripts/episode_settings_crossfit.py --evidence rr_tagger   # the beats' R-R evidence alone, without P waves
    .venv/bin/python scripts/episode_settings_crossfit.py --p-wave-floor 0       # the whole P-wave coherence as evidence
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from ecgrhythm.episodes import atrial
from ecgrhythm.episodes.beats import EVIDENCE
from ecgrhythm.episodes.params import EpisodeParams
from ecgrhythm.lab.episode_cv import (
    BEAT_GRID,
    cross_validate,
    evidence_auc,
    fit_beat_model,
    fold_groups,
    fold_table,
    grid_params,
    score_grid,
    summary_line,
)
from ecgrhythm.lab.episode_data import CPSC_DIR, cpsc2021_cases, joined_cases


def _rounded(value):
    return tuple(round(float(v), 4) for v in value) if isinstance(value, tuple) else round(float(value), 4)


def _print_shipped(cases, fitted_on: str, floor_is_shipped: bool):
    """The scores of both methods at the shipped defaults (the beats method only at the shipped P-wave floor, which its model was fitted at)."""
    for method in ("windows", "beats") if floor_is_shipped else ("windows",):
        rows = [row[0] for row in score_grid(cases, [EpisodeParams(method=method)])]
        print(summary_line(f"{method} at the shipped defaults (fitted on {fitted_on})", rows))


def _print_auc(cases):
    auc = evidence_auc(cases)
    print(f"per-beat ROC AUC of each evidence alone: R-R tagger {auc['rr_tagger']:.3f}, P-wave coherence {auc['p_wave_coherence']:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, metavar="MODEL_DIR", help="model folder (default: the shipped one)")
    parser.add_argument("--data", default=str(CPSC_DIR), help="WFDB records with .atr rhythm annotations")
    parser.add_argument("--joined", type=int, default=12, help="joined CinC 2017 records (10 min, 200 Hz, seed 0)")
    parser.add_argument("--joined-folds", type=int, default=4, help="folds of the joined records")
    parser.add_argument("--fit-beat-model", action="store_true", help="fit the beats model on all records and print it and its settings")
    parser.add_argument("--hop-s", type=float, default=EpisodeParams().hop_s, help="seconds between windows (default: %(default)s, the finder's)")
    parser.add_argument(
        "--window-s", type=float, default=EpisodeParams().window_s, help="window length in seconds (default: %(default)s, the finder's)"
    )
    parser.add_argument(
        "--evidence", default=",".join(EVIDENCE), help="the beats' own evidence the beats method uses, comma-separated (default: %(default)s)"
    )
    parser.add_argument(
        "--p-wave-floor",
        type=float,
        default=atrial.P_WAVE_FLOOR,
        help="P-wave coherence below which the beats method reads no P wave (default: %(default)s, the finder's)",
    )
    args = parser.parse_args()
    floor_is_shipped = args.p_wave_floor == atrial.P_WAVE_FLOOR
    atrial.P_WAVE_FLOOR = args.p_wave_floor  # read by p_wave_evidence at each call
    evidence = tuple(name for name in args.evidence.split(",") if name)
    if any(name not in EVIDENCE for name in evidence) or len(set(evidence)) < len(evidence):
        parser.error(f"--evidence: expected distinct names from {', '.join(EVIDENCE)}, got {args.evidence!r}")
    windows = EpisodeParams(hop_s=args.hop_s, window_s=args.window_s)
    cpsc = cpsc2021_cases(args.model, data_dir=args.data, params=windows)
    joined = joined_cases(args.joined, model_dir=args.model, params=windows) if args.joined else []
    if args.fit_beat_model:
        model = fit_beat_model(cpsc + joined, cpsc, evidence)
        rows = score_grid(cpsc, grid_params(BEAT_GRID), model)
        best = int(np.argmax(np.mean([[r["cpsc2021_score"] for r in row] for row in rows], axis=0)))
        print(dataclasses.replace(model, **{f.name: _rounded(getattr(model, f.name)) for f in dataclasses.fields(model) if f.name != "evidence"}))
        print("settings (best on the cpsc2021 sample, in-sample):", grid_params(BEAT_GRID)[best])
        return
    folds = fold_groups(cpsc)
    print(f"beats method's own evidence: {', '.join(evidence)} (P-wave floor {atrial.P_WAVE_FLOOR:g})")
    print(f"cpsc2021 sample: {len(cpsc)} records of {len(np.unique(folds))} patients, leave one patient out")
    _print_auc(cpsc)
    result = cross_validate(cpsc, folds, joined, evidence=evidence)
    print(fold_table(cpsc, folds, result))
    for fold in result["folds"]:
        print(
            f"  {fold['cases'][0].rsplit('_', 1)[0]}: windows {fold['windows']}; beats {fold['beats']}, blend {np.round(fold['blend'], 2).tolist()}"
        )
    for method in ("windows", "beats"):
        print(summary_line(method, result[method]))
    _print_shipped(cpsc, "this sample", floor_is_shipped)
    if joined:
        jfolds = fold_groups(joined, args.joined_folds)
        print(f"\njoined CinC 2017 records: {len(joined)} of 10 min, {args.joined_folds} folds (network in-sample)")
        _print_auc(joined)
        jresult = cross_validate(joined, jfolds, cpsc, blend_on_cases=False, evidence=evidence)
        print(fold_table(joined, jfolds, jresult))
        for method in ("windows", "beats"):
            print(summary_line(method, jresult[method]))
        _print_shipped(joined, "the cpsc2021 sample", floor_is_shipped)


if __name__ == "__main__":
    main()
