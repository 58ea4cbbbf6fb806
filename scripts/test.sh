#!/usr/bin/env bash
# The test suite, from nothing: sets up .venv (scripts/setup.sh), then runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh -m slow`, `-k model`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export WANDB_MODE=offline WANDB_SILENT=true
exec python -m pytest -q "$@"
