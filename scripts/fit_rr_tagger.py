"""Fit the R-R tagger of the beats method and write its ONNX graph (`src/ecgrhythm/episodes/rr_tagger.onnx`).

The recipe is :mod:`ecgrhythm.lab.rr_tagger_fit`'s: 80 records of 10 min joined from CinC 2017 records (seed 0, after
the 12 the episode scores are measured on), 15 epochs, seed 0. About 30 s for the beats and 30 s for the training on a
2-core CPU. Then refit the beats method's blend and settings on it (`scripts/episode_settings_crossfit.py
--fit-beat-model`) and score it (`scripts/episode_settings_crossfit.py`). Example:

    .venv/bin/python scripts/fit_rr_tagger.py --output src/ecgrhythm/episodes/rr_tagger.onnx
"""

from __future__ import annotations

import argparse

from ecgrhythm.episodes.beats import record_beats
from ecgrhythm.episodes.rr_tagger import tagger_inputs
from ecgrhythm.lab.episode_data import CPSC_DIR
from ecgrhythm.lab.rr_tagger_fit import fit_tagger, training_beats, write_tagger_onnx
from ecgrhythm.records import read_record
from ecgrhythm.utils.io import atomic_write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="the .onnx file to write (replaced atomically)")
    parser.add_argument("--records", type=int, default=80, help="joined training records (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=15, help="training epochs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default: %(default)s)")
    args = parser.parse_args()
    records = training_beats(args.records)
    print(f"{len(records)} records, {sum(len(y) for _, y in records)} beats, {sum(int(y.sum()) for _, y in records)} in AF", flush=True)
    model, standardisation = fit_tagger(records, epochs=args.epochs, seed=args.seed, verbose=True)
    check = read_record(CPSC_DIR / "data_101_6.hea")  # a real record with AF episodes, for the graph's parity check
    beats = record_beats(lambda a, b: check.signal[a:b, 0], check.fs, check.n_samples)
    data = write_tagger_onnx(model, standardisation, tagger_inputs(beats, check.fs))
    with atomic_write(args.output, "wb") as f:
        f.write(data)
    print(f"wrote {args.output} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
