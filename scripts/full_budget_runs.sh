#!/usr/bin/env bash
# The full-budget study runs (issue: the three answers at full budget): the shipped recipe and one
# change at a time, trained on every training record of crossval folds 0-2 (fold seed 0) for 15
# epochs. Each run is a `crossval` folder under runs/full-budget/; rerunning resumes where it stopped
# (finished folds are not trained again). Afterwards `scripts/full_budget_import.sh` records the
# finished folds in the study store and rewrites docs/studies/.
# Roughly 11 minutes per fold on an idle 2-core CPU (fewer without an LSTM): about 3.5 hours in all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
OUT=${FULL_BUDGET_DIR:-runs/full-budget}
DATA=${DATA:-../shared/data/cinc2017}
run() {  # name, then options that differ from the shipped recipe
    local name=$1
    shift
    .venv/bin/ecgrhythm crossval --data "$DATA" --output "$OUT/$name" --folds 5 --fold 0 --fold 1 --fold 2 \
        --epochs 15 --no-bandpass --patience 12 --quiet --results "$OUT/reports" "$@"  # patience 12: train's default then (never reached)
}
run shipped                                   # the baseline of all three studies
run minmax --normalization minmax
run none --normalization none
run lstm1 --lstm-layers 1
run lstm0 --lstm-layers 0
run crop_pad --fixed-length 30
