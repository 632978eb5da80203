"""How well each network finds AF episodes when the episode settings are fitted without the patient scored.

The episode finder's settings (`EpisodeParams` defaults) were fitted with the shipped network on the 18
records of the cpsc2021 sample, and its score there (2.111) is scored on the same records. To compare
networks fairly, this script scores every record under a grid of settings (window probabilities computed
once per record, at the default window and hop, from a folder's first network as `episodes` does, or from all
its networks averaged with `--all-networks`), then, for each of the sample's patients (the record name
before its last `_`), picks the settings with the best mean CPSC 2021 score on the other patients' records
and scores that patient's records with them: a leave-one-patient-out fit. It prints, per network, the
score (and the mean AF burden error) at the default settings, the best in-sample score of the grid (and the settings that give it) and the
cross-fitted score.

About 35 s per network on a 2-core CPU. Example:

    .venv/bin/python scripts/episode_settings_crossfit.py models/cinc2017 runs/crossval/seed1/fold0
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from ecgrhythm.episodes.annotations import read_rhythm_annotations
from ecgrhythm.episodes.finder import EpisodeParams, collect_windows, episodes_from_windows, iter_window_probabilities
from ecgrhythm.evaluation.episodes import annotated_records, score_record
from ecgrhythm.inference.classifier import RhythmClassifier
from ecgrhythm.records import read_record

GRID = {
    "switch_prob": (0.01, 0.05),
    "emission_scale": (0.5, 1.0),
    "pull": (0.2, 1.0),
    "irregularity": (0.1, 0.2),
    "refine_s": (3.0, 6.0),
    "emission_bias": (-2.0, -1.0, 0.0, 1.0),
}


def record_scores(model, paths, grid, networks: int | None = 1) -> tuple[np.ndarray, np.ndarray]:
    """CPSC 2021 score and AF burden error, each `(n_records, n_settings)`, of one model's episodes under each setting.

    The windows' probabilities are those of the model's first `networks` networks (`None`: all), as `EpisodeParams.networks`.
    """
    clf = RhythmClassifier.load(model)
    scores, burden_errors = np.zeros((len(paths), len(grid))), np.zeros((len(paths), len(grid)))
    for i, path in enumerate(paths):
        record, truth = read_record(path), read_rhythm_annotations(path)
        one, lead = clf.choose_lead(record, None)
        signal = one.signal[:, 0]
        stream = iter_window_probabilities(clf, [signal], one.fs, lead=lead, params=EpisodeParams(networks=networks))
        windows = collect_windows(stream, clf.classes_, one.n_samples / one.fs)

        def read(a, b, signal=signal):
            return signal[a:b]

        for j, params in enumerate(grid):
            found = episodes_from_windows(windows, read, one.fs, one.n_samples, record_name=record.record_name, lead=lead, params=params)
            scored = score_record(found, truth)
            scores[i, j], burden_errors[i, j] = scored["cpsc2021_score"], scored["burden_error"]
    return scores, burden_errors


def leave_one_patient_out(scores: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """Index `(n_records,)` of the setting each record is scored with: the best on the other patients' records."""
    chosen = np.zeros(len(scores), dtype=int)
    for patient in np.unique(patients):
        held = patients == patient
        chosen[held] = int(np.argmax(scores[~held].mean(axis=0)))
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", metavar="MODEL_DIR")
    parser.add_argument("--data", default="../shared/data/cpsc2021-sample", help="WFDB records with .atr rhythm annotations")
    parser.add_argument(
        "--all-networks", action="store_true", help="average every network of a folder in the windows (default: its first, as `episodes` does)"
    )
    args = parser.parse_args()
    paths = annotated_records(args.data)
    patients = np.array([p.stem.rsplit("_", 1)[0] for p in paths])
    grid = [EpisodeParams(**dict(zip(GRID, values))) for values in itertools.product(*GRID.values())]
    default = grid.index(EpisodeParams())
    print(f"{len(paths)} records of {len(np.unique(patients))} patients; {len(grid)} settings")
    for model in args.models:
        scores, burden_errors = record_scores(model, paths, grid, None if args.all_networks else 1)
        rows = np.arange(len(paths))
        crossfit = leave_one_patient_out(scores, patients)
        best = int(np.argmax(scores.mean(axis=0)))
        changed = {name: getattr(grid[best], name) for name in GRID if getattr(grid[best], name) != getattr(EpisodeParams(), name)}
        print(
            f"{model}: CPSC 2021 score (AF burden error): default settings {scores[:, default].mean():.3f} "
            f"({burden_errors[:, default].mean():.1%}); best of the grid in-sample {scores[:, best].mean():.3f} "
            f"({burden_errors[:, best].mean():.1%}; changes from the defaults: {changed or 'none'}); "
            f"fitted leaving each patient out {scores[rows, crossfit].mean():.3f} ({burden_errors[rows, crossfit].mean():.1%})"
        )


if __name__ == "__main__":
    main()
