"""What the sweeper costs on top of training: per-trial overhead and sweep efficiency.

    python bench/sweep_overhead.py [--trials 6] [--paths in-process train]   # smoke trials, one CPU
    python bench/sweep_overhead.py --sweep quickstart [--tracking-uri URI]   # efficiency of a finished sweep

Overhead: the same N smoke trials (one cell, seeds 0..N-1, one thread each) run first as plain sequential
`unified.train.train` calls in this process, then through `run_sweep` on a local Ray with one CPU, so trials
run one at a time on both sides. Per-trial overhead: each trial's share of the sweep's wall less its training
seconds; the median is the issue's target, the first trial's (which carries the sweep's start-up) and the
mean, (sweep wall - sequential wall) / N, are printed beside it. The in-process
path (`execution: auto`) and the Ray Train path (`execution: train`, one worker) are measured on the same
trials; Ray's start is paid once and reported apart. Efficiency = training seconds (each trial's
`time/setup_s + time/train_s`) / (wall x CPUs).

`--sweep NAME` reads a finished sweep from MLflow instead: its trials' training seconds against the parent
run's wall time and this machine's cores (the figure BENCHMARKS.md records for the quickstart grid), with and
without the stage-0 build the driver ran first (`time/stage0_s` on the parent run; 0 when the cache was warm).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

SPEC = """name: overhead-{path}
base: smartwatch-cpu
seeds: {seeds}
resources: {{workers_per_trial: 1, cpus_per_worker: {cpus}, execution: {execution}}}
tracking: {{uri: "sqlite:///{db}", experiment: bench}}
storage: {storage}
"""


def sequential(trials, cache_dir: str) -> tuple[float, float]:
    """Wall and training seconds of the trials as plain back-to-back `train` calls."""
    import torch

    from unified.train import train

    torch.set_num_threads(1)
    train(trials[0].config, cache_dir=cache_dir)  # warm: imports, stage-0 load, first-call costs
    t0, inside = time.perf_counter(), 0.0
    for t in trials:
        final = train(t.config, cache_dir=cache_dir)
        inside += final["time/setup_s"] + final["time/train_s"]
    return time.perf_counter() - t0, inside


def through_sweep(path: str, n: int, root: Path, cache_dir: str) -> dict:
    from mlflow import MlflowClient

    from sweeps import tracking
    from sweeps.driver import run_sweep
    from sweeps.spec import expand, parse_spec

    execution = {"in-process": "auto", "train": "train"}[path]
    cpus = 1 if path == "in-process" else 0.9  # + 0.1 for the Train trial's driver: one trial fills the CPU
    text = SPEC.format(path=path, seeds=list(range(n)), execution=execution, cpus=cpus, db=root / "mlflow.db",
                       storage=root / "ray")
    spec = parse_spec(text)
    trials = expand(spec, smoke=True)
    seq_wall, seq_inside = sequential(trials, cache_dir)
    t0, start = time.perf_counter(), time.time()
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    wall = time.perf_counter() - t0
    assert not result.failed, result.failed
    client = MlflowClient(spec.tracking.uri)
    runs = tracking.search_trials(client, client.get_experiment_by_name("bench").experiment_id, spec.name)
    inside = sum(r.data.metrics["time/setup_s"] + r.data.metrics["time/train_s"] for r in runs)
    each = _each_trial_overhead(runs, start)
    return {"path": path, "trials": n, "sequential_wall_s": round(seq_wall, 2), "sweep_wall_s": round(wall, 2),
            "median_overhead_per_trial_s": round(statistics.median(each), 2),
            "first_trial_overhead_s": round(each[0], 2),
            "mean_overhead_per_trial_s": round((wall - seq_wall) / n, 2),
            "efficiency": round(inside / wall, 3), "sequential_efficiency": round(seq_inside / seq_wall, 3)}


def _each_trial_overhead(runs, start: float) -> list[float]:
    """Trials run one at a time: each one's share of the wall (from the previous trial's end, or the sweep's
    start for the first) less its training seconds. The first carries the sweep's start-up (store, Tune, the
    trial actor's start and imports)."""
    out, previous = [], start
    for r in sorted(runs, key=lambda r: r.info.end_time):
        end = r.info.end_time / 1000
        out.append(end - previous - r.data.metrics["time/setup_s"] - r.data.metrics["time/train_s"])
        previous = end
    return out


def sweep_efficiency(name: str, uri: str, experiment: str) -> dict:
    """Training seconds of a finished sweep's trials / (its parent run's wall x this machine's cores)."""
    from mlflow import MlflowClient

    from sweeps import tracking

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment).experiment_id
    parent = tracking.sweep_run(client, exp, name)
    runs = tracking.search_trials(client, exp, name, "attributes.status = 'FINISHED'")
    inside = sum(r.data.metrics.get("time/setup_s", 0) + r.data.metrics.get("time/train_s", 0) for r in runs)
    wall = (parent.info.end_time - parent.info.start_time) / 1000
    stage0 = parent.data.metrics.get("time/stage0_s", 0.0)  # a cold cache's one-time build, before any trial
    cores = os.cpu_count() or 1
    return {"sweep": name, "trials": len(runs), "training_s": round(inside, 1), "wall_s": round(wall, 1),
            "stage0_s": round(stage0, 1), "cores": cores, "efficiency": round(inside / (wall * cores), 3),
            "efficiency_after_stage0": round(inside / ((wall - stage0) * cores), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--paths", nargs="+", default=["in-process", "train"], choices=["in-process", "train"])
    parser.add_argument("--sweep", default=None, help="report a finished sweep's efficiency from MLflow instead")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--experiment", default="unisweep")
    parser.add_argument("--cache-dir", default=None)
    args = parser.parse_args()
    if args.sweep:
        from sweeps.defaults import tracking_uri

        uri = tracking_uri(args.tracking_uri)
        print(json.dumps(sweep_efficiency(args.sweep, uri, args.experiment)))
        return

    import ray

    from sweeps.driver import trial_env_vars
    from unified.config import default_cache_dir

    cache_dir = str(args.cache_dir or default_cache_dir())
    t0 = time.perf_counter()
    # one trial at a time, like the baseline; the trials' environment as `unisweep run` sets it
    ray.init(num_cpus=1, include_dashboard=True, log_to_driver=False, runtime_env={"env_vars": trial_env_vars()})
    print(json.dumps({"ray_init_s": round(time.perf_counter() - t0, 2)}))
    try:
        for path in args.paths:
            with tempfile.TemporaryDirectory() as d:
                print(json.dumps(through_sweep(path, args.trials, Path(d), cache_dir)), flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
