#!/usr/bin/env bash
# Runs the whole test suite: starts the local services the tests talk to (when installed),
# lints, type-checks, then pytest. Used by `make test` and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin

# shellcheck source=scripts/services.sh
source scripts/services.sh

"$BIN/ruff" check src tests bench
"$BIN/ruff" format --check src tests bench
"$BIN/mypy"
# The end-to-end tests start Flowrunner processes by the score (servers, workers, CLI
# commands). With PYTHONDONTWRITEBYTECODE set (as in the development container and CI) none
# of them writes the bytecode it compiles, so each compiled Flowrunner's ~350 modules from
# source again (~0.2 s of CPU a server start). Compiled once here, every process reads it.
"$BIN/python" -m compileall -q src
exec "$BIN/pytest" "$@"
