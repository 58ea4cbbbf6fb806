#!/usr/bin/env bash
# The main job on the embedded default (Shakespeare, CPU), from nothing. Extra arguments are
# Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec inattn-train "$@"
