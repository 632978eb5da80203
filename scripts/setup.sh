#!/usr/bin/env bash
# Create .venv and install ecgrhythm with its study, onnx, test, ray and docs extras (idempotent). Sourced by main.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.ecgrhythm-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[study,onnx,test,ray,docs]"
    touch "$stamp"
fi
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
