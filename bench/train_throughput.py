"""Training throughput of a preset against the machine's matmul rate.

    python bench/train_throughput.py [--preset smartwatch-cpu] [--smoke] [--threads N] [--steps 20] [key=value ...]
    torchrun --standalone --nproc_per_node=2 bench/train_throughput.py [...] train.device=cuda   # DDP over NCCL

Counts the FLOPs of one real training step (forward + backward, both tasks) with
torch.utils.flop_counter.FlopCounterMode, times `--steps` steps of the preset's real batches and sequence
lengths, and times a square matmul in the same process and thread count (fp32 2048^2 on the CPU; bf16 8192^2 on
CUDA, large enough to reach the GPU's bf16 rate). Prints one JSON line: samples/s, achieved GFLOP/s, matmul
GFLOP/s and their ratio (target >= 0.30 on the CPU). Builds stage 0 on first use (a few minutes on the CPU), then
reuses the cache. On CUDA the steps run under the Trainer's bf16 autocast.

Under torchrun (WORLD_SIZE > 1) each rank joins a process group as Ray Train's workers do (sweeps/trial.py: NCCL
when training on CUDA, else gloo), the Trainer wraps the model in DDP and splits each step's batch across ranks;
rank 0 prints the totals: samples and FLOPs of all ranks, against the sum of the ranks' matmul rates.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.distributed as dist
from torch.utils.flop_counter import FlopCounterMode

from unified import config as C
from unified.train import Trainer
from unified.vision.features import pick_device
from unisweep.cli import build_config, parse_overrides


def matmul_gflops(device: torch.device, n: int | None = None, reps: int | None = None) -> float:
    cuda = device.type == "cuda"
    n, reps = n or (8192 if cuda else 2048), reps or (20 if cuda else 10)
    dtype = torch.bfloat16 if cuda else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3 if cuda else 1):  # warm-up (on CUDA also the clocks)
        a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def init_distributed(device_name: str) -> tuple[str | None, int]:
    """(backend, world size): joins the torchrun group when there is one; NCCL on CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None, 1
    cuda = pick_device(device_name).type == "cuda" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))  # the Trainer's "cuda" is this rank's GPU
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend)
    return backend, world


def _total(values: list[float], device: torch.device, op=None) -> list[float]:
    """`values` summed (or reduced by `op`) over the ranks; as they are without a process group."""
    if not dist.is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=op or dist.ReduceOp.SUM)
    return t.tolist()


def one_step(trainer: Trainer, step: int) -> int:
    """One step as Trainer.run takes it (bf16 autocast on CUDA, clipping, schedule), without its logging."""
    und, gen = trainer.step_batches(step)
    with trainer.autocast:
        loss = trainer.ddp(und, gen)["loss"]
    trainer.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), trainer.cfg.train.grad_clip)
    trainer.optimizer.step()
    trainer.scheduler.step()
    return sum(b["input_ids"].shape[0] for b in (und, gen) if b is not None)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="smartwatch-cpu")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("overrides", nargs="*")
    return p.parse_args(argv)


def config(args: argparse.Namespace) -> C.ExperimentConfig:
    """The resolved config the run trains (bad keys and values raise ConfigError)."""
    return build_config(args.preset, args.smoke, parse_overrides(args.overrides))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cfg = config(args)  # bad keys fail before the process group
    backend, world = init_distributed(cfg.train.device)
    trainer = Trainer(cfg, args.cache_dir)
    trainer.model.train()
    one_step(trainer, 0)  # warm-up
    with FlopCounterMode(display=False) as counter:
        one_step(trainer, 1)
    flops_per_step = counter.get_total_flops()
    und, gen = trainer.step_batches(1)
    seq = {name: tuple(b["input_ids"].shape) for name, b in (("und", und), ("gen", gen)) if b is not None}

    n = max(1, min(args.steps, trainer.n_steps - 2))
    _sync(trainer.device)
    if world > 1:
        dist.barrier()  # all ranks start the clock together
    t0 = time.perf_counter()
    samples = sum(one_step(trainer, 2 + i) for i in range(n))
    _sync(trainer.device)
    elapsed = time.perf_counter() - t0
    samples, flops = _total([samples, flops_per_step * n], trainer.device)
    (elapsed,) = _total([elapsed], trainer.device, dist.ReduceOp.MAX if world > 1 else None)
    (reference,) = _total([matmul_gflops(trainer.device)], trainer.device)
    achieved = flops / elapsed / 1e9
    if trainer.rank == 0:
        print(json.dumps({
            "preset": args.preset, "smoke": args.smoke, "variant": cfg.model.variant, "backbone": cfg.backbone.size,
            "device": str(trainer.device), "autocast": "bf16" if trainer.autocast._enabled else None,
            "world": world, "backend": backend, "threads": args.threads, "batch_size": cfg.train.batch_size,
            "batch_shapes": seq, "steps": n, "samples_per_s": round(samples / elapsed, 1),
            "step_ms": round(1000 * elapsed / n, 1), "gflop_per_step": round(flops / n / 1e9, 3),
            "achieved_gflops": round(achieved, 2), "matmul_gflops": round(reference, 2),
            "share_of_matmul": round(achieved / reference, 3),
        }), flush=True)
    if world > 1:
        dist.barrier()  # no rank tears the group down while another still uses it
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
