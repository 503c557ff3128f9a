"""Sweep specs: every mistake is a SpecError naming its YAML path; cells, seeds, zip groups and resources."""

from pathlib import Path

import pytest
import yaml

from sweeps import resources as R
from sweeps import spec as S
from sweeps import suite
from unified import config as C

SWEEPS = Path(__file__).resolve().parent.parent / "sweeps"
GOOD = {"name": "t", "base": "smartwatch-cpu", "seeds": [0, 1],
        "grid": {"model.variant": ["siglip-siglip", "vq-vq"], "data.tasks": ["mixed", "understanding"]}}


def parse(**changes) -> S.SweepSpec:
    raw = {**GOOD, **changes}
    return S.parse_spec(yaml.safe_dump({k: v for k, v in raw.items() if v is not None}, sort_keys=False))


SEARCH = {"space": {"data.gen_ratio": {"uniform": [0.0, 2.0]}}, "metric": "eval/und/total", "mode": "max",
          "num_samples": 4}

# (changes to GOOD, the YAML path the error must name, another substring it must hold)
BAD = [
    ({"nme": "x"}, "nme", "did you mean name"),
    ({"name": None}, "name", "required"),
    ({"name": "a b"}, "name", "letters"),
    ({"base": "smartwatch-cpuu"}, "base", "did you mean smartwatch-cpu"),
    ({"seeds": []}, "seeds", "at least one"),
    ({"seeds": [0, "1"]}, "seeds[1]", "expected int"),
    ({"seeds": 3}, "seeds", "expected a list"),
    ({"grid": {"model.varient": ["vq-vq"]}}, "grid.model.varient", "did you mean model.variant"),
    ({"grid": {"model.variant": []}}, "grid.model.variant", "empty grid axis"),
    ({"grid": {"model.variant": "vq-vq"}}, "grid.model.variant", "expected a list"),
    ({"grid": {"model.variant": ["vq-vq", "vqvq"]}}, "grid.model.variant[1]", "must be one of"),
    ({"grid": {"train.eval_points": [2, "few"]}}, "grid.train.eval_points[1]", "expects int"),
    ({"grid": {"zip": [{"model.variant": ["vq-vq", "siglip-vq"], "model.alpha": [0.2]}]}}, "grid.zip[0]",
     "equal lengths"),
    ({"grid": {"zip": [{"model.variant": ["vq-vq"], "model.alfa": [0.2]}]}}, "grid.zip[0].model.alfa",
     "did you mean model.alpha"),
    ({"grid": {"model.variant": ["vq-vq"], "zip": [{"model.variant": ["vq-vq"]}]}}, "grid.zip[0].model.variant",
     "already a grid axis"),
    ({"grid": {"zip": [{}]}}, "grid.zip[0]", "empty zip group"),
    # a cell that fails only as a combination: shared adapters need an aligned variant
    ({"grid": {"model.variant": ["siglip-siglip", "siglip-vq"], "model.shared_adapter": [True]}},
     "grid (cell model.variant=siglip-vq, model.shared_adapter=True)", "aligned variant"),
    ({"overrides": {"train.lr": "fast"}}, "overrides.train.lr", "expects float"),
    ({"overrides": {"model.variant": "vq-vq"}}, "overrides.model.variant", "also a grid axis"),
    ({"overrides": {"train": {"lr": 0.1}}}, "overrides.train", "one value"),
    ({"smoke": {"train.stepz": 4}}, "smoke.train.stepz", "did you mean train.steps"),
    ({"smoke": {"seeds": []}}, "smoke.seeds", "at least one"),
    ({"smoke": {"grid": {"model.varient": ["vq-vq"]}}}, "smoke.grid.model.varient", "did you mean model.variant"),
    ({"smoke": {"grid": {"model.variant": ["vq-siglip"]}}}, "smoke.grid.model.variant", "subset"),
    ({"smoke": {"num_samples": 2}}, "smoke.num_samples", "search"),
    ({"resources": {"max_failures": -1}}, "resources.max_failures", ">= 0"),
    ({"resources": {"workers_per_trial": 0}}, "resources.workers_per_trial", ">= 1"),
    ({"resources": {"cpu_per_worker": 1}}, "resources.cpu_per_worker", "did you mean cpus_per_worker"),
    ({"resources": {"execution": "trian"}}, "resources.execution", "did you mean train"),
    ({"resources": {"gpus_per_worker": True}}, "resources.gpus_per_worker", "expected int or float"),
    ({"tracking": {"uri": "file:./mlruns"}}, "tracking.uri", "file store"),
    ({"tracking": {"experiment": 3}}, "tracking.experiment", "expected str"),
    ({"search": {**SEARCH, "metrc": "x"}}, "search.metrc", "did you mean metric"),
    ({"search": {**SEARCH, "space": {"data.gen_rato": {"uniform": [0, 1]}}}}, "search.space.data.gen_rato",
     "did you mean data.gen_ratio"),
    ({"search": {**SEARCH, "space": {"data.gen_ratio": {"unifrom": [0, 1]}}}}, "search.space.data.gen_ratio",
     "did you mean uniform"),
    ({"search": {**SEARCH, "space": {"data.gen_ratio": {"uniform": [2, 1]}}}}, "search.space.data.gen_ratio.uniform",
     "lo < hi"),
    ({"search": {**SEARCH, "space": {"train.lr": {"loguniform": [0, 1]}}}}, "search.space.train.lr.loguniform",
     "lo > 0"),
    ({"search": {**SEARCH, "space": {"train.eval_points": {"int": [1, 2.5]}}}},
     "search.space.train.eval_points.int[1]", "expected int"),
    ({"search": {**SEARCH, "space": {"model.variant": {"choice": ["vq-vq"]}}}}, "search.space.model.variant",
     "also a grid axis"),
    ({"search": {**SEARCH, "space": {"data.tasks": {"choice": ["mixd"]}}}, "grid": {}}, "search.space.data.tasks",
     "must be one of"),
    ({"search": {**SEARCH, "metric": ["a", "b"], "mode": ["max"]}}, "search.mode", "one mode per metric"),
    ({"search": {**SEARCH, "mode": "maximize"}}, "search.mode", "not max or min"),
    ({"search": {**SEARCH, "metric": ["a", "b"], "mode": ["max", "min"], "asha": {}}}, "search.asha",
     "one metric"),
    ({"search": {**SEARCH, "num_samples": 0}}, "search.num_samples", ">= 1"),
    ({"seed_scope": "dataset"}, "seed_scope", "not one of trial, data"),
    ({"search": {**SEARCH, "metric": "eval/und/nosuch"}}, "search.metric", "is not a metric trials report"),
    ({"search": {**SEARCH, "metric": ["eval/und/total", "eval/gen/atr_acc"], "mode": ["max", "max"]}},
     "search.metric[1]", "did you mean eval/gen/attr_acc"),
    ({"seed_scope": "data", "overrides": {"data.seed": 3}}, "seed_scope", "data.seed follows the seed"),
    ({"seed_scope": "data", "search": SEARCH}, "seed_scope", "a search runs one seed"),
    ({"search": {k: v for k, v in SEARCH.items() if k != "num_samples"}}, "search.num_samples", "required"),
]


