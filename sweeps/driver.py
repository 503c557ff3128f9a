"""Run a sweep on Ray Tune, every trial logged to MLflow exactly once.

    unisweep run sweeps/quickstart.yaml [--smoke] [--tracking-uri URI] [--address ADDR]

The driver (DESIGN.md §8): creates the store once before any trial (PLATFORM.md §6 race), marks runs a dead
driver left RUNNING as FAILED, finds or creates the sweep's parent run, skips the (cell, seed) pairs MLflow
holds FINISHED, builds stage 0 once per dataset in this process, creates each remaining trial's run, then
hands Tune one function trial per (cell, seed). A trial trains in its Tune process (`execution: auto`, one
worker) and logs through `tracking.RunLogger`, which never logs a (metric, step) twice, so a retry adds nothing.

Not yet here (the sweeps issue): the Ray Train path (`workers_per_trial > 1`, `execution: train`), Optuna
search, ASHA, `resume`, `status`, `runs`.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from sweeps import resources as R
from sweeps import tracking
from sweeps.spec import SpecError, SweepSpec, Trial, expand
from unified import config as C


@dataclasses.dataclass
class SweepResult:
    trials: int
    skipped: int
    finished: int
    failed: list[str]
    wall_s: float


def run_sweep(spec: SweepSpec, spec_text: str, smoke: bool = False, tracking_uri: str | None = None,
              address: str | None = None, cache_dir: str | None = None, progress=print) -> SweepResult:
    if R.uses_ray_train(spec):
        raise SpecError("resources", "workers_per_trial > 1 and execution: train need the Ray Train path, "
                                     "which is not built yet; use workers_per_trial: 1, execution: auto")
    if spec.search is not None:
        raise SpecError("search", "Optuna search is not built yet; run the grid without `search`")
    t0 = time.perf_counter()
    uri = tracking.absolute_tracking_uri(tracking_uri) if tracking_uri else spec.tracking.uri
    trials = expand(spec, smoke)
    from mlflow import MlflowClient  # late: a second to import

    experiment = tracking.ensure_store(uri, spec.tracking.experiment)
    client = MlflowClient(uri)
    stale = tracking.mark_stale_running_failed(client, experiment, spec.name)
    if stale:
        progress(f"marked {stale} run(s) left RUNNING by an earlier driver as FAILED")
    parent = tracking.start_sweep(client, experiment, spec, spec_text, smoke)
    done = tracking.finished_trials(client, experiment, spec.name)
    todo = [t for t in trials if (t.cell, t.seed) not in done]
    progress(f"sweep {spec.name}: {len(trials)} trials, {len(trials) - len(todo)} already FINISHED, "
             f"{len(todo)} to run")
    if not todo:
        tracking.finish(client, parent)
        return SweepResult(len(trials), len(trials), 0, [], time.perf_counter() - t0)

    cache_dir = str(Path(cache_dir or os.environ.get("UNISWEEP_CACHE") or Path.home() / ".cache" / "unisweep"))
    _build_stage0(todo, cache_dir, progress)
    jobs = [_job(t, tracking.trial_run(client, experiment, parent, t, smoke), uri, cache_dir) for t in todo]
    failed = _tune(spec, jobs, address, progress)
    tracking.finish(client, parent, "FAILED" if failed else "FINISHED")
    return SweepResult(len(trials), len(trials) - len(todo), len(todo) - len(failed), failed,
                       time.perf_counter() - t0)


def _job(trial: Trial, run_id: str, uri: str, cache_dir: str) -> dict:
    return {"name": trial.name, "config": C.flatten(trial.config), "run_id": run_id, "uri": uri,
            "cache_dir": cache_dir}


def _build_stage0(trials: list[Trial], cache_dir: str, progress) -> None:
    """Stage 0 once per distinct dataset, here, so concurrent trials only ever load it."""
    from unified.data.dataset import load_pool
    from unified.data.tokenizer import build_tokenizer
    from unified.vision.stage0 import build_spaces

    seen = set()
    for t in trials:
        key = C.stable_hash([C.flatten(t.config.data), C.flatten(t.config.vision)])
        if key in seen:
            continue
        seen.add(key)
        pool = load_pool(t.config.data, cache_dir)
        build_spaces(t.config, pool, build_tokenizer(t.config.data.domain, t.config.data.tokenizer_path), cache_dir)
    progress(f"stage 0 ready for {len(seen)} dataset(s)")


def _trial_name(trial) -> str:
    return trial.config["job"]["name"].replace("/", "-")


def _tune(spec: SweepSpec, jobs: list[dict], address: str | None, progress) -> list[str]:
    import ray
    from ray import tune

    from sweeps.trial import run_trial

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}})
    try:
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
        R.check_fits(spec, nodes)
        cluster = ray.cluster_resources()
        concurrency = min(len(jobs), R.max_concurrent(spec, cluster.get("CPU", 0), cluster.get("GPU", 0)))
        need = R.trial_resources(spec)
        progress(f"running {len(jobs)} trial(s), {concurrency} at a time, {need['CPU']:g} CPU each")
        trainable = tune.with_resources(run_trial, {"cpu": need["CPU"], "gpu": need["GPU"]})
        tuner = tune.Tuner(
            trainable,
            param_space={"job": tune.grid_search(jobs)},
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrency, trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(name=spec.name, storage_path=spec.storage, verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        grid = tuner.fit()
        failed = [r.config["job"]["name"] for r in grid if r.error is not None]
        for name in failed:
            progress(f"FAILED {name}")
        return failed
    finally:
        if started_here:
            ray.shutdown()
