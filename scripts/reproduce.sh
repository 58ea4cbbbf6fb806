#!/usr/bin/env bash
# The main job, from nothing: the CPU-scale reproduction of the paper's three experiments on the
# embedded Shakespeare corpus (reports in experiments/cpu/). Extra arguments are
# Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec inattn-reproduce experiment=all preset=cpu "$@"
