#!/usr/bin/env bash
# The shipped model (models/cinc2017): the three recipes cross-validation chose (scripts/crossval_candidates.sh:
# seed1-augment, seed1 and seed2-augment), each trained on all 7,249 CinC 2017 records for the 40 epochs their
# cross-validations ran, averaged, and calibrated on the same recipes' out-of-fold probabilities at the last epoch
# (the fold networks' last-epoch weights, as the final networks keep theirs): the records' class frequencies, which
# the balanced class weights took out of the training (--prior-correction), then one temperature per predicted class.
# Then the folder's ONNX graph (model.onnx, what classify, episodes, evaluate and serve run on by default), written from the
# final weights and checked against them (ecgrhythm export refuses a graph that differs by more than 1e-5).
# About 25 to 30 minutes per network on an idle 2-core CPU; rerunning resumes an interrupted training. Writes runs/final/ and runs/ship/ (a new folder);
# copy runs/ship's files into models/cinc2017, whose MODEL_CARD.md stays.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DATA=${DATA:-${ECGRHYTHM_DATA:-../shared/data}/cinc2017}
ALL=(--data "$DATA" --val-fraction 0 --epochs 40 --no-bandpass --quiet --resume)
AUGMENT=(--augment flip,scale,noise,wander)
.venv/bin/ecgrhythm train "${ALL[@]}" --output runs/final/seed1-augment --seed 1 "${AUGMENT[@]}"
.venv/bin/ecgrhythm train "${ALL[@]}" --output runs/final/seed1 --seed 1
.venv/bin/ecgrhythm train "${ALL[@]}" --output runs/final/seed2-augment --seed 2 "${AUGMENT[@]}"
if [ ! -f runs/crossval/seed1+augment2-last/oof.csv ]; then
    .venv/bin/python scripts/last_epoch_ensemble.py runs/crossval/seed1-augment runs/crossval/seed1 runs/crossval/seed2-augment \
        --data "$DATA" --oof runs/crossval/seed1+augment2-last
fi
# The first network finds the AF episodes (EpisodeParams.networks = 1): the augmented seed-1 one
.venv/bin/ecgrhythm ensemble runs/final/seed1-augment runs/final/seed1 runs/final/seed2-augment --output runs/ship
.venv/bin/ecgrhythm calibrate runs/ship --crossval runs/crossval/seed1+augment2-last --per-predicted-class --prior-correction
.venv/bin/ecgrhythm export --model runs/ship --output runs/ship/model.onnx  # after calibrate: the graph records the final weights
.venv/bin/ecgrhythm export --model runs/ship --networks 1 --output runs/ship/first_network.onnx  # the episode windows' network alone
