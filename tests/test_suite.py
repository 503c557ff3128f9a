"""Suites: several specs compiled into one sweep; a cell two members share is one trial, tagged with both."""

import pytest
import yaml
from mlflow import MlflowClient

from sweeps import spec as S
from sweeps import suite
from sweeps import tracking as T

A = """name: a
base: smartwatch-cpu
seeds: [0, 1]
overrides: {model.variant: vq-vq}
grid:
  data.tasks: [mixed, understanding]
"""
B = """name: b
base: smartwatch-cpu
seeds: [0]
grid:
  zip:
    - model.variant: [vq-vq, vq-siglip]
      data.tasks: [understanding, mixed]
"""
SUITE = """suite: both
description: two specs, one shared cell
specs: [a.yaml, b.yaml]
seeds: {start: 100, first: 2, step: 2, max: 6}
"""


def write(folder, suite_text=SUITE, a=A, b=B):
    (folder / "a.yaml").write_text(a)
    (folder / "b.yaml").write_text(b)
    (folder / "suite.yaml").write_text(suite_text)
    return folder


def test_a_folder_runs_as_its_suite_and_a_shared_cell_is_one_trial_of_both_members(tmp_path):
    spec, text = suite.load(write(tmp_path))
    assert spec.name == "both" and spec.sequential.max == 6 and spec.seeds == [100, 101]
    assert suite.load(tmp_path / "suite.yaml")[1] == text  # the folder and its file compile alike
    trials = S.expand(spec)
    # a: vq-vq mixed + understanding; b: vq-vq understanding (= a's) + vq-siglip mixed -> 3 cells, 2 seeds
    assert len({t.cell for t in trials}) == 3 and len(trials) == 6
    by_members = {}
    for t in trials:
        by_members.setdefault(t.members, set()).add((t.config.model.variant, t.config.data.tasks))
    assert by_members == {("a",): {("vq-vq", "mixed")}, ("a", "b"): {("vq-vq", "understanding")},
                          ("b",): {("vq-siglip", "mixed")}}
    assert all(t.name.startswith("both/") for t in trials)
    # the compiled text stands alone: the parent run keeps it, and `resume` parses it without the files
    again = S.parse_spec(text)
    assert [(t.cell, t.seed, t.members) for t in S.expand(again)] == [(t.cell, t.seed, t.members) for t in trials]
    assert "a.yaml" not in yaml.safe_load(text).get("specs", [])


def test_a_suite_trial_run_is_tagged_with_its_members(tmp_path):
    spec, _ = suite.load(write(tmp_path))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = T.ensure_store(uri, "tests")
    client = MlflowClient(uri)
    shared = next(t for t in S.expand(spec) if len(t.members) == 2)
    parent = client.create_run(experiment).info.run_id
    run_id = T.trial_run(client, experiment, parent, shared)
    assert client.get_run(run_id).data.tags[T.MEMBERS] == "a,b"


@pytest.mark.parametrize("change, where, says", [
    (lambda a, b, s: (a, b, s + "colour: red\n"), "colour", "unknown key"),
    (lambda a, b, s: (a, b, s.replace("specs: [a.yaml, b.yaml]\n", "")), "specs", "required"),
    (lambda a, b, s: (a, b.replace("base: smartwatch-cpu", "base: faces-cpu"), s), "specs[1]", "base differs"),
    (lambda a, b, s: (a, b + "resources: {cpus_per_worker: 0.5}\n", s), "specs[1]", "resources differs"),
    (lambda a, b, s: (a, b.replace("zip:", "zipp:"), s), "b.yaml", "zipp"),
    (lambda a, b, s: (a, b + "search: {space: {train.lr: {loguniform: [0.001, 0.01]}}, metric: eval/und/total, "
                             "mode: max, num_samples: 2}\n", s), "specs[1]", "is a search"),
])
def test_a_bad_suite_is_named_before_anything_runs(tmp_path, change, where, says):
    a, b, s = change(A, B, SUITE)
    write(tmp_path, s, a, b)
    with pytest.raises(S.SpecError) as e:
        suite.load(tmp_path)
    assert where in str(e.value) and says in str(e.value)


