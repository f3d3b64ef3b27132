#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv with a Python >= 3.12
# and install the package with its test and docs extras.
# Usage: source scripts/setup-env.sh   (sets $VENV_PYTHON)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SST1M_VENV:-$root/.venv}"

find_python() {
    local candidates=("${SST1M_PYTHON:-}" python3.13 python3.12 python3)
    # pyenv installs are often not on PATH as python3.12 in non-interactive shells
    if command -v pyenv >/dev/null 2>&1; then
        local v
        for v in $(pyenv versions --bare 2>/dev/null | sort -rV); do
            candidates+=("$(pyenv root)/versions/$v/bin/python3")
        done
    fi
    local c
    for c in "${candidates[@]}"; do
        [ -n "$c" ] || continue
        if command -v "$c" >/dev/null 2>&1 \
            && "$c" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$c"
            return 0
        fi
    done
    return 1
}

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
    if ! py="$(find_python)"; then
        echo "ERROR: ctapipe-sst1m needs Python >= 3.12 (ctapipe 0.32 requires it)." >&2
        echo "       None found on PATH or in pyenv; install one or set SST1M_PYTHON=/path/to/python3.12." >&2
        exit 1
    fi
    echo "Creating $venv with $py ($("$py" --version))"
    rm -rf "$venv"
    "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e "$root[test,docs]"
VENV_PYTHON="$venv/bin/python"
export VENV_PYTHON
echo "Environment ready: $VENV_PYTHON ($("$VENV_PYTHON" --version))"
