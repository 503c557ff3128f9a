#!/usr/bin/env bash
# One command for a lent GPU machine (<= 5 min in all): trains the cpu preset and a larger backbone on the GPU
# under bf16 autocast and, when more than one GPU is visible, the larger one as a 2-rank DDP run over NCCL
# (torchrun, as Ray Train's workers join: sweeps/trial.py). bench/train_throughput.py prints one JSON line per
# measurement: samples/s and the share of the GPU's bf16 matmul rate. A step that fails or runs out of time prints
# {"step": ..., "status": ...} and the rest still run; the exit status is 1 if any step failed.
#   bash bench/gpu_check.sh     # repo root; the GPU image lacks `datasets`: carry its wheels (device README)
# Without a visible GPU it stops at once (exit 2) rather than measure the CPU. tests/test_gpu_check.py runs every
# python3/torchrun line below on the CPU.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
cache="${UNISWEEP_CACHE:-/tmp/unisweep-cache}"
deadline=$((SECONDS + ${GPU_CHECK_BUDGET_S:-280}))  # each step's timeout is cut to what is left of this
failed=0

# step NAME CAP_S CMD...: CMD under `timeout` of CAP_S seconds, or less if the deadline is nearer
step() {
    local name=$1 cap=$2 left=$((deadline - SECONDS)) rc
    shift 2
    if ((left < 15)); then
        echo "{\"step\": \"$name\", \"status\": \"skipped\", \"reason\": \"out of time\"}"
        failed=1
        return
    fi
    timeout -k 10 $((cap < left ? cap : left)) "$@"
    rc=$?
    if ((rc == 124 || rc == 137)); then
        echo "{\"step\": \"$name\", \"status\": \"timeout\", \"rc\": $rc}"
        failed=1
    elif ((rc != 0)); then
        echo "{\"step\": \"$name\", \"status\": \"failed\", \"rc\": $rc}"
        failed=1
    fi
}

timeout 20 nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
gpus=$(timeout 60 python3 -c "import torch; print(torch.cuda.device_count())") || gpus=0
if ((gpus < 1)); then
    echo '{"step": "gpus", "status": "failed", "reason": "torch sees no CUDA device; this check measures the GPU"}'
    exit 2
fi

# the cpu preset: stage 0 is built on the GPU on first use (cached in $cache, shared with the next steps)
step cpu-preset 150 python3 bench/train_throughput.py --cache-dir "$cache" --steps 50 train.device=cuda
# the larger backbone, on the same stage 0
step base 70 python3 bench/train_throughput.py --cache-dir "$cache" --steps 50 train.device=cuda \
    backbone.size=base train.batch_size=128
if ((gpus > 1)); then
    step base-ddp 70 torchrun --standalone --nproc_per_node=2 bench/train_throughput.py --cache-dir "$cache" \
        --steps 50 train.device=cuda backbone.size=base train.batch_size=128
else
    echo '{"step": "base-ddp", "status": "skipped", "reason": "one GPU visible; DDP over NCCL needs two"}'
fi
exit $failed