@pytest.mark.parametrize("changes, path, detail", BAD, ids=[b[1] for b in BAD])
def test_bad_spec_names_its_yaml_path(changes, path, detail):
    with pytest.raises(S.SpecError) as e:
        parse(**changes)
    assert e.value.path == path and str(e.value).startswith(f"{path}: ")
    assert detail in str(e.value)


def test_spec_errors_are_config_errors_and_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nbase: smartwatch-cpu\ngrid: {model.varient: [vq-vq]}\n")
    with pytest.raises(C.ConfigError, match=r"bad.yaml: grid.model.varient: .*did you mean model.variant"):
        S.load_spec(bad)


def test_a_key_given_twice_is_an_error():
    with pytest.raises(S.SpecError, match="appears twice"):
        S.parse_spec("name: t\nbase: smartwatch-cpu\nseeds: [0]\nseeds: [1]\n")


def test_grid_times_seeds_and_names():
    spec = parse()
    trials = S.expand(spec)
    assert len(trials) == 2 * 2 * 2
    assert {(t.config.model.variant, t.config.data.tasks, t.seed) for t in trials} == {
        (v, k, s) for v in ("siglip-siglip", "vq-vq") for k in ("mixed", "understanding") for s in (0, 1)}
    for t in trials:
        assert t.name == f"t/{t.cell}/s{t.seed}" and t.config.seed == t.seed
        assert t.cell == C.cell_hash(t.config) and t.config.model.alpha is not None  # resolved
    assert len({t.cell for t in trials}) == 4  # the seed is not part of the cell


