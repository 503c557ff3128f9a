"""A real Ray cluster on this machine: a head from `ray start --head` and a worker node from `ray start --address`
(separate raylets, loopback only, token auth on), an `mlflow server` over a real PostgreSQL, and the sweep
submitted with `ray job submit -- unisweep run ...`. Every trial is a 2-worker Ray Train trial that cannot fit
on one node, so each spans both; the worker node is SIGKILLed mid-trial and a replacement joins, as an
autoscaler or KubeRay would bring one: the sweep still ends with every trial FINISHED once, each step logged once.
"""

import json
import os
import secrets
import subprocess
import tempfile
import time

import pytest
from conftest import free_port, start_server, stop_server, wait_for_server
from mlflow import MlflowClient
from services import Postgres, kill_node, ray_cli, start_ray_node, stop_ray_node

from sweeps import tracking as T
from sweeps.trial import NODES_TAG

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # 365 s of 420 spent in one clean-clone run

SEEDS = (0, 1, 2)


@pytest.fixture
def mlflow_on_postgres(tmp_path):
    """An `mlflow server` whose backend store is a real PostgreSQL server; its URL."""
    pg = Postgres(free_port()).start()
    proc, url = start_server(pg.uri, tmp_path / "artifacts")
    try:
        yield wait_for_server(proc, url)
    finally:
        stop_server(proc)
        pg.stop()


@pytest.fixture
def cluster():
    """(env, head address, dashboard URL, start_worker): a head with 1 CPU and token auth; `start_worker()`
    adds a 1-CPU node and returns its session's leader. Every node is ended at the end, and only them."""
    token = secrets.token_hex(16)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0",
           # a SIGKILLed raylet is declared dead after about 3 s rather than Ray's default of about 30 s
           "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
    # Ray's session sockets live under its temp dir, and a unix socket's path must stay short
    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    port, dashboard = free_port(), free_port()
    common = ["--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--object-store-memory", str(200 * 2**20),
              "--dashboard-agent-listen-port", "0"]
    nodes = [start_ray_node(["--head", "--port", str(port), "--temp-dir", temp_dir, "--dashboard-host", "127.0.0.1",
                             "--dashboard-port", str(dashboard), "--include-dashboard", "true", *common], env)]

    def start_worker(private: tuple[str, ...] = ()):
        nodes.append(start_ray_node(["--address", f"127.0.0.1:{port}", *common], env, private))
        return nodes[-1]

    try:
        yield env, f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard}", start_worker
    finally:
        for node in reversed(nodes):
            stop_ray_node(node)


