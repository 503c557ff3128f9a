"""Training throughput of the cpu preset against the machine's matmul rate.

    python bench/train_throughput.py [--preset smartwatch-cpu] [--threads N] [--steps 20] [key=value ...]

Counts the FLOPs of one real training step (forward + backward, both tasks) with
torch.utils.flop_counter.FlopCounterMode, times `--steps` steps of the preset's real batches and sequence
lengths, and times a 2048x2048 fp32 matmul in the same process and thread count. Prints one JSON line:
samples/s, achieved GFLOP/s, matmul GFLOP/s and their ratio (target >= 0.30). Builds stage 0 on first use
(a few minutes), then reuses the cache. On CUDA it uses bf16 autocast and a bf16 matmul for the reference.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from sweeps.cli import build_config, parse_overrides
from unified.train import Trainer


def matmul_gflops(device: torch.device, n: int = 2048, reps: int = 10) -> float:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def one_step(trainer: Trainer, step: int) -> int:
    und, gen = trainer.step_batches(step)
    with trainer.autocast:
        loss = trainer.ddp(und, gen)["loss"]
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    trainer.optimizer.step()
    return sum(b["input_ids"].shape[0] for b in (und, gen) if b is not None)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="smartwatch-cpu")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = build_config(args.preset, args.smoke, parse_overrides(args.overrides))
    trainer = Trainer(cfg, args.cache_dir)
    trainer.model.train()
    one_step(trainer, 0)  # warm-up
    with FlopCounterMode(display=False) as counter:
        one_step(trainer, 1)
    flops_per_step = counter.get_total_flops()
    und, gen = trainer.step_batches(1)
    seq = {name: tuple(b["input_ids"].shape) for name, b in (("und", und), ("gen", gen)) if b is not None}

    n = min(args.steps, trainer.n_steps - 2)
    _sync(trainer.device)
    t0 = time.perf_counter()
    samples = sum(one_step(trainer, 2 + i) for i in range(n))
    _sync(trainer.device)
    elapsed = time.perf_counter() - t0
    achieved = flops_per_step * n / elapsed / 1e9
    reference = matmul_gflops(trainer.device)
    print(json.dumps({
        "preset": args.preset, "variant": cfg.model.variant, "backbone": cfg.backbone.size,
        "device": str(trainer.device), "threads": args.threads, "batch_shapes": seq,
        "samples_per_s": round(samples / elapsed, 1), "step_ms": round(1000 * elapsed / n, 1),
        "gflop_per_step": round(flops_per_step / 1e9, 3), "achieved_gflops": round(achieved, 2),
        "matmul_gflops": round(reference, 2), "share_of_matmul": round(achieved / reference, 3),
    }))


if __name__ == "__main__":
    main()
