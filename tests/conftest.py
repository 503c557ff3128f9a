"""Shared fixtures: one smoke-size dataset, tokenizer and stage-0 build per test run, one local Ray per worker.

`make test` runs two pytest-xdist workers (`--dist loadfile`); most tests wait on Ray or MLflow more than they
compute, so two workers share the 2 cores well. The stage-0 cache is shared by the workers of one run and
built once, under a file lock, before any test sees it.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One compute thread per worker: two workers with two OpenMP threads each on 2 cores oversubscribe, and
    # the conv judges of stage 0 then ran 30x slower (docs/LOG.md, 2026-11-30). Set before torch is imported.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest

from unified import config, determinism

# The CPU pin, as `unisweep` applies it, before torch is imported: the session's stage 0 is then keyed as the
# CLI subprocesses and Ray workers (who inherit this environment) key theirs, and built once (unified/determinism.py)
determinism.apply_env()


@pytest.fixture(scope="session")
def smoke_cfg():
    return config.resolve(config.smoke(config.preset("smartwatch-cpu")))


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory, smoke_cfg):
    """The run's stage-0 cache, the smoke pool and stage 0 built in it (by whichever worker comes first)."""
    import fcntl

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the workers' basetemps are siblings in this run's folder
    path = root / "unisweep-cache"
    path.mkdir(exist_ok=True)
    with open(root / "unisweep-cache.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other worker waits, then loads what this one built
        _build_smoke_stage0(smoke_cfg, path)
    return path


def _build_smoke_stage0(cfg, cache_dir) -> None:
    from unified.data.dataset import load_pool
    from unified.data.tokenizer import build_tokenizer
    from unified.vision.stage0 import build_spaces

    build_spaces(cfg, load_pool(cfg.data, cache_dir), build_tokenizer(cfg.data.domain), cache_dir)


@pytest.fixture(scope="session")
def pool(smoke_cfg, cache_dir):
    from unified.data.dataset import load_pool

    return load_pool(smoke_cfg.data, cache_dir)


@pytest.fixture(scope="session")
def tokenizer(smoke_cfg):
    from unified.data.tokenizer import build_tokenizer

    return build_tokenizer(smoke_cfg.data.domain)


@pytest.fixture(scope="session")
def spaces(smoke_cfg, pool, tokenizer, cache_dir):
    from unified.vision.stage0 import build_spaces

    return build_spaces(smoke_cfg, pool, tokenizer, cache_dir)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session (docs/PLATFORM.md §10: define it once, here)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,  # sweeps.orphans frees stopped Train trials
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}})
    yield ray
    ray.shutdown()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(backend_uri: str, artifacts) -> tuple:
    """A real `mlflow server` on 127.0.0.1 at a free port over `backend_uri`: (process, URL), still booting."""
    import subprocess
    import sys
    from pathlib import Path

    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow), "server", "--backend-store-uri", backend_uri,
                             "--artifacts-destination", str(artifacts), "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}"


def stop_server(proc) -> None:
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)  # its own session: the uvicorn and job-runner children go too
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_for_server(proc, url: str, timeout_s: float = 90) -> str:
    """`url` once /health answers."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            return url
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mlflow server did not come up on {url} (exit {proc.poll()})") from None
            time.sleep(0.25)


@pytest.fixture(scope="session")
def server_process(tmp_path_factory):
    """One `mlflow server` on 127.0.0.1 for the session (it boots in seconds); stopped at the end.

    Modules that use it request it early through an autouse fixture, so it boots while their SQLite tests run."""
    tmp = tmp_path_factory.mktemp("server")
    proc, url = start_server(f"sqlite:///{tmp}/srv.db", tmp / "artifacts")
    yield proc, url
    stop_server(proc)


@pytest.fixture
def server(server_process):
    """The server's URL once /health answers."""
    return wait_for_server(*server_process)


@pytest.fixture(scope="module")
def serve():
    """`serve(backend_uri, artifacts_dir)` -> the URL of a real `mlflow server` over a store a test built, up;
    stopped after the module."""
    started = []

    def up(backend_uri: str, artifacts) -> str:
        proc, url = start_server(backend_uri, artifacts)
        started.append(proc)
        return wait_for_server(proc, url)

    yield up
    for proc in started:
        stop_server(proc)


@pytest.fixture(scope="session")
def analysis_store(tmp_path_factory):
    """A SQLite store holding the planted and null sweeps of tests/analysis_stores.py: (uri, {sweep: parent id})."""
    import analysis_stores
    from mlflow import MlflowClient

    from sweeps import tracking

    uri = f"sqlite:///{tmp_path_factory.mktemp('analysis')}/mlflow.db"
    experiment_id = tracking.ensure_store(uri, "unisweep")
    client = MlflowClient(uri)
    analysis_stores.without_fsync(client)
    parents = {name: analysis_stores.fill(client, experiment_id, name, images=name == "planted")
               for name in analysis_stores.STORED}
    return uri, parents
