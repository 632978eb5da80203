#!/usr/bin/env bash
# Run the three benchmarks on an idle machine and keep their JSON under docs/benchmarks/.
# Usage: bash benchmarks/run_all.sh [DATA_DIR] [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/cinc2017}
MODEL=${2:-models/cinc2017}
OUT=docs/benchmarks
mkdir -p "$OUT"
# cold start: no compiled networks kept from earlier runs
ECGRHYTHM_JAX_CACHE=off .venv/bin/python benchmarks/classify_throughput.py --data "$DATA" --model "$MODEL" --n 1279 --output "$OUT/classify_throughput.json"
ECGRHYTHM_JAX_CACHE=off .venv/bin/python benchmarks/service_load.py --model "$MODEL" --requests 200 --concurrency 8 --output "$OUT/service_load.json"
.venv/bin/python benchmarks/train_epoch_time.py --data "$DATA" --epochs 2 --output "$OUT/train_epoch_time.json"
