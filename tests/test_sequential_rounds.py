"""Seeds until decided, the driver's side: the schedule, the next round's trials, a bad schedule named at load.

The rounds on a real local Ray and SQLite store run in tests/test_suite.py (one sweep for suites and rounds)."""

import pytest

from sweeps import spec as S
from sweeps.sequential import Sequential, next_round

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
