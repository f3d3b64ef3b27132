#!/usr/bin/env bash
# Set up the environment (if needed) and run every check: ruff, the documentation
# build with warnings as errors, and the test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/setup-env.sh
bin="$(dirname "$VENV_PYTHON")"

echo "== ruff"
"$bin/ruff" check .
"$bin/ruff" format --check .

echo "== docs (warnings are errors)"
"$VENV_PYTHON" -m sphinx -W --keep-going -q -b html docs docs/_build/html

echo "== tests"
"$VENV_PYTHON" -m pytest "$@"
