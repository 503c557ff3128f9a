"""MLflow tracking against real stores: a SQLite file in tmp_path, and one `mlflow server` subprocess."""

import dataclasses
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from sweeps import defaults as D
from sweeps import spec as S
from sweeps import tracking as T

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")  # docs/PLATFORM.md §6

SPEC_TEXT = """name: tr
base: smartwatch-cpu
seeds: [0, 1]
grid:
  model.variant: [siglip-siglip, vq-vq]
  model.affine_strength: [0.0, 0.5]
"""


@pytest.fixture(scope="module")
def base_spec():
    return S.parse_spec(SPEC_TEXT)


@pytest.fixture
def spec(base_spec, request):
    """The spec under a sweep name of its own, so that tests sharing one store do not see each other's runs."""
    return dataclasses.replace(base_spec, name=request.node.name.removeprefix("test_")[:40])


@pytest.fixture(scope="module")
def base_trials(base_spec):
    return S.expand(base_spec, smoke=True)


@pytest.fixture
def trials(spec, base_trials):
    return [dataclasses.replace(t, name=f"{spec.name}/{t.cell}/s{t.seed}") for t in base_trials]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module: creating its schema costs seconds."""
    tmp = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{tmp}/db/mlflow.db"
    return MlflowClient(uri), T.ensure_store(uri, "unisweep"), tmp


def _open_after(uri: str, barrier, results) -> None:
    """One process of the race below: imports done, it waits for the others, then opens the store."""
    from sweeps.store_open import open_client

    barrier.wait(120)
    try:
        results.put(len(open_client(uri).search_experiments()))
    except Exception as e:  # noqa: BLE001 - what broke is the test's message
        results.put(f"{type(e).__name__}: {e}"[:300])


def test_processes_that_open_a_new_sqlite_store_at_once_all_find_one_whole_schema(tmp_path):
    """Without the lock in sweeps/store_open.py, two of MLflow's first migrations of one file break each other
    (every one of 4 tries with two processes here, and once in CI: a driver died beside a test that polled its
    new store)."""
    spawn = multiprocessing.get_context("spawn")  # fresh processes: no MLflow store cached from this one
    uri, barrier, results = f"sqlite:///{tmp_path}/m.db", spawn.Barrier(3), spawn.Queue()
    openers = [spawn.Process(target=_open_after, args=(uri, barrier, results)) for _ in range(3)]
    for p in openers:
        p.start()
    outcomes = [results.get(timeout=180) for _ in openers]
    for p in openers:
        p.join(30)
    assert outcomes == [1, 1, 1], outcomes  # each sees the one Default experiment of a whole schema


def test_uris_are_absolute_the_file_store_is_refused_and_flag_beats_env_beats_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    assert D.tracking_uri() == f"sqlite:///{tmp_path}/mlflow.db"
    assert D.tracking_uri(spec="sqlite:///s.db") == f"sqlite:///{tmp_path}/s.db"
    assert (D.experiment_name(), D.experiment_name(spec="s")) == ("unisweep", "s")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x/m.db")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "e")
    assert D.tracking_uri(spec="sqlite:///s.db") == f"sqlite:///{tmp_path}/x/m.db"
    assert D.tracking_uri("sqlite:///f.db", "sqlite:///s.db") == f"sqlite:///{tmp_path}/f.db"
    assert (D.experiment_name(spec="s"), D.experiment_name("f", "s")) == ("e", "f")
    assert D.absolute_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    with pytest.raises(ValueError, match="file store"):
        D.absolute_tracking_uri("file:./mlruns")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "./mlruns")
    with pytest.raises(ValueError, match=r"^\$MLFLOW_TRACKING_URI: './mlruns': MLflow 3 refuses the file store"):
        D.tracking_uri(spec="sqlite:///s.db")  # the error names where the bad value came from


def test_ensure_store_twice_gives_the_same_experiment_with_artifacts_beside_the_db(store):
    client, exp_id, tmp = store
    assert T.ensure_store(client.tracking_uri, "unisweep") == exp_id
    assert client.get_experiment(exp_id).artifact_location == (tmp / "db" / "mlartifacts").as_uri()
    assert T.ensure_store(client.tracking_uri, "other") != exp_id


def test_parent_run_is_found_again(store, spec):
    client, exp_id, _ = store
    parent = T.start_sweep(client, exp_id, spec, SPEC_TEXT)
    T.finish(client, parent)
    assert T.start_sweep(client, exp_id, spec, SPEC_TEXT) == parent
    run = client.get_run(parent)
    assert run.info.status == "RUNNING" and run.info.run_name == spec.name
    assert run.data.tags["unisweep.role"] == "sweep" and run.data.tags["unisweep.sweep"] == spec.name
    assert len(run.data.tags["unisweep.git_sha"]) in (7, 40) or run.data.tags["unisweep.git_sha"] == "unknown"
    assert run.data.tags["unisweep.dirty"] in ("true", "false", "unknown")
    assert run.data.tags["unisweep.version.mlflow"]
    assert run.data.tags["unisweep.preset_version"] == f"smartwatch-cpu v{S.C.PRESET_VERSIONS['smartwatch-cpu']}"
    assert T.start_sweep(client, exp_id, spec, SPEC_TEXT, smoke=True) != parent  # smoke sweeps apart
    assert T.sweep_run(client, exp_id, spec.name).info.run_id == parent
    assert Path(client.download_artifacts(parent, "spec.yaml")).read_text() == SPEC_TEXT


def test_trial_run_is_reused_per_cell_and_seed_and_holds_every_tag_and_param(store, spec, trials):
    client, exp_id, _ = store
    parent = T.start_sweep(client, exp_id, spec, SPEC_TEXT)
    trial = next(t for t in trials if t.overrides["model.affine_strength"] == 0.5)
    run_id = T.trial_run(client, exp_id, parent, trial, smoke=True)
    T.finish(client, run_id, "FAILED")
    assert T.trial_run(client, exp_id, parent, trial, smoke=True) == run_id  # a retry resumes its run
    others = {T.trial_run(client, exp_id, parent, t, smoke=True) for t in trials if t is not trial}
    assert len(others) == len(trials) - 1 and run_id not in others

    run = client.get_run(run_id)
    assert run.info.status == "RUNNING" and run.info.run_name == trial.name
    assert run.data.tags == {**run.data.tags, "mlflow.parentRunId": parent, "unisweep.role": "trial",
                             "unisweep.sweep": spec.name, "unisweep.cell": trial.cell, "unisweep.seed": str(trial.seed),
                             "unisweep.variant": trial.config.model.variant, "unisweep.smoke": "true",
                             "unisweep.preset_version": f"smartwatch-cpu v{S.C.PRESET_VERSIONS['smartwatch-cpu']}"}
    assert {"unisweep.git_sha", "unisweep.dirty", "unisweep.version.ray"} <= set(run.data.tags)
    flat = S.C.flatten(trial.config)
    assert run.data.params == {k: str(v) for k, v in flat.items()}
    assert run.data.metrics == {"model.affine_strength": 0.5}  # numeric axes as metrics; the variant is not
    assert Path(client.download_artifacts(run_id, "config.yaml")).read_text() == S.C.to_yaml(trial.config)


def test_run_logger_logs_each_key_and_step_once_across_a_retry(store, spec, trials):
    client, exp_id, _ = store
    run_id = T.trial_run(client, exp_id, T.start_sweep(client, exp_id, spec, SPEC_TEXT), trials[0])
    reports = [({"train/loss": 3.0}, 1), ({"train/loss": 2.0}, 50), ({"train/loss": 1.5, "eval/und/total": 0.4}, 50),
               ({"train/loss": 1.0, "eval/und/total": 0.6}, 100)]
    first = T.RunLogger(client, run_id)
    for metrics, step in reports[:3]:
        first(metrics, step, state=None)
    retry = T.RunLogger(client, run_id)  # a retried trial replays from its last checkpoint
    for metrics, step in reports[1:]:
        retry(metrics, step, state={"ckpt": True})
    loss = client.get_metric_history(run_id, "train/loss")
    assert sorted((m.step, m.value) for m in loss) == [(1, 3.0), (50, 2.0), (100, 1.0)]
    und = client.get_metric_history(run_id, "eval/und/total")
    assert sorted((m.step, m.value) for m in und) == [(50, 0.4), (100, 0.6)]


def test_train_losses_wait_for_an_eval_point_and_a_crash_loses_only_what_waited(store, spec, trials):
    client, exp_id, _ = store
    run_id = T.trial_run(client, exp_id, T.start_sweep(client, exp_id, spec, SPEC_TEXT), trials[0])
    first = T.RunLogger(client, run_id)
    for step in range(1, 51):
        first({"train/loss": 1.0 / step}, step)
    assert client.get_metric_history(run_id, "train/loss") == []  # one commit per batch, not per percent
    first({"train/loss": 0.01, "eval/und/total": 0.4}, 50)  # the eval point (a checkpoint) flushes
    assert len(client.get_metric_history(run_id, "train/loss")) == 50
    for step in range(51, 60):
        first({"train/loss": 0.5}, step)  # then the process dies: these never reach MLflow
    retry = T.RunLogger(client, run_id)  # restarted from the 50 % checkpoint
    for step in range(51, 101):
        retry({"train/loss": 0.25}, step)
    retry.flush()
    loss = client.get_metric_history(run_id, "train/loss")
    assert sorted(m.step for m in loss) == list(range(1, 101))
    assert {m.value for m in loss if m.step > 50} == {0.25}  # replayed once, by the retry


def test_image_grid_is_a_png_artifact(store, spec, trials):
    client, exp_id, _ = store
    run_id = T.trial_run(client, exp_id, T.start_sweep(client, exp_id, spec, SPEC_TEXT), trials[0])
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    T.log_image_grid(client, run_id, images, "images/gen_100.png")
    png = Path(client.download_artifacts(run_id, "images/gen_100.png"))
    from PIL import Image

    grid = np.asarray(Image.open(png))
    assert grid.shape == (2 * 8 + 2, 3 * 8 + 4, 3) and (grid[:8, 10:18] == images[1]).all()


def test_finished_trials_and_stale_running_runs(store, spec, trials):
    client, exp_id, _ = store
    parent = T.start_sweep(client, exp_id, spec, SPEC_TEXT)
    ids = [T.trial_run(client, exp_id, parent, t) for t in trials[:3]]
    T.finish(client, ids[0])
    T.finish(client, ids[1], "FAILED")
    assert T.finished_trials(client, exp_id, spec.name) == {(trials[0].cell, trials[0].seed)}
    assert T.finished_trials(client, exp_id, "other") == set()
    assert T.mark_stale_running_failed(client, exp_id, spec.name) == 1
    assert client.get_run(ids[2]).info.status == "FAILED"
    assert T.mark_stale_running_failed(client, exp_id, spec.name) == 0


def test_concurrent_search_samples_of_one_config_never_share_a_run(store, spec, trials):
    client, exp_id, _ = store
    parent = T.start_sweep(client, exp_id, spec, SPEC_TEXT)
    first = T.trial_run(client, exp_id, parent, trials[0], reuse_running=False)
    second = T.trial_run(client, exp_id, parent, trials[0], reuse_running=False)  # the first is still RUNNING
    assert first != second
    T.finish(client, second, "FAILED")
    assert T.trial_run(client, exp_id, parent, trials[0], reuse_running=False) == second  # a failed one resumes
    assert T.trial_run(client, exp_id, parent, trials[0]) in (first, second)  # a grid trial reuses its run


def test_search_trials_pages_through_every_run(store, spec, trials):
    client, exp_id, _ = store
    parent = T.start_sweep(client, exp_id, spec, SPEC_TEXT)
    for t in trials:
        T.trial_run(client, exp_id, parent, t)
    assert len(T.search_trials(client, exp_id, spec.name, page_size=3)) == len(trials) == 8
    vq = T.search_trials(client, exp_id, spec.name, where="params.model.variant = 'vq-vq'", page_size=3)
    assert len(vq) == 4 and {r.data.params["model.variant"] for r in vq} == {"vq-vq"}
    where = "metrics.model.affine_strength > 0.1"
    assert len(T.search_trials(client, exp_id, spec.name, where=where, page_size=2)) == 4
    assert T.quote_keys("params.`a.b` = 'x' and metrics.loss < 1") == "params.`a.b` = 'x' and metrics.loss < 1"


@pytest.fixture(scope="module", autouse=True)
def boot_server_early(server_process):
    """Start the session's `mlflow server` (tests/conftest.py) first, so it boots while the SQLite tests run."""


@pytest.mark.slow
def test_a_trial_logs_to_a_real_mlflow_server(server, spec, trials):
    exp_id = T.ensure_store(server, "unisweep")
    client = MlflowClient(server)
    run_id = T.trial_run(client, exp_id, T.start_sweep(client, exp_id, spec, SPEC_TEXT), trials[0])
    T.RunLogger(client, run_id)({"eval/und/total": 0.5}, 100)
    T.log_image_grid(client, run_id, np.zeros((1, 8, 8, 3), np.uint8))
    T.finish(client, run_id)
    assert T.finished_trials(client, exp_id, spec.name) == {(trials[0].cell, trials[0].seed)}
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "eval/und/total")] == [(100, 0.5)]
    assert "generated.png" in {f.path for f in client.list_artifacts(run_id)}