def test_seed_scope_data_gives_each_seed_its_own_stage0_build_within_one_cell():
    shared, own = S.expand(parse()), S.expand(parse(seed_scope="data"))
    assert {t.config.data.seed for t in shared} == {0}  # one build for every seed
    assert all(t.config.data.seed == t.seed for t in own)  # one build per seed ...
    assert len({t.cell for t in own}) == len({t.cell for t in shared}) == 4  # ... and seeds still share a cell
    assert not {t.cell for t in own} & {t.cell for t in shared}  # never the same trial as a shared-build one


def test_zip_groups_move_together():
    spec = parse(grid={"data.tasks": ["mixed", "generation", "understanding"],
                       "zip": [{"model.variant": ["siglip-siglip", "vq-vq"], "model.alpha": [1.0, 0.5]}]},
                 seeds=[0])
    trials = S.expand(spec)
    assert len(trials) == 3 * 2
    assert {(t.config.model.variant, t.config.model.alpha) for t in trials} == {("siglip-siglip", 1.0), ("vq-vq", 0.5)}
    assert trials[0].overrides == {"data.tasks": "mixed", "model.variant": "siglip-siglip", "model.alpha": 1.0}


def test_identical_configs_dedupe_to_one_trial():
    # alpha=None resolves to model.alpha_vq (1.0 at the cpu preset) for VQ targets: both are the same config
    spec = parse(grid={"model.variant": ["vq-vq"], "model.alpha": [None, 1.0, 0.5]}, seeds=[0, 1])
    assert len(S.expand(spec)) == 2 * 2


def test_cell_is_stable_under_key_order():
    a = parse(overrides={"train.lr": 0.002, "data.und_samples": 1000})
    b = parse(overrides={"data.und_samples": 1000, "train.lr": 0.002},
              grid={"data.tasks": ["mixed", "understanding"], "model.variant": ["siglip-siglip", "vq-vq"]})
    assert {t.name for t in S.expand(a)} == {t.name for t in S.expand(b)}
    assert {t.name for t in S.expand(a)}.isdisjoint({t.name for t in S.expand(parse())})


def test_smoke_changes_cells_and_uses_smoke_seeds():
    spec = parse(smoke={"seeds": [7], "train.eval_items": 4})
    real, smoke = S.expand(spec), S.expand(spec, smoke=True)
    assert len(smoke) == 4 and {t.seed for t in smoke} == {7}
    assert {t.cell for t in real}.isdisjoint(t.cell for t in smoke)
    assert all(t.config.train.eval_items == 4 and t.config.data.resolution == 32 for t in smoke)


def test_smoke_grid_keeps_a_subset_of_cells_and_num_samples_shrinks_a_search():
    spec = parse(smoke={"grid": {"model.variant": ["vq-vq"]}})
    assert len(S.expand(spec)) == 8 and len(S.expand(spec, smoke=True)) == 4
    assert {t.config.model.variant for t in S.expand(spec, smoke=True)} == {"vq-vq"}
    searched = parse(search=SEARCH, grid={}, smoke={"num_samples": 2})
    assert (searched.num_samples(False), searched.num_samples(True)) == (4, 2)


