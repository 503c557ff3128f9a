"""`unisweep run` on a real local Ray and a real SQLite MLflow store: exactly once, skips, extension."""

import json
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from sweeps import spec as S
from sweeps import tracking as T
from sweeps.driver import run_sweep

pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"), pytest.mark.timeout(300)]

SPEC = """name: drive
base: smartwatch-cpu
seeds: [0]
grid:
  data.tasks: [mixed, understanding]
tracking: {{uri: "sqlite:///{db}", experiment: tests}}
storage: {storage}
"""


def test_a_smoke_sweep_logs_every_trial_once_and_reruns_nothing(tmp_path, cache_dir, ray_local):
    text = SPEC.format(db=tmp_path / "mlflow.db", storage=tmp_path / "ray")
    spec = S.parse_spec(text)
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.trials, result.finished, result.failed) == (2, 2, [])

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    parent = T.sweep_run(client, experiment, "drive", smoke=True)
    runs = T.search_trials(client, experiment, "drive")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    for r in runs:
        tags = r.data.tags
        assert tags["unisweep.smoke"] == "true" and tags["unisweep.seed"] == "0"
        assert tags["unisweep.variant"] == "siglip-siglip" and tags["unisweep.cell"] in r.info.run_name
        assert r.data.params["data.tasks"] in ("mixed", "understanding")
        for key in ("eval/und/total", "train/loss"):
            steps = [m.step for m in client.get_metric_history(r.info.run_id, key)]
            assert len(steps) == len(set(steps)) and steps  # every step exactly once
        assert [m.step for m in client.get_metric_history(r.info.run_id, "eval/und/total")] == [50, 100]

    again = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (again.skipped, again.finished) == (2, 0)
    assert len(T.search_trials(client, experiment, "drive")) == 2  # nothing launched, nothing duplicated

    wider = text.replace("[mixed, understanding]", "[mixed, understanding, generation]")
    more = run_sweep(S.parse_spec(wider), wider, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (more.trials, more.skipped, more.finished) == (3, 2, 1)  # only the new cell ran
    assert len(T.search_trials(client, experiment, "drive")) == 3

    from sweeps.report_runs import list_runs, sweep_status

    status = sweep_status(spec.tracking.uri, "tests", "drive")
    assert status["trials"] == 3 and status["by_status"] == {"FINISHED": 3}
    assert status["best"] is not None
    mixed = list_runs(spec.tracking.uri, "tests", "drive", where="params.data.tasks = 'mixed'")
    assert [r["tasks"] for r in mixed] == ["mixed"] and "eval/und/total" in mixed[0]["metrics"]

    cli = [sys.executable, "-m", "sweeps.cli"]
    out = subprocess.run([*cli, "runs", "--sweep", "drive", "--experiment", "tests", "--json",
                          "--tracking-uri", spec.tracking.uri], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and len(json.loads(out.stdout)) == 3
    out = subprocess.run([*cli, "status", "nosuch", "--experiment", "tests", "--tracking-uri", spec.tracking.uri],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no trial runs" in out.stderr
