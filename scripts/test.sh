#!/usr/bin/env bash
# Set up (Python packages, and Debian's Chromium for the browser test), check lint and format with ruff, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation >/dev/null) \
        || echo "warning: could not install Debian's chromium; the browser test will be skipped" >&2
fi
.venv/bin/ruff check src tests benchmarks scripts setup.py
.venv/bin/ruff format --check src tests benchmarks scripts setup.py
.venv/bin/python -m pytest "$@"