def test_search_parses_and_expands_to_one_study_per_cell():
    spec = parse(search={**SEARCH, "metric": ["eval/und/total", "eval/gen/attr_acc"], "mode": ["max", "max"],
                         "space": {"train.lr": {"loguniform": [1e-4, 1e-2]}, "data.gen_ratio": {"choice": [0.5, 1]}}})
    assert spec.search.metric == ["eval/und/total", "eval/gen/attr_acc"] and spec.search.asha is None
    assert spec.search.space["train.lr"] == S.Distribution("loguniform", [1e-4, 1e-2])
    trials = S.expand(spec)
    assert len(trials) == 4 and {t.seed for t in trials} == {0}
    sampled = S.build_trial(spec, {**trials[0].overrides, "train.lr": 5e-3}, seed=0)
    assert sampled.config.train.lr == 5e-3 and sampled.cell != trials[0].cell
    single = parse(search={**SEARCH, "asha": {"grace_period": 2}})
    assert single.search.metric == ["eval/und/total"] and single.search.asha == S.Asha(2, 2)


def test_paths_are_made_absolute_and_the_environment_wins_over_the_spec(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    spec = parse(tracking={"uri": "sqlite:///runs/m.db", "experiment": "mine"}, storage="results")
    assert spec.tracking.uri == f"sqlite:///{tmp_path}/runs/m.db" and spec.storage == str(tmp_path / "results")
    assert spec.tracking.experiment == "mine"
    default = parse()
    assert default.tracking.uri == f"sqlite:///{tmp_path}/mlflow.db" and default.tracking.experiment == "unisweep"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "from-env")
    assert parse().tracking.uri == "http://127.0.0.1:5000"
    spec = parse(tracking={"uri": "sqlite:///runs/m.db", "experiment": "mine"})  # the environment wins
    assert (spec.tracking.uri, spec.tracking.experiment) == ("http://127.0.0.1:5000", "from-env")
    with pytest.raises(S.SpecError, match="tracking.uri.*file store"):  # checked even where the environment wins
        parse(tracking={"uri": "file:./mlruns"})


def resources(**r) -> S.SweepSpec:
    return parse(resources=r)


def test_concurrency_follows_the_platform_rule():
    # docs/PLATFORM.md §4: 2 * (0.1 + 2 * 0.45) = 2.0 fits on 2 CPUs
    assert R.max_concurrent(resources(workers_per_trial=2, cpus_per_worker=0.45), 2) == 2
    assert R.max_concurrent(resources(workers_per_trial=2, cpus_per_worker=0.5), 2) == 1  # 1.1 each
    assert R.max_concurrent(resources(cpus_per_worker=1), 2) == 2  # in-process: no driver share
    assert R.trial_resources(resources(cpus_per_worker=1, execution="train")) == {"CPU": 1.1, "GPU": 0.0}
    assert R.max_concurrent(resources(cpus_per_worker=1, execution="train"), 2) == 1
    assert R.max_concurrent(resources(cpus_per_worker=1, gpus_per_worker=1), 16, 4) == 4
    with pytest.raises(S.SpecError, match="resources: a trial needs 3.1 CPU"):
        R.max_concurrent(resources(workers_per_trial=2, cpus_per_worker=1.5), 2)
    with pytest.raises(S.SpecError, match="1 GPU"):
        R.max_concurrent(resources(gpus_per_worker=1), 8, 0)


