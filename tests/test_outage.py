"""A store outage mid-sweep: a real `mlflow server` frozen with SIGSTOP while trials log into it.

MLflow's own client is told to give up soon (a 5 s timeout, no retries), so that what rides the outage out is
unisweep's patience (sweeps/patient.py): shorter than the patience, the sweep finishes as if nothing happened;
longer, the trials fail with the real cause, the parent run is closed FAILED, and `resume` finishes the rest
with every eval point logged once.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import start_server, stop_server, wait_for_server
from mlflow import MlflowClient

from sweeps import tracking as T

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # a server frozen or a store locked for 25-30 s
# MLflow's own HTTP timeout in the sweep. Not 2 s: under a loaded CI machine the unfrozen server answered the
# driver's `create_run` (never retried: a lost reply could mean a second run) in over 2 s, and the sweep ended
# before the outage began (seen in CI, 2026-12-01)
HTTP_TIMEOUT_S = 5


@pytest.fixture
def frozen_server(tmp_path):
    """(url, freeze(seconds)): a server of this test's own; `freeze` stops every process of it, then resumes."""
    proc, url = start_server(f"sqlite:///{tmp_path}/store.db", tmp_path / "artifacts")

    def freeze(seconds: float) -> None:
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.killpg(proc.pid, signal.SIGCONT)

    try:
        yield wait_for_server(proc, url), freeze
    finally:
        stop_server(proc)


def _sweep(tmp_path, cache_dir, url: str, patience_s: float, command: list[str]) -> subprocess.Popen:
    spec = tmp_path / "outage.yaml"
    spec.write_text(f"name: outage\nbase: smartwatch-cpu\nseeds: [0, 1]\ntracking: {{uri: '{url}', experiment: o}}\n"
                    f"storage: {tmp_path / 'ray'}\n"
                    "resources: {max_failures: 0}\n")  # no Tune retry: the patience alone rides the outage out
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "UNISWEEP_CACHE": str(cache_dir),
           "MLFLOW_HTTP_REQUEST_TIMEOUT": str(HTTP_TIMEOUT_S), "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
           "UNISWEEP_STORE_PATIENCE_S": str(patience_s)}
    unisweep = Path(sys.executable).with_name("unisweep")
    args = [str(unisweep), *command] + ([str(spec), "--smoke"] if command == ["run"] else ["--tracking-uri", url])
    # stderr to a file: Ray's and the driver's lines must never fill a pipe nobody reads while the test polls
    with open(tmp_path / f"{command[0]}.stderr", "w") as err:
        sweep = subprocess.Popen(args + ["--json"], env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    sweep.stderr_path = err.name
    return sweep


def _finish(sweep: subprocess.Popen, timeout: float | None = 300) -> tuple[str, str]:
    """(stdout, stderr) of a sweep once it ended."""
    out, _ = sweep.communicate(timeout=timeout)
    return out, Path(sweep.stderr_path).read_text()


def _first_eval_point(client, sweep: subprocess.Popen) -> None:
    """Returns once a trial logged its first eval point; fails at once, with the driver's output, if it ended."""
    deadline = time.monotonic() + 420  # a loaded 2-core CI machine starts Ray and the trial slowly
    while time.monotonic() < deadline:
        experiment = client.get_experiment_by_name("o")
        runs = T.search_trials(client, experiment.experiment_id, "outage") if experiment else []
        if any("eval/und/total" in r.data.metrics for r in runs):
            return
        if sweep.poll() is not None:
            out, err = _finish(sweep)
            raise AssertionError(f"the sweep ended (exit {sweep.returncode}) first:\n{out[-2000:]}\n{err[-3000:]}")
        time.sleep(0.3)
    sweep.kill()
    out, err = _finish(sweep)
    raise AssertionError(f"no trial reached an eval point in 420 s:\n{err[-3000:]}")


def _each_step_once(client) -> list:
    runs = T.search_trials(client, client.get_experiment_by_name("o").experiment_id, "outage")
    for run in runs:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "eval/und/total")]
        assert steps == sorted(set(steps)), steps
    return runs


def test_an_outage_shorter_than_the_patience_is_waited_out(tmp_path, cache_dir, spaces, frozen_server):
    url, freeze = frozen_server
    client = MlflowClient(url)
    sweep = _sweep(tmp_path, cache_dir, url, patience_s=120, command=["run"])
    _first_eval_point(client, sweep)
    freeze(5 * HTTP_TIMEOUT_S)  # five times MLflow's own timeout
    out, err = _finish(sweep)
    assert sweep.returncode == 0, err[-3000:]
    assert json.loads(out)["finished"] == 2
    runs = _each_step_once(client)
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 2


def test_an_outage_longer_than_the_patience_fails_the_trials_with_its_cause_and_resume_finishes(
        tmp_path, cache_dir, spaces, frozen_server):
    url, freeze = frozen_server
    client = MlflowClient(url)
    # 10 s of patience, not less: a loaded CI machine's server, not frozen, can answer slower than MLflow's
    # timeout for a few seconds in a row, and a 2 s patience failed the trials before the outage began (seen in CI).
    # Within the 30 s freeze a call times out, its retry too, and the trial gives up with the cause.
    sweep = _sweep(tmp_path, cache_dir, url, patience_s=10, command=["run"])
    _first_eval_point(client, sweep)
    freeze(30)  # the trials give up after 10 s; the driver waits (at least 120 s) and closes the record
    out, err = _finish(sweep)
    assert sweep.returncode == 1, err[-3000:]
    experiment = client.get_experiment_by_name("o").experiment_id
    runs = T.search_trials(client, experiment, "outage")
    failed = [r for r in runs if r.info.status == "FAILED"]
    assert failed and all("timed out" in r.data.tags[T.ERROR].lower() for r in failed), [
        r.data.tags.get(T.ERROR) for r in runs]
    assert T.sweep_run(client, experiment, "outage", smoke=True).info.status == "FAILED"

    resumed = _sweep(tmp_path, cache_dir, url, patience_s=120, command=["resume", "outage"])
    out, err = _finish(resumed)
    assert resumed.returncode == 0, err[-3000:]
    runs = _each_step_once(client)
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 2
    assert T.sweep_run(client, experiment, "outage", smoke=True).info.status == "FINISHED"


def test_a_sqlite_store_locked_longer_than_sqlites_own_wait_is_waited_out(tmp_path):
    import sqlite3
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from mlflow.entities import Metric

    from sweeps.patient import PatientClient

    uri = f"sqlite:///{tmp_path}/locked.db"
    run_id = MlflowClient(uri).create_run(T.ensure_store(uri, "o")).info.run_id
    db = sqlite3.connect(tmp_path / "locked.db", isolation_level=None, check_same_thread=False)
    db.execute("BEGIN EXCLUSIVE")  # another writer's long transaction: past MLflow's 20 s busy wait for SQLite
    threading.Timer(25, lambda: db.execute("ROLLBACK")).start()

    def log(client, step: int) -> str:
        try:
            client.log_batch(run_id, metrics=[Metric("m", 1.0, 1, step)])
            return "logged"
        except Exception as e:  # noqa: BLE001
            return str(e)

    with ThreadPoolExecutor(2) as pool:  # both at once, in the same lock
        plain = pool.submit(log, MlflowClient(uri), 1)
        patient = pool.submit(log, PatientClient(uri, patience=60), 2)
        assert "database is locked" in plain.result() and patient.result() == "logged"
    db.close()
    assert [m.step for m in MlflowClient(uri).get_metric_history(run_id, "m")] == [2]
