#!/usr/bin/env bash
# The shipped model (models/cinc2017): the two recipes cross-validation chose (scripts/crossval_candidates.sh:
# seed1-augment and seed1), each trained on all 7,249 CinC 2017 records for the 40 epochs their cross-validation
# ran, averaged, and calibrated on the same recipes' out-of-fold probabilities at the last epoch (the fold networks'
# last-epoch weights, as the final networks keep theirs). About 30 minutes per network on an idle 2-core CPU;
# rerunning resumes an interrupted training. Writes runs/final/ and runs/ship/ (a new folder); copy runs/ship's
# files into models/cinc2017, whose MODEL_CARD.md stays.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DATA=${DATA:-${ECGRHYTHM_DATA:-../shared/data}/cinc2017}
ALL=(--data "$DATA" --val-fraction 0 --epochs 40 --no-bandpass --seed 1 --quiet --resume)
.venv/bin/ecgrhythm train "${ALL[@]}" --output runs/final/seed1-augment --augment flip,scale,noise,wander
.venv/bin/ecgrhythm train "${ALL[@]}" --output runs/final/seed1
if [ ! -f runs/crossval/seed1+augment-last/oof.csv ]; then
    .venv/bin/python scripts/last_epoch_ensemble.py runs/crossval/seed1-augment runs/crossval/seed1 --data "$DATA" \
        --oof runs/crossval/seed1+augment-last
fi
.venv/bin/ecgrhythm ensemble runs/final/seed1-augment runs/final/seed1 --output runs/ship
.venv/bin/ecgrhythm calibrate runs/ship --crossval runs/crossval/seed1+augment-last --per-predicted-class
