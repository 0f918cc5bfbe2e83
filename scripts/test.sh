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
exec "$BIN/pytest" "$@"
