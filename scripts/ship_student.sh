#!/usr/bin/env bash
# The model to ship next (issue #36), built into runs/ship-student; models/cinc2017 still holds the three networks of
# scripts/ship_model.sh. One network of the shipped size (64 units) taught by the two 128-unit networks
# (distillation, `train --teacher`; issue #36): seed 5 on augmented windows, each training target half its label and half
# the pair's last-epoch out-of-fold probabilities (their cross-validations' runs are kept in docs/results/crossval/, so the
# teacher needs no training), trained on all 7,249 CinC 2017 records for the 40 epochs its cross-validation ran
# (student-seed5-augment: 0.8539 against the three networks shipped before, 0.8501), and calibrated on that
# cross-validation's last-epoch out-of-fold probabilities (the fold networks' last epochs, as the final network keeps its
# own): the records' class frequencies, which the balanced class weights took out of the training (--prior-correction),
# then one temperature per predicted class. Then the folder's ONNX graph (model.onnx, what classify, episodes, evaluate
# and serve run on by default), written from the final weights and checked against them (ecgrhythm export refuses a
# graph that differs by more than 1e-5).
# About 25 to 35 minutes on an idle 2-core CPU (2,082 s on 7 Dec 2026, beside a test run for half of it); rerunning
# resumes an interrupted training. Writes runs/final/student-seed5-augment and runs/ship-student (a new folder).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DATA=${DATA:-${ECGRHYTHM_DATA:-../shared/data}/cinc2017}
TEACHER=(--teacher docs/results/crossval/seed1-lstm128/run docs/results/crossval/seed1-augment-lstm128/run --teacher-weight 0.5)
.venv/bin/ecgrhythm train --data "$DATA" --val-fraction 0 --epochs 40 --no-bandpass --quiet --resume \
    --output runs/final/student-seed5-augment --seed 5 --augment flip,scale,noise,wander "${TEACHER[@]}"
.venv/bin/ecgrhythm ensemble runs/final/student-seed5-augment --output runs/ship-student
.venv/bin/ecgrhythm calibrate runs/ship-student --crossval docs/results/crossval/student-seed5-augment/run --last-epoch \
    --per-predicted-class --prior-correction
.venv/bin/ecgrhythm export --model runs/ship-student --output runs/ship-student/model.onnx  # after calibrate: the graph records the final weights
