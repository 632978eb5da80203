#!/usr/bin/env bash
# The cross-validations that choose the shipped recipe (issue: beyond the 2017 winners), in the order
# they are run: the current recipe first, then one candidate at a time. Each is `ecgrhythm crossval`
# with 5 folds (fold seed 0, so every recipe is paired fold by fold with the baseline) in
# runs/crossval/<name>/; rerunning resumes where it stopped, and each finished recipe updates
# docs/results/crossval/ (its report and the candidates table). About 30 minutes per fold on an idle
# 2-core CPU: 2.5 hours per recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
DATA=${DATA:-../shared/data/cinc2017}
run() {  # name, then the options that differ from train's defaults
    local name=$1
    shift
    .venv/bin/ecgrhythm crossval --data "$DATA" --output "runs/crossval/$name" --folds 5 --quiet "$@"
}
run baseline --no-bandpass                                  # the recipe of models/cinc2017
run augment --no-bandpass --augment flip,scale,noise,wander    # sign flips, amplitude, noise, baseline wander
run bandpass                                                # train's default since the normalisation study
