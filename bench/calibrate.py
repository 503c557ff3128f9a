"""Calibration grid without Ray: variants x task arms x seeds, differences paired by seed.

    python bench/calibrate.py --variants siglip-siglip vq-vq --seeds 100 101 102 103 104 [key=value ...]

Runs every (variant, arm, seed) training of the preset in `--jobs` single-thread processes (stage 0 is built
once first), then prints a Markdown table: per variant and eval point, mean ± sd over seeds of
`eval/und/*` for mixed and understanding-only and of `eval/gen/attr_acc` for mixed and generation-only,
and the paired differences (mixed - single task). Raw results go to `--out` as JSON lines.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time

ARMS = ("mixed", "understanding", "generation")


def run_one(job):
    import torch

    torch.set_num_threads(1)
    from unified.train import train
    from unisweep.cli import build_config

    preset, overrides, cache_dir = job
    cfg = build_config(preset, False, overrides)
    points = {}
    t0 = time.perf_counter()
    train(cfg, lambda m, step, state=None: points.update({step: m}) if state is not None else None,
          cache_dir=cache_dir)
    return {"overrides": overrides, "wall_s": time.perf_counter() - t0, "points": points}


def mean_sd(xs):
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.3f}"


def table(results, variants, seeds):
    def get(variant, arm, seed, step, key):
        for r in results:
            o = r["overrides"]
            if (o["model.variant"], o["data.tasks"], o["seed"]) == (variant, arm, str(seed)):
                return r["points"][step].get(key)
        return None

    steps = sorted({s for r in results for s in r["points"]})
    lines = ["| variant | point | metric | mixed | single-task | mixed − single (paired) | seeds up |",
             "|---|---|---|---|---|---|---|"]
    und_keys = ["eval/und/total", "eval/und/weather", "eval/und/position", "eval/und/time", "eval/und/battery"]
    for variant in variants:
        for step in steps:
            for key, single in [(k, "understanding") for k in und_keys] + [("eval/gen/attr_acc", "generation")]:
                mixed = [get(variant, "mixed", s, step, key) for s in seeds]
                other = [get(variant, single, s, step, key) for s in seeds]
                if None in mixed or None in other:
                    continue
                diff = [a - b for a, b in zip(mixed, other, strict=True)]
                lines.append(f"| {variant} | {step}% | {key} | {mean_sd(mixed)} | {mean_sd(other)} | "
                             f"{mean_sd(diff)} | {sum(d > 0 for d in diff)}/{len(diff)} |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="smartwatch-cpu")
    p.add_argument("--variants", nargs="+", default=["siglip-siglip", "vq-vq"])
    p.add_argument("--seeds", nargs="+", type=int, default=[100, 101, 102, 103, 104])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--out", default="calibration.jsonl")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args()
    from unisweep.cli import parse_overrides

    base = parse_overrides(args.overrides)
    jobs = [(args.preset, {**base, "model.variant": v, "data.tasks": arm, "seed": str(s)}, args.cache_dir)
            for v in args.variants for arm in args.arms for s in args.seeds]
    t0 = time.perf_counter()
    run_one((args.preset, {**jobs[0][1], "train.steps": "1", "train.eval_points": "1"}, args.cache_dir))  # stage 0
    print(f"stage 0 ready in {time.perf_counter() - t0:.0f}s; {len(jobs)} trainings on {args.jobs} processes",
          flush=True)
    with mp.get_context("spawn").Pool(args.jobs) as pool, open(args.out, "w") as out:
        results = []
        for r in pool.imap_unordered(run_one, jobs):
            results.append(r)
            out.write(json.dumps(r) + "\n")
            out.flush()
            print(f"{len(results)}/{len(jobs)} {r['overrides']} {r['wall_s']:.0f}s", flush=True)
    median = statistics.median(r["wall_s"] for r in results)
    print(f"\nwall {time.perf_counter() - t0:.0f}s, median trial {median:.0f}s\n")
    print(table(results, args.variants, args.seeds))


if __name__ == "__main__":
    main()
