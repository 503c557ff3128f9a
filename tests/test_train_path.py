"""The Ray Train path on a real local Ray: 2 DDP workers per trial, a crash retried from its checkpoint, ASHA.

Each trial here needs more than half the machine's 2 CPUs, so trials run one at a time: if a stopped or
crashed trial kept its workers' placement group, the next one could never start and the test would hit
its timeout (docs/PLATFORM.md §4: on 2 CPUs a leak hangs rather than fails). The fixture's Ray has no dashboard,
so Train's own cleaner cannot free them: `sweeps.orphans` must.
"""

import os
import time

import pytest
from mlflow import MlflowClient

from sweeps import tracking as T
from sweeps import trial
from sweeps.driver import CRASH_ENV, run_sweep
from sweeps.orphans import free_orphaned_placement_groups
from sweeps.spec import parse_spec
from sweeps.trial import RESUMED_TAG

pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"), pytest.mark.timeout(400)]

TWO_WORKERS = """name: {name}
base: smartwatch-cpu
seeds: [0]
resources: {{workers_per_trial: 2, cpus_per_worker: 0.9, max_failures: 1}}
tracking: {{uri: "sqlite:///{db}", experiment: tests}}
storage: {storage}
"""


def _sweep(tmp_path, name: str, extra: str = ""):
    text = TWO_WORKERS.format(name=name, db=tmp_path / "mlflow.db", storage=tmp_path / "ray") + extra
    spec = parse_spec(text)
    return spec, text


@pytest.mark.slow
def test_a_dead_actors_placement_group_is_freed_and_the_drivers_is_not(ray_local):
    from ray.util.placement_group import placement_group, remove_placement_group

    @ray_local.remote(num_cpus=0)
    class Controller:  # what a Train controller does: reserve its workers from inside an actor
        def reserve(self):
            ray_local.get(placement_group([{"CPU": 0.5}]).ready())

    drivers = placement_group([{"CPU": 0.5}])  # like Tune's per-trial group: created by the driver
    ray_local.get(drivers.ready(), timeout=60)
    alive, dead = Controller.remote(), Controller.remote()
    ray_local.get([alive.reserve.remote(), dead.reserve.remote()], timeout=60)
    assert free_orphaned_placement_groups() == 0  # every creator still alive
    ray_local.kill(dead)
    freed = 0
    for _ in range(50):  # GCS learns of the death asynchronously
        freed += free_orphaned_placement_groups()
        if freed:
            break
        time.sleep(0.1)
    assert freed == 1
    assert free_orphaned_placement_groups() == 0
    ray_local.kill(alive)
    assert ray_local.util.placement_group_table(drivers)["state"] == "CREATED"
    remove_placement_group(drivers)


