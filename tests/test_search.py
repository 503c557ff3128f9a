"""Optuna search through Ray Tune on a real local Ray: one study per grid cell, single- and multi-objective."""

import optuna
import pytest
from mlflow import MlflowClient

from sweeps import tracking as T
from sweeps.driver import run_sweep
from sweeps.spec import parse_spec

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
              pytest.mark.timeout(400)]

SEARCH = """name: {name}
base: smartwatch-cpu
seeds: [7, 8]
grid:
  model.variant: {variants}
search:
  space:
    data.gen_ratio: {{uniform: [0.25, 2.0]}}
    train.lr: {{loguniform: [0.0003, 0.003]}}
  metric: {metric}
  mode: {mode}
  num_samples: 2
  seed: 0
tracking: {{uri: "sqlite:///{db}", experiment: tests}}
storage: {storage}
"""


def _spec(tmp_path, **fields):
    text = SEARCH.format(db=tmp_path / "mlflow.db", storage=tmp_path / "ray", **fields)
    return parse_spec(text), text


def test_a_search_runs_one_study_per_grid_cell_and_a_rerun_samples_nothing(tmp_path, cache_dir, ray_local):
    spec, text = _spec(tmp_path, name="opt", variants="[siglip-siglip, vq-vq]", metric="eval/gen/fd", mode="min")
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.trials, result.finished, result.failed) == (4, 4, [])  # 2 studies x 2 samples

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    runs = T.search_trials(client, experiment, "opt")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    by_study = {}
    for r in runs:
        by_study.setdefault(r.data.tags[T.STUDY], []).append(r)
        assert r.data.tags["unisweep.seed"] == "7"  # a search uses the first seed (docs/DESIGN.md §8)
        assert 0.25 <= float(r.data.params["data.gen_ratio"]) <= 2.0
        assert 0.0003 <= float(r.data.params["train.lr"]) <= 0.003
        assert r.data.metrics["data.gen_ratio"] == pytest.approx(float(r.data.params["data.gen_ratio"]))
        axes = {k.removeprefix(T.AXIS): v for k, v in r.data.tags.items() if k.startswith(T.AXIS)}
        assert axes == {k: r.data.params[k] for k in ("model.variant", "data.gen_ratio", "train.lr")}  # no seed
    assert sorted(len(v) for v in by_study.values()) == [2, 2]
    assert {r.data.tags["unisweep.variant"] for r in by_study[next(iter(by_study))]} in ({"siglip-siglip"},
                                                                                          {"vq-vq"})
    studies = optuna.get_all_study_names(f"sqlite:///{tmp_path / 'ray' / 'optuna.db'}")
    assert len(studies) == 2  # one persisted study per grid cell

    again = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (again.skipped, again.finished) == (4, 0)
    assert len(T.search_trials(client, experiment, "opt")) == 4


def test_a_multi_objective_search_gives_optuna_both_metrics(tmp_path, cache_dir, ray_local):
    spec, text = _spec(tmp_path, name="pareto", variants="[vq-vq]", metric="[eval/und/total, eval/gen/attr_acc]",
                       mode="[max, max]")
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.trials, result.finished, result.failed) == (2, 2, [])

    (name,) = optuna.get_all_study_names(f"sqlite:///{tmp_path / 'ray' / 'optuna.db'}")
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'ray' / 'optuna.db'}")
    assert len(study.directions) == 2
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2 and all(len(t.values) == 2 for t in done)
    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    logged = sorted((r.data.metrics["eval/und/total"], r.data.metrics["eval/gen/attr_acc"])
                    for r in T.search_trials(client, experiment, "pareto"))
    assert logged == sorted(tuple(t.values) for t in done)  # Optuna saw what MLflow holds
