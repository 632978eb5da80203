#!/usr/bin/env bash
# The main job: set up, classify the default data with the shipped model and report its score.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
.venv/bin/ecgrhythm evaluate "$@"