def test_a_folder_without_a_suite_file_says_what_it_needs(tmp_path):
    with pytest.raises(S.SpecError, match="needs a suite.yaml"):
        suite.load(tmp_path)
    (tmp_path / "suite.yaml").write_text("- just\n- a list\n")
    with pytest.raises(S.SpecError, match="a YAML mapping"):
        suite.load(tmp_path)
    (tmp_path / "suite.yaml").write_text("suite: [unclosed\n")
    with pytest.raises(S.SpecError, match="not a readable YAML suite"):
        suite.load(tmp_path)


def test_the_paper_suite_plans_every_verdict_spec_once():
    spec, _ = suite.load("sweeps/paper")
    trials = S.expand(spec)
    members = set(spec.members)
    assert {"mutual_benefit", "alignment", "affine_distortion", "concept_transfer"} <= members
    assert "model_scale" not in members and "mix_ratio_search" not in members
    assert len({(t.cell, t.seed) for t in trials}) == len(trials)
    assert {t.seed for t in trials} == set(range(1000, 1005))
    assert any(len(t.members) > 1 for t in trials)  # shared cells (the understanding-only controls, say)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_smoke_suite_runs_its_rounds_once_into_one_store_and_reports_each_member(tmp_path, cache_dir, ray_local):
    """One sweep for both machineries: a suite (a shared cell trains once) with seeds until decided. The analysis
    that decides is replaced by a plain function, so the test states which cell stays undecided."""
    from analysis.report import write_report
    from sweeps.driver import run_sweep

    db = tmp_path / "mlflow.db"
    where = f'tracking: {{uri: "sqlite:///{db}", experiment: tests}}\nstorage: {tmp_path / "ray"}\n'
    rounds = SUITE.replace("{start: 100, first: 2, step: 2, max: 6}", "{start: 0, first: 2, step: 1, max: 3}")
    spec, text = suite.load(write(tmp_path, rounds + where))
    shared = next(t.cell for t in S.expand(spec, smoke=True) if len(t.members) == 2)
    looks = []

    def undecided(look):  # the shared cell stays undecided at every look
        looks.append(look)
        return {shared}

    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None, undecided=undecided)
    assert (result.trials, result.finished, result.skipped, result.failed) == (7, 7, 0, [])  # 3 cells x 2, + 1
    assert len(looks) == 2 and (looks[0].first, looks[0].step, looks[0].max) == (2, 1, 3)
    assert set(looks[0].members) == {"a", "b"} and shared in looks[0].members["a"] & looks[0].members["b"]

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    runs = T.search_trials(client, experiment, "both")
    held = sorted((r.data.tags[T.MEMBERS], int(r.data.tags[T.SEED])) for r in runs)
    assert held == [("a", 0), ("a", 1), ("a,b", 0), ("a,b", 1), ("a,b", 2), ("b", 0), ("b", 1)]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert T.sweep_run(client, experiment, "both", smoke=True).info.status == "FINISHED"

    again = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None, undecided=undecided)
    assert (again.trials, again.skipped, again.finished) == (7, 7, 0)  # the rounds recomputed, nothing rerun
    assert len(T.search_trials(client, experiment, "both")) == 7

    verdicts = write_report(spec.tracking.uri, ["both"], tmp_path / "report", "tests")
    assert {k.split("/")[0] for k in verdicts} == {"a", "b"}  # each member analysed on its own cells
    # b's vq-siglip mixed arm borrows the vq-vq understanding-only control (same input space); no generation-only arm
    assert {"a/1-und", "b/1-und"} <= set(verdicts) and not any(k.endswith("1-gen") for k in verdicts)
    assert (verdicts["a/1-und"].comparisons["stop"] != "").all()  # analysed under the suite's schedule
    assert (tmp_path / "report" / "report.md").read_text().count("Finding a/1-und") == 1
