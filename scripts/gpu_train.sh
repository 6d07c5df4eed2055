#!/usr/bin/env bash
# The GPU training run: one command on a GPU node (scripts/gpu_train.py; docs/training.md).
#   scripts/gpu_train.sh OUT MODEL... [--preset gpu_smoke --device cpu]   |   scripts/gpu_train.sh --stage
# VITRINE_NODE_PYTHON names the interpreter that has torch (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${VITRINE_NODE_PYTHON:-python3}" scripts/gpu_train.py "$@"
