"""Seeds until decided, the driver's side: rounds on a real local Ray and a real SQLite store.

The analysis that decides (analysis/undecided.py) is composed in by the CLI; here the driver gets a plain
function in its place, so the test states exactly which cells stay undecided and checks what the driver does
with that: only those cells get the next look's seeds, and a resume recomputes the rounds without rerunning."""

import pytest
from mlflow import MlflowClient

from sweeps import spec as S
from sweeps import tracking as T
from sweeps.driver import run_sweep
from sweeps.sequential import Sequential, next_round

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400),
              pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")]

SPEC = """name: rounds
base: smartwatch-cpu
seeds: {{start: 10, first: 2, step: 1, max: 3}}
grid:
  data.tasks: [mixed, understanding]
tracking: {{uri: "sqlite:///{db}", experiment: tests}}
storage: {storage}
"""


def test_the_schedule_looks_at_first_each_step_and_max():
    plan = Sequential(start=1000, first=5, step=5, max=27)
    assert plan.looks == (5, 10, 15, 20, 25, 27)
    assert plan.seeds(3) == [1000, 1001, 1002]
    assert plan.next_count(5) == 10 and plan.next_count(25) == 27 and plan.next_count(27) is None


def test_a_round_adds_the_next_looks_seeds_only_to_undecided_cells():
    spec = S.parse_spec(SPEC.format(db="/tmp/x.db", storage="/tmp/x"))
    trials = S.expand(spec)
    assert sorted({t.seed for t in trials}) == [10, 11] and len({t.cell for t in trials}) == 2
    mixed = next(t.cell for t in trials if t.config.data.tasks == "mixed")
    added = next_round(spec.sequential, trials, {mixed}, lambda t, s: S.reseeded(spec.name, t, s))
    assert [(t.cell, t.seed) for t in added] == [(mixed, 12)]
    assert added[0].config.seed == 12 and added[0].name == f"rounds/{mixed}/s12"
    assert next_round(spec.sequential, trials + added, {mixed}, lambda t, s: S.reseeded(spec.name, t, s)) == []


@pytest.mark.parametrize("bad, where", [
    ("{start: 0, first: 1, step: 1, max: 3}", "seeds.first"),
    ("{start: 0, first: 3, step: 0, max: 3}", "seeds.step"),
    ("{start: 0, first: 4, step: 1, max: 3}", "seeds.max"),
    ("{start: 0, first: 2, step: 1, max: 3, precison: 0.1}", "seeds.precison"),
    ("{first: 2, step: 1, max: 3}", "seeds.start"),
])
def test_a_bad_schedule_is_named_before_anything_runs(bad, where):
    text = SPEC.format(db="/tmp/x.db", storage="/tmp/x").replace("{start: 10, first: 2, step: 1, max: 3}", bad)
    with pytest.raises(S.SpecError) as e:
        S.parse_spec(text)
    assert e.value.path == where


def test_rounds_run_only_undecided_cells_and_resume_reruns_nothing(tmp_path, cache_dir, ray_local):
    text = SPEC.format(db=tmp_path / "mlflow.db", storage=tmp_path / "ray")
    spec = S.parse_spec(text)
    mixed = next(t.cell for t in S.expand(spec, smoke=True) if t.config.data.tasks == "mixed")
    looks = []

    def undecided(look):  # the mixed cell stays undecided at every look
        looks.append((look.sweep, look.first, look.step, look.max, sorted(look.members[look.sweep])))
        return {mixed}

    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None, undecided=undecided)
    assert (result.trials, result.finished, result.skipped, result.failed) == (5, 5, 0, [])
    assert len(looks) == 2 and looks[0][:4] == ("rounds", 2, 1, 3) and mixed in looks[0][4]

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    runs = T.search_trials(client, experiment, "rounds")
    held = sorted((r.data.tags[T.CELL] == mixed, int(r.data.tags[T.SEED])) for r in runs)
    assert held == [(False, 10), (False, 11), (True, 10), (True, 11), (True, 12)]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert T.sweep_run(client, experiment, "rounds", smoke=True).info.status == "FINISHED"

    again = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None, undecided=undecided)
    assert (again.trials, again.skipped, again.finished) == (5, 5, 0)
    assert len(T.search_trials(client, experiment, "rounds")) == 5
