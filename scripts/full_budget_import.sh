#!/usr/bin/env bash
# Record the finished folds of the full-budget runs (scripts/full_budget_runs.sh) in the study store
# and rewrite docs/studies/<study>.{csv,md,png} with both budgets. The store is rebuilt from the
# published CSVs first (and the notes from docs/studies/notes/), so this works on a fresh checkout
# with only runs/full-budget/ present.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
OUT=${FULL_BUDGET_DIR:-runs/full-budget}
DATA=${DATA:-../shared/data/cinc2017}
STORE=${STORE:-runs/studies/studies.db}
import() {  # study, then the crossval folders of its full-budget variants
    local study=$1
    shift
    local dirs=()
    for d in "$@"; do [ -f "$OUT/$d/crossval.json" ] && dirs+=("$OUT/$d"); done
    .venv/bin/ecgrhythm study "$study" --data "$DATA" --store "$STORE" --import-csv "docs/studies/$study.csv"
    if [ ${#dirs[@]} -gt 0 ]; then
        .venv/bin/ecgrhythm study "$study" --store "$STORE" --import-crossval "${dirs[@]}"
    fi
    .venv/bin/ecgrhythm study "$study" --store "$STORE" --notes-file "docs/studies/notes/$study.txt"
}
import normalization shipped minmax none
import length shipped crop_pad
import depth shipped lstm1 lstm0