@pytest.mark.slow
def test_a_non_rank_0_worker_that_dies_takes_its_group_back_to_the_checkpoint(tmp_path, cache_dir, ray_local,
                                                                              monkeypatch):
    spec, text = _sweep(tmp_path, "rank1")
    monkeypatch.setenv(CRASH_ENV, f"50:{tmp_path / 'crashes'}:1")  # rank 1 dies once after 50 %, rank 0 lives
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.finished, result.failed) == (1, [])
    assert len(list((tmp_path / "crashes").iterdir())) == 1
    client = MlflowClient(spec.tracking.uri)
    (run,) = T.search_trials(client, client.get_experiment_by_name("tests").experiment_id, "rank1")
    assert run.info.status == "FINISHED" and run.data.tags[RESUMED_TAG] == "50"
    for key in ("eval/und/total", "train/loss"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert steps == sorted(set(steps)) and steps[-1] == 100, f"{key}: {steps}"


@pytest.mark.slow
def test_a_two_worker_trial_crashes_once_and_resumes_from_its_checkpoint(tmp_path, cache_dir, ray_local,
                                                                         monkeypatch):
    spec, text = _sweep(tmp_path, "ddp")
    monkeypatch.setenv(CRASH_ENV, f"50:{tmp_path / 'crashes'}")  # each trial's rank 0 dies once after 50 %
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.finished, result.failed) == (1, [])
    assert len(list((tmp_path / "crashes").iterdir())) == 1  # it really crashed

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    (run,) = T.search_trials(client, experiment, "ddp")
    assert run.info.status == "FINISHED"
    assert run.data.params["data.tasks"] == "mixed" and run.data.tags["unisweep.node"]
    assert run.data.tags["unisweep.cpu"] == trial.cpu_description()
    for key in ("eval/und/total", "eval/gen/attr_acc", "train/loss"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert len(steps) == len(set(steps)), f"{key} logged a step twice: {steps}"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/und/total")] == [50, 100]
    loss_steps = [m.step for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert max(loss_steps) == 100 and any(s < 50 for s in loss_steps) and any(50 < s < 100 for s in loss_steps)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "generated.png", "real.png"} <= artifacts
    checkpoints = list((tmp_path / "ray" / "train").glob("*/checkpoint_*"))
    assert checkpoints, "rank 0 reported no Train checkpoint"
    assert run.data.tags[RESUMED_TAG] == "50"  # the restarted workers resumed from the 50 % checkpoint

    # The same spec and storage into a new, empty store: its run must train, not restore the old run's 100 %
    monkeypatch.delenv(CRASH_ENV)
    fresh = spec.tracking.uri.replace("mlflow.db", "fresh.db")
    again = run_sweep(spec, text, smoke=True, tracking_uri=fresh, cache_dir=cache_dir, progress=lambda *a: None)
    assert (again.finished, again.failed) == (1, [])
    client = MlflowClient(fresh)
    (new,) = T.search_trials(client, client.get_experiment_by_name("tests").experiment_id, "ddp")
    assert new.info.status == "FINISHED" and RESUMED_TAG not in new.data.tags
    assert [m.step for m in client.get_metric_history(new.info.run_id, "eval/und/total")] == [50, 100]


@pytest.mark.slow
def test_asha_stops_ray_train_trials_and_their_workers_make_room(tmp_path, cache_dir, ray_local):
    search = """search:
  space: {train.lr: {loguniform: [0.0001, 0.1]}}
  metric: eval/gen/fd
  mode: min
  num_samples: 3
  seed: 3
  asha: {grace_period: 1, reduction_factor: 2}
smoke: {train.eval_points: 4}
"""
    spec, text = _sweep(tmp_path, "asha", search)
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.trials, result.finished, result.failed) == (3, 3, [])  # every trial got its turn

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    runs = T.search_trials(client, experiment, "asha")
    assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
    assert not [r.data.tags[T.ERROR] for r in runs if T.ERROR in r.data.tags]  # a stop is not an error
    for _ in range(50):  # the raylet reports freed resources a moment later
        if ray_local.available_resources().get("CPU", 0) >= 2:
            break
        time.sleep(0.2)
    assert ray_local.available_resources().get("CPU", 0) >= 2, "the sweep left CPUs reserved for what runs next"
    stopped = [r for r in runs if r.data.tags.get(T.STOPPED_EARLY) == "true"]
    assert stopped, "ASHA stopped nothing; the test no longer shows that a stopped trial frees its workers"
    assert len(stopped) < 3  # the first trial at a rung always goes on
    cut = 0
    for r in runs:
        steps = sorted(m.step for m in client.get_metric_history(r.info.run_id, "eval/gen/fd"))
        if r in stopped:  # Train's workers run on while Tune decides, so a stop may land a point late
            assert steps == [25, 50, 75, 100][:len(steps)]
            cut += steps[-1] < 100
        else:
            assert steps == [25, 50, 75, 100]
    assert cut == len(stopped), "a trial that reached its last eval point is tagged as stopped early"
    assert len({r.data.params["train.lr"] for r in runs}) == 3  # Optuna sampled three learning rates


class _Payload:
    """Any object a pickle would rebuild by calling code: a checkpoint from shared storage must not hold one."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_a_checkpoint_state_is_loaded_as_data_only(tmp_path):
    import pickle

    import torch

    from sweeps import trial

    state = {"step": 3, "model": {"w": torch.ones(2)}, "torch_rng": torch.get_rng_state(), "config_hash": "abc"}
    torch.save(state, tmp_path / trial.STATE_FILE)
    assert trial._load_state(tmp_path)["step"] == 3  # tensors, dicts, numbers and strings load
    torch.save({**state, "evil": _Payload()}, tmp_path / trial.STATE_FILE)
    with pytest.raises(pickle.UnpicklingError):
        trial._load_state(tmp_path)
