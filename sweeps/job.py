"""The driver -> trial contract: what `sweeps/driver.py` fixes for one Tune trial before Ray runs it.

It travels in Tune's trial config as a plain dict (`as_config`; Tune rewrites objects it finds in a config) and
is rebuilt in the trial (`from_config`). Tune writes that config to `params.json` in the Ray storage, so it
never holds the tracking URI: that arrives apart, through `tune.with_parameters`, and is set on the trial's own
copy with `dataclasses.replace(job, uri=...)`. A grid trial knows its MLflow run before it
starts; a search sample (`run_id` None) becomes a trial when Optuna's values arrive, from `common`, `point` and
the sampled `search_keys`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TrialJob:
    sweep: str
    smoke: bool
    experiment_id: str
    parent_id: str  # the sweep's parent run
    cache_dir: str  # stage-0 caches (built by the driver before any trial)
    storage: str  # Ray results and Train checkpoints: a local path or s3://...
    workers: int  # Ray Train workers per trial (1: in-process unless execution says "train")
    cpus_per_worker: float
    gpus_per_worker: float
    execution: str  # auto | train
    max_failures: int  # retries from the last checkpoint (Ray Train's, or Tune's for in-process trials)
    axes: tuple[str, ...] = ()  # the keys that vary across the sweep, tagged on each trial run
    crash_after: tuple[int, str, int] | None = None  # the fault-injection switch: percent, marker dir, rank
    # a grid trial
    name: str = ""  # {sweep}/{cell}/s{seed}; for a search, the study's grid cell until a sample is drawn
    config: dict = field(default_factory=dict)  # the resolved config, flattened (unified.config.flatten)
    run_id: str | None = None  # its MLflow run; None for a search sample, whose run is created when it starts
    # a search sample
    common: dict = field(default_factory=dict)  # the flattened config before the grid point and the sample
    point: dict = field(default_factory=dict)  # the grid cell's values
    seed: int = 0
    study: str = ""  # the grid cell whose Optuna study samples it
    search_keys: tuple[str, ...] = ()
    # set in the trial's process only
    uri: str = ""

    @property
    def on_ray_train(self) -> bool:
        return self.workers > 1 or self.execution == "train"

    def as_config(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, raw: dict) -> TrialJob:
        crash = raw.get("crash_after")
        return cls(**{**raw, "axes": tuple(raw.get("axes", ())), "search_keys": tuple(raw.get("search_keys", ())),
                      "crash_after": tuple(crash) if crash else None})
