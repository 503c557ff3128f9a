"""Train and evaluate one unified model: `train(cfg, report)`, plain PyTorch, no Ray or MLflow.

    unisweep train --preset smartwatch-cpu model.variant=vq-vq     # about 1-2 min on one core
    unisweep train --smoke                                          # seconds

`report(metrics, step, state=None)` is passed in (docs/DESIGN.md §8): `step` is the percent of the training budget
(0-100). `train/loss*` arrive at every percent, `eval/*` at the `train.eval_points` evaluation points with
`state`, everything needed to resume bit-for-bit on CPU (`train(cfg, report, resume=state)`), plus
`state["images"]`: a few generated and real images (uint8) and what each prompt asked for, when the run
generates. Stage-0 quality numbers, the run's measured chance levels (`baseline/*`, unified/baselines.py) and
its budget (`budget/updates`, `budget/und_samples`, `budget/gen_samples`: distinct samples) arrive once at step
0. Under torch.distributed (Ray Train), the model is wrapped in DDP and each step's batch is split across ranks;
evaluation runs on every rank on the same items, so every rank reports the same number of times.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from unified import baselines
from unified import config as C
from unified.data.dataset import load_pool
from unified.data.tasks import build_samples
from unified.data.tokenizer import build_tokenizer, special_ids
from unified.errors import DivergenceError
from unified.evaluate import evaluate
from unified.model import build_model
from unified.text_prior import build_text_prior
from unified.vision.features import pick_device
from unified.vision.stage0 import build_spaces

Report = Callable[..., None]


def eval_percents(n_points: int) -> list[int]:
    """Evaluation points as percents of the budget: k/n for k = 1..n (paper: 10 %, 20 %, ..., 100 %)."""
    return [round(100 * k / n_points) for k in range(1, n_points + 1)]


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class Trainer:
    """One trial: builds data, frozen spaces and the model, then runs the step loop with evaluations."""

    def __init__(self, cfg: C.ExperimentConfig, cache_dir: str | Path | None = None):
        self.cfg = cfg = C.resolve(cfg)
        self.device = pick_device(cfg.train.device)  # auto: cuda when torch sees a GPU, else the CPU
        self.rank, self.world = _rank_world()
        cache_dir = Path(cache_dir or C.default_cache_dir())
        torch.manual_seed(cfg.seed)
        t0 = time.perf_counter()
        self.pool = load_pool(cfg.data, cache_dir)
        self.tokenizer = build_tokenizer(cfg.data.domain, cfg.data.tokenizer_path)
        self.special = special_ids(self.tokenizer)
        self.spaces = build_spaces(cfg, self.pool, self.tokenizer, cache_dir)
        in_name, out_name = cfg.model.variant.split("-")
        self.in_space, self.out_space = self.spaces.space(in_name), self.spaces.space(out_name)
        self.data = build_samples(cfg, self.pool, self.tokenizer, self.in_space.n_tokens, self.out_space.n_tokens)
        prior = build_text_prior(cfg, self.pool, self.tokenizer, cache_dir) if cfg.backbone.init == "text" else None
        self.setup_s = time.perf_counter() - t0

        torch.manual_seed(cfg.seed)  # init depends on the seed only, not on what stage 0 consumed
        self.model = build_model(cfg, len(self.tokenizer), self.special, self.in_space, self.out_space,
                                 backbone_path=prior).to(self.device)
        self.ddp = self.model
        if self.world > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=True)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.n_steps = len(self.data.steps)
        warmup = max(1, round(cfg.train.warmup * self.n_steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_cosine(warmup, self.n_steps))
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")

    # ------------------------------------------------------------ batches

    def _gather(self, samples, indices, space, split):
        from unified.data.tasks import collate

        batch = collate([samples[i] for i in indices], self.special["<pad>"], side="right")
        image = batch.pop("image")
        batch = {k: v.to(self.device) for k, v in batch.items()}
        if space is self.out_space and samples is self.data.gen and space.kind == "vq":
            batch["image_codes"] = getattr(space, f"codes_{split}")[image].to(self.device)  # [b, n_out]
        else:
            batch["image_feats"] = getattr(space, split)[image].to(self.device)  # [b, n, dim]
        return batch

    def step_batches(self, step: int):
        """This rank's share of step `step`: (understanding batch or None, generation batch or None)."""
        und_idx, gen_idx = self.data.steps[step]
        und_idx, gen_idx = und_idx[self.rank :: self.world], gen_idx[self.rank :: self.world]
        und = self._gather(self.data.und, und_idx, self.in_space, "train") if und_idx else None
        gen = self._gather(self.data.gen, gen_idx, self.out_space, "train") if gen_idx else None
        return und, gen

    # ------------------------------------------------------------ state

    def state(self, step: int, last_pct: int) -> dict:
        """A snapshot: deep copies, since the live tensors keep changing after `report` returns."""
        return copy.deepcopy({
            "step": step,
            "last_pct": last_pct,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "config_hash": C.cell_hash(self.cfg),
            "seed": self.cfg.seed,
        })

    def load_state(self, state: dict) -> tuple[int, int]:
        if state.get("config_hash") != C.cell_hash(self.cfg) or state.get("seed") != self.cfg.seed:
            raise ValueError("resume state was saved by a different config or seed; refusing to mix them")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        return state["step"], state["last_pct"]

    # ------------------------------------------------------------ loop

    def run(self, report: Report | None = None, resume: dict | None = None) -> dict:
        report = report or (lambda metrics, step, state=None: None)
        start, last_pct = (0, 0) if resume is None else self.load_state(resume)
        if resume is None:
            report({**self.spaces.quality, **self.chance_levels(), **self.budget()}, 0)
        evals = [p for p in eval_percents(self.cfg.train.eval_points) if p > last_pct]
        sums: dict[str, float] = {}
        count, final = 0, {}
        t0 = time.perf_counter()
        for step in range(start, self.n_steps):
            self.ddp.train()
            und, gen = self.step_batches(step)
            with self.autocast:
                losses = self.ddp(und, gen)
            loss = losses["loss"]
            finite = torch.isfinite(loss.detach()).float()
            if self.world > 1:  # all ranks stop together, or the others wait in the gradient all-reduce forever
                torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
            if not finite:
                raise DivergenceError(f"loss became {loss.item()} at step {step + 1}/{self.n_steps} "
                                      f"(train.lr={self.cfg.train.lr}); lower it or raise train.warmup")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
            count += 1

            pct = (step + 1) * 100 // self.n_steps
            if pct > last_pct:
                metrics = {f"train/{k}": v / count for k, v in sums.items()}
                sums, count, last_pct = {}, 0, pct
                if evals and pct >= evals[0]:
                    while evals and pct >= evals[0]:
                        evals.pop(0)
                    scores, images = self.evaluate()
                    metrics.update(scores)
                    metrics["time/train_s"] = time.perf_counter() - t0
                    metrics["time/setup_s"] = self.setup_s  # data, stage-0 load and samples
                    final = metrics
                    report(metrics, pct, {**self.state(step + 1, pct), "images": images})
                else:
                    report(metrics, pct)
        return final

    def budget(self) -> dict[str, float]:
        """`budget/*`: this arm's optimizer updates and distinct samples per task (unified/data/tasks.py), so that
        every comparison can state what each of its arms trained on (added, replace and matched differ here)."""
        return {"budget/updates": float(len(self.data.steps)), "budget/und_samples": float(len(self.data.und)),
                "budget/gen_samples": float(len(self.data.gen))}

    def chance_levels(self) -> dict[str, float]:
        """`baseline/*` of the sides this run is evaluated on (unified/baselines.py)."""
        out = {}
        if self.cfg.data.tasks != "generation":
            out.update(baselines.understanding_baseline(self.cfg.data, self.pool.attrs("train"), self.data.eval_und))
        if self.cfg.data.tasks != "understanding":
            real = self.pool.images("test")[[it.image for it in self.data.eval_gen]]
            out["baseline/gen/fd_one_image"] = baselines.one_image_fd(self.spaces.judge, real)
        return out

    def evaluate(self) -> tuple[dict[str, float], dict]:
        return evaluate(self.model, self.data, self.pool, self.spaces, self.in_space, self.out_space, self.cfg,
                        self.special, self.tokenizer, self.device)


def train(cfg: C.ExperimentConfig, report: Report | None = None, resume: dict | None = None,
          cache_dir: str | Path | None = None) -> dict[str, float]:
    """Run one trial; returns the metrics of the last evaluation point (step 100)."""
    return Trainer(cfg, cache_dir).run(report, resume)
