#!/usr/bin/env bash
# The MNIST recipes on a machine with a GPU: each epoch's time and the test accuracy (benchmarks/gpu.py).
#   bash scripts/gpu_check.sh [DATA_DIR] [EPOCHS]      DATA_DIR holds MNIST/raw (downloaded there if absent)
set -euo pipefail
data=$(realpath -m "${1:-data}")
cd "$(dirname "$0")/.."
make --silent install
exec .venv/bin/python -m benchmarks.gpu --data-dir "$data" --epochs "${2:-3}"
