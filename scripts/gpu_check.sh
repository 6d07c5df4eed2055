#!/usr/bin/env bash
# The GPU check: one command on a GPU node (scripts/gpu_check.py; docs/gpu-nodes.md).
#   scripts/gpu_check.sh OUT [--smoke]   |   scripts/gpu_check.sh --stage
# VITRINE_NODE_PYTHON names the interpreter that has torch (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
exec "${VITRINE_NODE_PYTHON:-python3}" scripts/gpu_check.py "$@"
