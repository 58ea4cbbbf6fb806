#!/usr/bin/env bash
# The main job, from nothing: the CPU-scale reproduction of the paper's three experiments on the
# embedded Shakespeare corpus (reports in experiments/cpu/). Extra arguments are
# Hydra overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS=${EXTRAS-} bash scripts/setup.sh  # the job needs no extras (tests, harness, SLURM)
. .venv/bin/activate
exec inattn-reproduce experiment=all preset=cpu "$@"
