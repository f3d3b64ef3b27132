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
if [ "$#" -gt 0 ]; then
    exec "$VENV_PYTHON" -m pytest "$@"
fi
# Two pytest processes side by side, one per core: the tests that share the toy
# chain's and the test night's session fixtures (minutes of setup; with them the
# two tests that start a SLURM cluster on this machine, which must not run at
# the same time), and all the others. The first one's output is shown when both
# are done; the test command fails if either fails.
serial=(tests/chain tests/test_slurm_cluster.py)
base="$(mktemp -d)"
trap 'rm -rf "$base"' EXIT
"$VENV_PYTHON" -m pytest "${serial[@]}" --basetemp="$base/chain" --durations=15 \
    > "$base/chain.log" 2>&1 &
chain_pid=$!
rest_status=0
"$VENV_PYTHON" -m pytest tests --basetemp="$base/rest" --durations=15 \
    $(printf -- '--ignore=%s ' "${serial[@]}") || rest_status=$?
chain_status=0
wait "$chain_pid" || chain_status=$?
echo "== tests of the chain, the test night and SLURM (${serial[*]})"
cat "$base/chain.log"
if [ "$rest_status" -ne 0 ] || [ "$chain_status" -ne 0 ]; then
    echo "FAILED: the other tests exited with $rest_status, those of ${serial[*]} with $chain_status"
    exit 1
fi
