#!/usr/bin/env bash
# One command for a lent GPU machine (< 5 min): trains the cpu preset and a larger backbone on the GPU and
# prints samples/s and the share of the GPU's bf16 matmul rate (bench/train_throughput.py, one JSON line each).
#   bash bench/gpu_check.sh     # repo root; the GPU image lacks `datasets`: carry its wheels (device README)
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
cache="${UNISWEEP_CACHE:-/tmp/unisweep-cache}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
timeout 150 python3 bench/train_throughput.py --cache-dir "$cache" --steps 50 train.device=cuda
timeout 120 python3 bench/train_throughput.py --cache-dir "$cache" --steps 50 train.device=cuda \
    backbone.size=base train.batch_size=128
