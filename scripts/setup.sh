#!/usr/bin/env bash
# Create ./.venv and install the project. Usage: scripts/setup.sh [extras]   (e.g. "dev")
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.installed${extras:+-$extras}"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0
fi
echo "==> installing (first time takes a few minutes)"
.venv/bin/python -m pip install -q --upgrade pip
if [ "$extras" = "dev" ] || [ "$extras" = "st" ]; then
  # sentence-transformers needs torch: take the CPU build (a bare `torch` would pull a multi-GB CUDA build)
  .venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
touch "$stamp"
