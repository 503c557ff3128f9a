"""`unisweep report` at scale: a SQLite store of N trials x 10 eval points, the report timed cold and cached.

    python bench/analysis_scale.py                        # 10,000 trials; fills the store first (minutes)
    python bench/analysis_scale.py --trials 1000 --dir /tmp/scale1k
    python bench/analysis_scale.py --dir /tmp/scale10k    # a second run reuses the filled store
    # over HTTP: fill a PostgreSQL store directly, then read it through an `mlflow server` in front of it
    python bench/analysis_scale.py --store postgresql://mlflow@127.0.0.1:5432/mlflow \
        --tracking-uri http://127.0.0.1:5000 --dir /tmp/scale10k-http

The store has the layout the sweeper writes (sweeps/tracking.py): one parent run, one child run per trial with
the tags `unisweep.role/sweep/cell/seed/variant/smoke` and `mlflow.parentRunId`, every flattened config key as
a param (75), and 12 metric keys at the 10 eval points (9 `eval/*`, 3 `train/loss*`: the sweeper logs the
losses at every percent; here at the eval points only, to keep the fill short) plus the 5 `baseline/und/*`
chance levels at step 0. It is filled with
`MlflowClient.create_run` + one `log_batch` + `set_terminated` per trial, without the sweeper's lookups.
The grid: 4 variants x 3 task arms x 4 affine strengths x 2 backbone sizes, seeds to reach N.
Timed in one process: `write_report` cold (no Parquet cache), then cached; then the cached report again in a
fresh process (what a second `unisweep report` costs, imports included). Targets (the report at scale): cold <= 60 s,
cached <= 5 s; over HTTP (a remote `mlflow server`), cold <= 120 s.
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SWEEP = "scale"
VARIANTS = ("siglip-siglip", "vq-vq", "siglip-vq", "vq-siglip")
TASKS = ("mixed", "understanding", "generation")
STRENGTHS = (0.0, 0.1, 0.3, 0.5)
SIZES = ("tiny", "small")
STEPS = tuple(range(10, 101, 10))
EVAL_KEYS = ("eval/und/total", "eval/und/time", "eval/und/weather", "eval/und/battery", "eval/und/position",
             "eval/gen/attr_acc", "eval/gen/attr_acc_shuffled", "eval/gen/fd", "eval/gen/token_acc")
CHANCE_KEYS = ("baseline/und/total", "baseline/und/time", "baseline/und/weather", "baseline/und/battery",
               "baseline/und/position")  # logged once, at step 0, as the sweeper does
TRAIN_KEYS = ("train/loss", "train/loss/und", "train/loss/gen")


def cells():
    """(grid point, resolved flat config) per cell, as the sweeper would log them."""
    from unified import config as C

    for variant, tasks, strength, size in itertools.product(VARIANTS, TASKS, STRENGTHS, SIZES):
        point = {"model.variant": variant, "data.tasks": tasks, "model.affine_strength": strength,
                 "backbone.size": size}
        cfg = C.resolve(C.override(C.preset("smartwatch-cpu"), point))
        yield point, C.flatten(cfg), C.cell_hash(cfg)


def metrics_of(point: dict, seed: int, rng: np.random.Generator):
    """Planted: mixed gains 0.06 (aligned) / 0.02 (misaligned) at s = 0, shrinking with s, growing with data."""
    from mlflow.entities import Metric

    base = np.random.default_rng(seed).uniform(0.3, 0.5)
    aligned = point["model.variant"] in ("siglip-siglip", "vq-vq")
    gain = (0.06 if aligned else 0.02) * (1 - 2 * point["model.affine_strength"])
    out = []
    for step in STEPS:
        frac = step / 100
        level = base + 0.2 * frac + (gain * frac if point["data.tasks"] == "mixed" else 0.0)
        for key in EVAL_KEYS + TRAIN_KEYS:
            value = level + rng.normal(0, 0.01) if key.startswith("eval/") else 2.0 - frac
            out.append(Metric(key, float(value), 0, step))
    out += [Metric(key, 0.25, 0, 0) for key in CHANCE_KEYS]  # below every arm: each comparison is testable
    return out


def fill(uri: str, n_trials: int) -> None:
    from mlflow import MlflowClient
    from mlflow.entities import Param

    from sweeps import tracking

    experiment_id = tracking.ensure_store(uri, "unisweep")
    client = MlflowClient(uri)
    if uri.startswith("sqlite:"):
        _no_fsync(client._tracking_client.store.engine)
    parent = client.create_run(experiment_id, run_name=SWEEP, tags={
        tracking.ROLE: "sweep", tracking.SWEEP: SWEEP, tracking.SMOKE: "false"}).info.run_id
    grid = list(cells())
    seeds = math.ceil(n_trials / len(grid))
    rng, t0, done = np.random.default_rng(0), time.perf_counter(), 0
    for seed in range(seeds):
        for point, flat, cell in grid:
            if done == n_trials:
                break
            tags = {tracking.ROLE: "trial", tracking.SWEEP: SWEEP, tracking.CELL: cell, tracking.SEED: str(seed),
                    "unisweep.variant": point["model.variant"], tracking.SMOKE: "false",
                    "mlflow.parentRunId": parent}
            run_id = client.create_run(experiment_id, tags=tags, run_name=f"{SWEEP}/{cell}/s{seed}").info.run_id
            params = [Param(k, str(v)) for k, v in {**flat, "seed": seed}.items()]
            client.log_batch(run_id, metrics=metrics_of(point, seed, rng), params=params)
            client.set_terminated(run_id, "FINISHED")
            done += 1
            if done % 1000 == 0:
                print(f"  filled {done} trials in {time.perf_counter() - t0:.0f} s", flush=True)
    client.set_terminated(parent, "FINISHED")
    print(f"filled {done} trials in {time.perf_counter() - t0:.0f} s", flush=True)


def _no_fsync(engine) -> None:
    """Skip SQLite's fsync per commit while filling (3 commits a trial): the fill is setup, not what is timed."""
    from sqlalchemy import event

    event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=OFF"))
    engine.dispose()  # pooled connections predate the listener


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--dir", default=None, help="store and report folder (default: a temporary one, removed)")
    parser.add_argument("--store", default=None, help="the store to fill, directly (default: SQLite in --dir)")
    parser.add_argument("--tracking-uri", default=None, help="where the report reads (default: --store), e.g. "
                                                             "an `mlflow server` in front of it")
    args = parser.parse_args()
    folder = Path(args.dir or tempfile.mkdtemp(prefix="analysis_scale_"))
    folder.mkdir(parents=True, exist_ok=True)
    store = args.store or f"sqlite:///{(folder / 'mlflow.db').resolve()}"
    marker = folder / "filled"  # the store holds the sweep already: fill once, time as often as wanted
    if not marker.exists():
        fill(store, args.trials)
        marker.write_text(store)
    else:
        print(f"reusing the store {store}")
    uri = args.tracking_uri or store

    t0 = time.perf_counter()
    from analysis.report import write_report

    print(f"import analysis.report: {time.perf_counter() - t0:.1f} s")
    out = folder / "report"
    shutil.rmtree(out, ignore_errors=True)  # cold: no Parquet cache
    timings = []
    for label in ("cold", "cached"):
        t0 = time.perf_counter()
        verdicts = write_report(uri, [SWEEP], out)
        timings.append(time.perf_counter() - t0)
        print(f"write_report {label}: {timings[-1]:.1f} s", flush=True)
    print("verdicts: " + ", ".join(f"{k} {v.verdict}" for k, v in verdicts.items()))
    # what `unisweep report` costs a user the second time: a fresh process, imports and store start-up included
    code = f"from analysis.report import write_report; write_report({uri!r}, [{SWEEP!r}], {str(out)!r})"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], check=True, capture_output=True)
    fresh = time.perf_counter() - t0
    print(f"cached, fresh process (imports included): {fresh:.1f} s")
    print(f"RESULT trials={args.trials} cold_s={timings[0]:.1f} cached_s={timings[1]:.1f} cached_fresh_s={fresh:.1f}")
    if args.dir is None:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