def _job(env, dashboard: str, verb: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([ray_cli(), "job", verb, "--address", dashboard, *args], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 or not check, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def _wait_for_a_trial_mid_way(client, experiment_id: str, logs, timeout_s: float = 120) -> str:
    """The run id of a trial RUNNING past its first eval point (its checkpoint is saved), polled over HTTP."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for run in T.search_trials(client, experiment_id, "cluster"):
            if run.info.status == "RUNNING" and "eval/und/total" in run.data.metrics:
                return run.info.run_id
        time.sleep(0.3)
    raise AssertionError(f"no trial reached its first eval point; the job's log:\n{logs()[-4000:]}")


def test_a_sweep_submitted_to_a_ray_start_cluster_survives_losing_a_node(
        tmp_path, cache_dir, spaces, mlflow_on_postgres, cluster):
    env, head, dashboard, start_worker = cluster
    worker = start_worker()
    spec = tmp_path / "cluster.yaml"
    spec.write_text(f"""name: cluster
base: smartwatch-cpu
seeds: {list(SEEDS)}
# 0.1 CPU for the trial, 0.9 for each worker: one node of 1 CPU never holds a whole trial
resources: {{workers_per_trial: 2, cpus_per_worker: 0.9, max_failures: 2}}
tracking: {{uri: "{mlflow_on_postgres}", experiment: cluster}}
storage: {tmp_path / 'ray'}
""")
    job_env = {"env_vars": {"UNISWEEP_CACHE": str(cache_dir), "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.2"}}
    entrypoint = [os.path.join(os.path.dirname(ray_cli()), "unisweep"), "run", str(spec), "--smoke",
                  "--address", "auto"]
    submit = ["--no-wait", "--runtime-env-json", json.dumps(job_env), "--"]

    no_token = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"}
    refused = _job(no_token, dashboard, "submit", *submit, *entrypoint, check=False)
    assert refused.returncode != 0  # token auth is on: a client without the token cannot submit

    _job(env, dashboard, "submit", "--submission-id", "sweep", *submit, *entrypoint)
    client = MlflowClient(mlflow_on_postgres)
    experiment_id = _wait_for_experiment(client)
    hit = _wait_for_a_trial_mid_way(client, experiment_id, lambda: _job(env, dashboard, "logs", "sweep").stdout)
    kill_node(worker)  # the node's raylet and every worker on it, at once
    start_worker()  # the replacement

    logs = _job(env, dashboard, "logs", "sweep", "--follow").stdout
    status = _job(env, dashboard, "status", "sweep").stdout
    assert "Job 'sweep' succeeded" in status, logs[-4000:]

    runs = T.search_trials(client, experiment_id, "cluster")
    assert len(runs) == len(SEEDS) and {r.info.status for r in runs} == {"FINISHED"}, logs[-4000:]
    for run in runs:
        nodes = run.data.tags[NODES_TAG].split(",")
        assert len(nodes) == 2 and len(set(nodes)) == 2  # rank 0 and rank 1 trained on different nodes
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "eval/und/total")]
        assert steps == sorted(set(steps)) and steps[-1] == 100  # every eval point logged once
    assert client.get_run(hit).info.status == "FINISHED"  # the trial running when its node died


def _wait_for_experiment(client, timeout_s: float = 120) -> str:
    deadline = time.monotonic() + timeout_s
    while (experiment := client.get_experiment_by_name("cluster")) is None:
        assert time.monotonic() < deadline, "the job never reached MLflow"
        time.sleep(0.5)
    return experiment.experiment_id


def _doctor(env, *args: str) -> subprocess.CompletedProcess:
    unisweep = os.path.join(os.path.dirname(ray_cli()), "unisweep")
    return subprocess.run([unisweep, "doctor", *args], env=env, capture_output=True, text=True, timeout=180)


def test_doctor_names_the_node_that_does_not_share_the_storage_folder(tmp_path, cache_dir, server, cluster):
    env, head, _, start_worker = cluster
    storage = tmp_path / "shared"
    storage.mkdir()
    start_worker(private=(str(storage),))  # this node has its own, empty folder at that path
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: doc\nbase: smartwatch-cpu\ntracking: {{uri: '{server}'}}\nstorage: {storage}\n")
    env = {**env, "UNISWEEP_CACHE": str(cache_dir)}

    out = _doctor(env, str(spec), "--address", head)
    lines = out.stdout.splitlines()
    assert out.returncode == 1, out.stdout + out.stderr[-3000:]
    assert [line.split()[:2] for line in lines] == [
        ["ok", "ray"], ["ok", "resources"], ["ok", "tracking"], ["ok", "cache"], ["FAIL", "storage"], ["ok", "reach"]]
    assert "2 node(s) alive" in lines[0] and f"does not see {storage} as written here" in lines[4]
    assert not list(storage.iterdir())  # the doctor's probe files are gone

    out = _doctor(env, "--address", head, "--tracking-uri", server, "--storage", str(cache_dir), "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["ok"], out.stdout  # the cache folder is shared

    gpu = tmp_path / "gpu.yaml"
    gpu.write_text(spec.read_text() + "resources: {gpus_per_worker: 1}\n")
    verdict = json.loads(_doctor(env, str(gpu), "--address", head, "--json").stdout)
    assert [c["name"] for c in verdict["checks"] if not c["ok"]] == ["resources", "storage"]

    no_token = {k: v for k, v in env.items() if k != "RAY_AUTH_TOKEN"}
    out = _doctor(no_token, "--address", head)
    assert out.returncode == 1 and out.stdout.startswith("FAIL  ray") and "RAY_AUTH_TOKEN" in out.stdout
