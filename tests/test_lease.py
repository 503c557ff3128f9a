"""One live driver per sweep (sweeps/lease.py): a second `unisweep run` of a live sweep refuses and names the live
driver; a driver killed with SIGKILL leaves a lease that expires, and `resume` takes over, fails the dead
driver's RUNNING runs and finishes every trial exactly once. Real `unisweep` processes on the session's real Ray
(`--address`), a real SQLite store."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from mlflow import MlflowClient

from sweeps import lease as L
from sweeps import tracking as T
from sweeps.errors import SweepBusy

pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"), pytest.mark.timeout(400)]

SPEC = """name: {name}
base: smartwatch-cpu
seeds: [0, 1, 2]
grid:
  data.tasks: [understanding]
tracking: {{uri: "sqlite:///{db}", experiment: tests}}
storage: {storage}
"""


def test_a_lease_is_refused_while_alive_and_taken_over_once_silent(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/m.db"
    client = MlflowClient(uri)
    run_id = client.create_run(T.ensure_store(uri, "tests")).info.run_id
    monkeypatch.setenv(L.TTL_ENV, "4")  # long enough for a loaded machine's store calls between the checks
    first = L.acquire(client, run_id, "leased")
    with pytest.raises(SweepBusy, match=rf"host {socket.gethostname()}, pid {os.getpid()}, since "):
        L.acquire(client, run_id, "leased")
    time.sleep(5)  # the heartbeat (every ttl / 4) keeps it alive past its time to live
    with pytest.raises(SweepBusy):
        L.acquire(client, run_id, "leased")
    first._stop.set()  # the driver dies: no more heartbeats
    time.sleep(5)
    second = L.acquire(client, run_id, "leased")
    assert second.took_over is not None and second.took_over.owner == first.owner
    second.release()  # a clean end frees it at once, and is no takeover
    third = L.acquire(client, run_id, "leased")
    assert third.took_over is None
    third.release()


class _SlowBeats:
    """A real client whose heartbeat writes take half a second, as on a loaded store."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def set_tag(self, run_id, key, value):
        if key == L.BEAT and value != "0" and threading.current_thread().name == "unisweep-lease":
            time.sleep(0.5)
        return self.client.set_tag(run_id, key, value)


def test_a_released_lease_stays_released_when_a_heartbeat_was_on_its_way(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/m.db"
    client = _SlowBeats(MlflowClient(uri))
    run_id = client.create_run(T.ensure_store(uri, "tests")).info.run_id
    monkeypatch.setenv(L.TTL_ENV, "2")  # a beat every 0.5 s
    first = L.acquire(client, run_id, "leased")
    time.sleep(0.7)  # the first beat is being written
    first.release()  # as a driver that ends: the next `run`, a moment later, must not be refused
    time.sleep(0.5)
    second = L.acquire(client, run_id, "leased")
    assert second.took_over is None
    second.release()


class _Driver:
    """A `unisweep` process whose output goes to files: a pipe nobody reads while the test polls fills up and
    blocks the driver (seen in CI as a sweep that never moved)."""

    def __init__(self, cmd: list[str], env: dict, out_dir):
        self.out_path, self.err_path = out_dir / "out.txt", out_dir / "err.txt"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        self.pid = self.proc.pid

    @property
    def returncode(self):
        return self.proc.returncode

    def communicate(self, timeout: float) -> tuple[str, str]:
        self.proc.wait(timeout)
        return self.out_path.read_text(), self.err_path.read_text()

    def alive(self) -> bool:
        if self.proc.poll() is None:
            return True
        raise AssertionError(f"the driver ended early ({self.proc.returncode}):\n{self.err_path.read_text()[-3000:]}")


def _driver(tmp_path, ray_local, cache_dir, name: str, command: str, env: dict | None = None) -> _Driver:
    """`unisweep run SPEC --smoke` (or `resume NAME`) in its own process, on the session's Ray."""
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(SPEC.format(name=name, db=tmp_path / "mlflow.db", storage=tmp_path / "ray"))
    target = [str(spec), "--smoke"] if command == "run" else [
        name, "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", "--experiment", "tests"]
    cmd = [sys.executable, "-m", "unisweep.cli", command, *target, "--cache-dir", str(cache_dir),
           "--address", ray_local.get_runtime_context().gcs_address]
    out_dir = tmp_path / f"{name}-{command}-{time.monotonic_ns()}"
    out_dir.mkdir()
    return _Driver(cmd, {**os.environ, **(env or {})}, out_dir)


def _runs(tmp_path, name):
    client = T.open_client(f"sqlite:///{tmp_path}/mlflow.db")  # never migrates a new file beside the driver
    experiment = client.get_experiment_by_name("tests")
    return client, (T.search_trials(client, experiment.experiment_id, name) if experiment else [])


def _statuses(tmp_path, name) -> set[str]:
    return {r.info.status for r in _runs(tmp_path, name)[1]}


def _wait_for(predicate, timeout_s: float = 180):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_a_second_driver_of_a_live_sweep_refuses_and_the_first_finishes(tmp_path, ray_local, cache_dir):
    first = _driver(tmp_path, ray_local, cache_dir, "twice", "run")
    _wait_for(lambda: first.alive() and any(r.info.status == "RUNNING" for r in _runs(tmp_path, "twice")[1]))
    second = _driver(tmp_path, ray_local, cache_dir, "twice", "run")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 4, err
    assert f"pid {first.pid}, since" in err and "Traceback" not in err
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert "snapshotting has been triggered" not in err  # Tune's warning about the checkpoints we keep
    client, runs = _runs(tmp_path, "twice")
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    for r in runs:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "eval/und/total")]
        assert steps == [50, 100]


@pytest.mark.slow
def test_a_killed_drivers_sweep_is_taken_over_by_resume(tmp_path, ray_local, cache_dir):
    ttl = {L.TTL_ENV: "20"}  # long enough for the `resume` that comes too soon to start and ask, under load
    dead = _driver(tmp_path, ray_local, cache_dir, "orphaned", "run", env=ttl)
    _wait_for(lambda: dead.alive() and {"FINISHED", "RUNNING"} <= _statuses(tmp_path, "orphaned"))
    dead.proc.send_signal(signal.SIGKILL)  # no handler runs: its runs and its lease stay as they were
    killed_at = time.time()
    dead.proc.wait(30)
    busy = _driver(tmp_path, ray_local, cache_dir, "orphaned", "resume", env=ttl)
    _, err = busy.communicate(timeout=120)
    assert busy.returncode == 4 and f"pid {dead.pid}," in err  # too soon: its lease has not expired yet
    time.sleep(max(0.0, killed_at + 20.5 - time.time()))  # no heartbeat for the lease's time to live
    taker = _driver(tmp_path, ray_local, cache_dir, "orphaned", "resume", env=ttl)
    out, err = taker.communicate(timeout=300)
    assert taker.returncode == 0, err
    assert "took over sweep orphaned" in out and "run(s) left RUNNING by an earlier driver as FAILED" in out
    client, runs = _runs(tmp_path, "orphaned")
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}  # one run per (cell, seed)
    for r in runs:
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "eval/und/total")]
        assert steps == [50, 100]  # nothing logged twice
    parent = T.sweep_run(client, client.get_experiment_by_name("tests").experiment_id, "orphaned", True)
    assert parent.info.status == "FINISHED" and parent.data.tags[L.BEAT] == "0"  # released at the end
