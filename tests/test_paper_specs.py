"""Every paper spec runs end to end at its smoke size on a real local Ray with a real SQLite MLflow store."""

from pathlib import Path

import pytest
from mlflow import MlflowClient

from sweeps import tracking as T
from sweeps.driver import run_sweep
from sweeps.spec import load_spec
from sweeps.suite import is_suite

pytestmark = [pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"), pytest.mark.timeout(300)]

# the specs; suite.yaml runs them together (tests/test_suite.py)
PAPER = sorted(p for p in (Path(__file__).parent.parent / "sweeps" / "paper").glob("*.yaml") if not is_suite(p))


def test_there_is_a_paper_spec_per_finding_and_one_trains_with_ray_train():
    names = {p.stem for p in PAPER}
    assert {"mutual_benefit", "data_scaling", "alignment", "affine_distortion", "mix_ratio", "mix_ratio_search",
            "concept_transfer", "adapters_vs_llm", "model_scale"} <= names
    assert any(load_spec(p).resources.workers_per_trial == 2 for p in PAPER)
    assert all(load_spec(p).smoke_seeds == [0] or load_spec(p).search for p in PAPER)


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
@pytest.mark.slow
def test_a_paper_spec_runs_at_smoke_size(path, tmp_path, cache_dir, ray_local):
    import dataclasses

    spec = load_spec(path)
    spec = dataclasses.replace(spec, tracking=dataclasses.replace(spec.tracking, uri=f"sqlite:///{tmp_path}/m.db"))
    result = run_sweep(spec, path.read_text(), smoke=True, cache_dir=cache_dir, storage=str(tmp_path / "ray"),
                       progress=lambda *a: None)
    assert result.failed == [] and result.finished == result.trials >= 1

    client = MlflowClient(spec.tracking.uri)
    runs = T.search_trials(client, client.get_experiment_by_name(spec.tracking.experiment).experiment_id, spec.name)
    assert len(runs) == result.trials and {r.info.status for r in runs} == {"FINISHED"}
    for r in runs:
        assert r.data.metrics.get("eval/und/total", r.data.metrics.get("eval/gen/attr_acc")) is not None
