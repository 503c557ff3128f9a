"""The one optimisation loop every stage-0 model trains with: AdamW, warm-up + cosine, seeded minibatches."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable

import torch


def fit(params: Iterable[torch.nn.Parameter], loss_fn: Callable[[torch.Tensor], torch.Tensor], n_items: int,
        steps: int, batch: int, lr: float, generator: torch.Generator, name: str = "",
        weight_decay: float = 0.0, warmup: float = 0.05) -> dict[str, float]:
    """Minimise `loss_fn(indices)` over `steps` minibatches of indices into `n_items` items.

    Batches are drawn as epochs of a seeded permutation, so the run is deterministic for a fixed generator.
    Returns the mean loss over the last tenth of the steps and the wall time.
    """
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    n_warm = max(1, int(warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / n_warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, steps)))))
    batch = min(batch, n_items)
    order, pos, tail = torch.randperm(n_items, generator=generator), 0, []
    t0 = time.perf_counter()
    for step in range(steps):
        if pos + batch > n_items:
            order, pos = torch.randperm(n_items, generator=generator), 0
        idx, pos = order[pos:pos + batch], pos + batch
        loss = loss_fn(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step >= steps - max(1, steps // 10):
            tail.append(loss.item())
    seconds, final = time.perf_counter() - t0, sum(tail) / max(1, len(tail))
    if name:
        print(f"stage0: trained {name} for {steps} steps in {seconds:.1f} s (final loss {final:.4f})", flush=True)
    return {"loss": final, "seconds": seconds}