def test_a_trial_bigger_than_every_node_is_an_error():
    big = resources(cpus_per_worker=3)
    with pytest.raises(S.SpecError, match=r"resources: .*largest with 2 CPU"):
        R.check_fits(big, {"CPU": 2, "GPU": 0})
    with pytest.raises(S.SpecError, match="resources"):
        R.check_fits(big, [{"CPU": 2}, {"CPU": 2}])  # more in total, but no node holds the one worker
    R.check_fits(big, [{"CPU": 1}, {"CPU": 4}])
    two = resources(workers_per_trial=2, cpus_per_worker=0.9)
    R.check_fits(two, [{"CPU": 1}, {"CPU": 1}])  # Train's soft PACK lets one trial's workers span nodes
    with pytest.raises(S.SpecError):
        R.check_fits(two, [{"CPU": 1}])
    with pytest.raises(S.SpecError, match="GPU"):
        R.check_fits(resources(gpus_per_worker=1), {"CPU": 8, "GPU": 0})


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("**/*.yaml")), ids=lambda p: str(p.relative_to(SWEEPS)))
def test_every_sweep_file_validates_and_expands(path):
    spec, _ = suite.load(path)  # a spec, or a suite (sweeps/paper/suite.yaml) compiled into one
    assert S.expand(spec) and S.expand(spec, smoke=True)
    gpus = spec.resources.gpus_per_worker > 0  # a paper-scale spec: a GPU node of 8 GPUs and 64 CPUs
    assert R.max_concurrent(spec, *((64, 8) if gpus else (2, 0))) >= 1


def test_extends_takes_every_section_the_file_does_not_set(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "base.yaml").write_text(yaml.safe_dump({**GOOD, "overrides": {"train.lr": 0.002},
                                                                "smoke": {"seeds": [0]}}))
    child = tmp_path / "big.yaml"
    child.write_text("extends: cpu/base.yaml\nname: t-big\ngrid: {model.variant: [vq-vq, vq-siglip]}\n")
    spec, parent = S.load_spec(child), S.load_spec(tmp_path / "cpu" / "base.yaml")
    assert spec.name == "t-big" and spec.axes == {"model.variant": ["vq-vq", "vq-siglip"]}  # a section, whole
    assert spec.seeds == parent.seeds and spec.overrides == {"train.lr": 0.002} and spec.smoke_seeds == [0]
    text = S.spec_text(child)  # what the driver stores: it parses alone, no file needed
    assert "extends" not in yaml.safe_load(text) and S.parse_spec(text).axes == spec.axes


@pytest.mark.parametrize("body, detail", [
    ("extends: nowhere.yaml\n", "no such sweep spec file"),
    ("extends: [a.yaml]\n", "expected the path of another spec file"),
    ("extends: loop.yaml\nname: loop\n", "a cycle"),
    ("extends: other.yaml\nnme: x\n", "did you mean name"),
    ("extends: /etc/passwd\n", "is not a sweep spec"),  # a file that parses as YAML but is no mapping
])
def test_a_bad_extends_is_a_spec_error_naming_the_file(tmp_path, body, detail):
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "loop.yaml").write_text(body)
    with pytest.raises(S.SpecError, match=detail) as e:
        S.load_spec(tmp_path / "loop.yaml")
    assert str(tmp_path / "loop.yaml") in str(e.value)


@pytest.mark.parametrize("path", sorted((SWEEPS / "paper" / "full").glob("*.yaml")), ids=lambda p: p.stem)
def test_each_paper_spec_has_a_paper_scale_version_with_at_least_its_cells(path):
    full, cpu = S.load_spec(path), S.load_spec(SWEEPS / "paper" / path.name)
    assert full.base == "smartwatch-paper" and full.name == f"{cpu.name}-paper"
    assert full.resources.gpus_per_worker >= 1 and full.seeds == cpu.seeds
    paper_values = {k: set(v) for k, v in {**full.axes, **{k: v for g in full.zips for k, v in g.items()}}.items()}
    for key, values in {**cpu.axes, **{k: v for g in cpu.zips for k, v in g.items()}}.items():
        assert set(values) <= paper_values[key], key  # the cpu-scale arms are a subset of the paper's
