"""`unisweep plan`: trials, concurrency, what a real SQLite MLflow store already holds, and the ETA."""

import json
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from sweeps import spec as S
from sweeps import tracking as T
from sweeps.plan import make_plan

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")  # docs/PLATFORM.md §6

SPEC = """name: planned
base: smartwatch-cpu
seeds: [0, 1, 2]
grid:
  data.tasks: [mixed, understanding]
resources: {workers_per_trial: 2, cpus_per_worker: 0.45}
"""


def test_plan_counts_finished_trials_and_estimates_from_past_durations(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    spec = S.parse_spec(SPEC)
    plan = make_plan(spec, smoke=True, tracking_uri=uri, cluster={"CPU": 2, "GPU": 0})
    assert (len(plan.trials), len(plan.to_run), plan.max_concurrent) == (6, 6, 2)  # 2 x (0.1 + 2 x 0.45) = 2
    assert plan.eta_s is None
    assert not (tmp_path / "mlflow.db").exists()  # planning never creates a store

    client, experiment = MlflowClient(uri), T.ensure_store(uri, spec.tracking.experiment)
    parent = T.start_sweep(client, experiment, spec, SPEC, smoke=True)
    done = plan.trials[:2]
    for trial, train_s in zip(done, (40.0, 60.0), strict=True):
        run_id = T.trial_run(client, experiment, parent, trial, smoke=True)
        client.log_metric(run_id, "time/setup_s", 3.0, step=100)
        client.log_metric(run_id, "time/train_s", train_s, step=100)
        T.finish(client, run_id)
    T.trial_run(client, experiment, parent, plan.trials[2], smoke=True)  # RUNNING: still to run

    plan = make_plan(spec, smoke=True, tracking_uri=uri, cluster=[{"CPU": 1}, {"CPU": 1}])
    assert {(t.cell, t.seed) for t in done} == plan.finished
    assert len(plan.to_run) == 4 and plan.as_json()["already_finished"] == 2
    assert plan.median_trial_s == 53.0 and plan.eta_s == 2 * 53.0  # 4 trials, 2 at a time; setup + training
    real = make_plan(spec, smoke=False, tracking_uri=uri, cluster={"CPU": 2})
    assert len(real.to_run) == 6  # smoke trials are other cells: they never count for the real sweep


def test_plan_cli_json_and_errors(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(SPEC)
    cmd = [sys.executable, "-m", "unisweep.cli", "plan", "--tracking-uri", f"sqlite:///{tmp_path}/m.db"]
    out = subprocess.run([*cmd, str(good), "--smoke", "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert (plan["trials"], plan["to_run"], plan["already_finished"]) == (6, 6, 0)
    assert plan["max_concurrent"] >= 1 and plan["execution"] == "ray-train"

    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("data.tasks", "data.taks"))
    out = subprocess.run([*cmd, str(bad)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "grid.data.taks" in out.stderr and "data.tasks" in out.stderr

    out = subprocess.run([*cmd, str(tmp_path / "missing.yaml")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no such sweep spec file" in out.stderr
