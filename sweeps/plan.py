"""What a sweep would run, before anything launches: trials, resources, concurrency, what MLflow holds, ETA.

    unisweep plan sweeps/quickstart.yaml [--smoke] [--tracking-uri URI] [--json]

Reads MLflow without writing to it: a SQLite store that does not exist yet simply holds nothing. The ETA
divides the trials still to run by the derived concurrency and multiplies by the median duration of past
FINISHED trials at the same scale (same smoke flag, backbone size and resolution), wherever they came from: the
setup and training time each logged, not its run's start to end (runs are created with the sweep and queue).
"""

from __future__ import annotations

import dataclasses
import glob
import os
import statistics
import typing
from pathlib import Path

from sweeps import resources as R
from sweeps.defaults import redact
from sweeps.sequential import Sequential
from sweeps.spec import SweepSpec, Trial, expand


@dataclasses.dataclass
class Plan:
    spec: SweepSpec
    smoke: bool
    tracking_uri: str
    trials: list[Trial]
    finished: set[tuple[str, int]]
    per_trial: dict[str, float]
    max_concurrent: int
    median_trial_s: float | None
    study_done: dict[str, int] = dataclasses.field(default_factory=dict)  # a search: FINISHED samples per cell
    expected_seeds: float | None = None  # seeds until decided: the seeds a cell is expected to take

    @property
    def rounds(self) -> dict | None:
        """Seeds until decided: the first round's, the expected and the most trials, and their times."""
        plan = None if self.smoke and self.spec.smoke_seeds else self.spec.sequential
        if plan is None:
            return None
        cells = len({t.cell for t in self.trials})
        expected = None if self.expected_seeds is None else round(cells * self.expected_seeds)
        most = cells * plan.max
        return {"looks": list(plan.looks), "first_trials": cells * plan.first, "expected_trials": expected,
                "max_trials": most, "expected_s": self._time(expected), "max_s": self._time(most)}

    def _time(self, trials: int | None) -> float | None:
        if trials is None or self.median_trial_s is None:
            return None
        return -(-trials // self.max_concurrent) * self.median_trial_s

    @property
    def to_run(self) -> list[Trial]:
        """Grid trials still to run; with a search, the grid cells whose study still owes samples."""
        if self.spec.search:
            return [t for t in self.trials if self.study_done.get(t.cell, 0) < self.samples]
        return [t for t in self.trials if (t.cell, t.seed) not in self.finished]

    @property
    def samples(self) -> int:
        return self.spec.num_samples(self.smoke) if self.spec.search else 1

    @property
    def planned(self) -> int:
        return len(self.trials) * self.samples

    @property
    def to_run_count(self) -> int:
        if self.spec.search:
            return sum(max(0, self.samples - self.study_done.get(t.cell, 0)) for t in self.trials)
        return len(self.to_run)

    @property
    def eta_s(self) -> float | None:
        if self.median_trial_s is None:
            return None
        waves = -(-self.to_run_count // self.max_concurrent)  # ceil
        return waves * self.median_trial_s

    def as_json(self) -> dict:
        return {
            "sweep": self.spec.name, "smoke": self.smoke, "tracking_uri": redact(self.tracking_uri),
            "experiment": self.spec.tracking.experiment,
            "trials": self.planned, "cells": len({t.cell for t in self.trials}),
            "seeds": sorted({t.seed for t in self.trials}), "to_run": self.to_run_count,
            "already_finished": self.planned - self.to_run_count, "resources_per_trial": self.per_trial,
            "search": None if not self.spec.search else {"studies": len(self.trials), "num_samples": self.samples,
                                                         "metric": self.spec.search.metric},
            "execution": "ray-train" if R.uses_ray_train(self.spec) else "in-process",
            "max_concurrent": self.max_concurrent, "median_trial_s": self.median_trial_s, "eta_s": self.eta_s,
            "seeds_until_decided": self.rounds,
        }


def local_resources() -> dict[str, float]:
    """This machine as Ray would see it, without starting Ray or importing torch (a second and 200 MB): the
    NVIDIA driver's device list, narrowed by $CUDA_VISIBLE_DEVICES."""
    gpus = len(glob.glob("/proc/driver/nvidia/gpus/*"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        gpus = min(gpus, len([d for d in visible.split(",") if d.strip()]))
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}


def make_plan(spec: SweepSpec, smoke: bool, tracking_uri: str, cluster: dict | list[dict] | None = None,
              expected_seeds: typing.Callable[[Sequential], float] | None = None) -> Plan:
    """`expected_seeds`: the seeds a cell of a sequential spec is expected to take (the CLI composes in the
    analysis's simulation of its rule)."""
    nodes = cluster if cluster is not None else local_resources()
    R.check_fits(spec, nodes)
    nodes = [nodes] if isinstance(nodes, dict) else nodes
    trials = expand(spec, smoke)
    concurrency = R.max_concurrent(spec, sum(n.get("CPU", 0.0) for n in nodes), sum(n.get("GPU", 0.0) for n in nodes))
    finished, median, study_done = _history(spec, trials, smoke, tracking_uri)
    plan = Plan(spec, smoke, tracking_uri, trials, finished, R.trial_resources(spec), concurrency, median, study_done)
    plan.max_concurrent = max(1, min(concurrency, plan.to_run_count or plan.planned))
    if spec.sequential and expected_seeds:
        plan.expected_seeds = expected_seeds(spec.sequential)
    return plan


def _history(spec, trials, smoke, uri) -> tuple[set[tuple[str, int]], float | None, dict[str, int]]:
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return set(), None, {}  # nothing run yet; do not create the store just to look
    from sweeps import tracking  # late: MLflow takes a second to import

    client = tracking.open_client(uri)
    experiment = client.get_experiment_by_name(spec.tracking.experiment)
    if experiment is None:
        return set(), None, {}
    finished = tracking.finished_trials(client, experiment.experiment_id, spec.name)
    study_done: dict[str, int] = {}
    if spec.search:
        for r in tracking.search_trials(client, experiment.experiment_id, spec.name, "attributes.status = 'FINISHED'"):
            study = r.data.tags.get(tracking.STUDY)
            study_done[study] = study_done.get(study, 0) + 1
    cfg = trials[0].config
    where = (f"attributes.status = 'FINISHED' and tags.{tracking.SMOKE} = '{'true' if smoke else 'false'}' "
             f"and params.backbone.size = '{cfg.backbone.size}' and params.data.resolution = '{cfg.data.resolution}'")
    past = tracking.search_trials(client, experiment.experiment_id, where=where)
    durations = [_duration_s(r) for r in past if r.info.end_time]
    return finished, (statistics.median(durations) if durations else None), study_done


def _duration_s(run) -> float:
    """A trial's own time: setup + training as it logged them. Its run's start is when the driver created it,
    with the sweep, so start-to-end also counts the time it queued."""
    m = run.data.metrics
    if "time/train_s" in m:
        return m["time/train_s"] + m.get("time/setup_s", 0.0)
    return (run.info.end_time - run.info.start_time) / 1000


def format_plan(plan: Plan) -> str:
    j = plan.as_json()
    eta = "unknown (no finished trial at this scale yet)" if j["eta_s"] is None else _duration(j["eta_s"])
    per = ", ".join(f"{v:g} {k}" for k, v in j["resources_per_trial"].items())
    lines = [
        f"sweep {j['sweep']}{' (smoke)' if j['smoke'] else ''}: " + (
            f"{j['cells']} cells x {len(j['seeds'])} seeds = {j['trials']} trials" if not j["search"] else
            f"{j['cells']} Optuna studies x {j['search']['num_samples']} samples = {j['trials']} trials "
            f"(seed {j['seeds'][0]}, {' & '.join(j['search']['metric'])})"),
        f"  already FINISHED in MLflow: {j['already_finished']}; to run: {j['to_run']}",
        f"  per trial: {per} ({j['execution']}); at most {j['max_concurrent']} at once",
        f"  ETA: {eta}",
        *_rounds_lines(j["seeds_until_decided"]),
        f"  tracking: {j['tracking_uri']} (experiment {j['experiment']})",
    ]
    for t in plan.to_run[:20]:
        lines.append(f"    {t.name}  {' '.join(f'{k}={v}' for k, v in t.overrides.items())}")
    if len(plan.to_run) > 20:
        lines.append(f"    ... and {len(plan.to_run) - 20} more")
    return "\n".join(lines)


def _rounds_lines(rounds: dict | None) -> list[str]:
    if not rounds:
        return []

    def time(s):
        return "unknown" if s is None else _duration(s)

    expected = ("unknown" if rounds["expected_trials"] is None else
                f"{rounds['expected_trials']} trials, {time(rounds['expected_s'])} (per-seed sd 0.08, effect 0.05)")
    return [f"  seeds until decided: looks at {', '.join(map(str, rounds['looks']))} seeds per cell; the first round "
            f"is the trials above",
            f"    expected: {expected}", f"    at most: {rounds['max_trials']} trials, {time(rounds['max_s'])}"]


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    return f"{minutes} min {s} s" if minutes else f"{s} s"
