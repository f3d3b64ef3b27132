#!/usr/bin/env bash
# Set up the environment (if needed) and run every check: ruff, the documentation
# build with warnings as errors, and the test suite.
#
# With arguments, the tests are `pytest ARGS` after ruff and the docs. Without,
# the test suite runs in two pytest processes side by side, one per core:
#  * the tests that share the toy chain's and the test night's session fixtures
#    (tests/chain: minutes of setup, the longest path; with them the test that
#    starts a SLURM cluster, two of which must not run at once), started first,
#    beside ruff and the docs build;
#  * all the other tests, after the docs build (the tutorial's test reuses its
#    run of the tutorial).
# The chain's output is shown when both are done; the command fails if any
# step fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/setup-env.sh
bin="$(dirname "$VENV_PYTHON")"

serial=(tests/chain tests/test_slurm_cluster.py)
chain_pid=""
if [ "$#" -eq 0 ]; then
    base="$(mktemp -d)"
    # a failed check (set -e) stops the chain's tests too
    trap '[ -n "$chain_pid" ] && kill "$chain_pid" 2>/dev/null; rm -rf "$base"' EXIT
    echo "== tests of ${serial[*]} (started, shown at the end)"
    "$VENV_PYTHON" -m pytest "${serial[@]}" --basetemp="$base/chain" --durations=15 \
        > "$base/chain.log" 2>&1 &
    chain_pid=$!
fi

echo "== ruff"
"$bin/ruff" check .
"$bin/ruff" format --check .

echo "== docs (warnings are errors)"
"$VENV_PYTHON" -m sphinx -W --keep-going -q -b html docs docs/_build/html

echo "== tests"
if [ "$#" -gt 0 ]; then
    exec "$VENV_PYTHON" -m pytest "$@"
fi
rest_status=0
"$VENV_PYTHON" -m pytest tests --basetemp="$base/rest" --durations=15 \
    $(printf -- '--ignore=%s ' "${serial[@]}") || rest_status=$?
chain_status=0
wait "$chain_pid" || chain_status=$?
chain_pid=""
echo "== tests of ${serial[*]}"
cat "$base/chain.log"
if [ "$rest_status" -ne 0 ] || [ "$chain_status" -ne 0 ]; then
    echo "FAILED: the other tests exited with $rest_status, those of ${serial[*]} with $chain_status"
    exit 1
fi
