"""The report's searches: each sweep's Optuna study, persisted as the driver persists it, loaded with
`optuna.load_study` and drawn (history, Pareto front, importance, parallel coordinates); from its runs when out of
reach."""

import optuna
import pandas as pd
import pytest
from analysis_stores import fill_search, without_fsync
from mlflow import MlflowClient

from analysis import query, report, studies
from sweeps import tracking

KINDS = ("history", "pareto", "importance", "parallel")


@pytest.fixture(scope="module")
def search_store(tmp_path_factory):
    """A SQLite store with a two-objective and a one-objective search (12 samples each, as
    sweeps/paper/mix_ratio_search.yaml), their studies in <root>/ray."""
    root = tmp_path_factory.mktemp("search")
    uri = f"sqlite:///{root}/mlflow.db"
    experiment_id = tracking.ensure_store(uri, "unisweep")
    client = MlflowClient(uri)
    without_fsync(client)
    parents = {"searched": fill_search(client, experiment_id, "searched", root / "ray"),
               "single": fill_search(client, experiment_id, "single", root / "ray", objectives=1)}
    return uri, root, parents


def _study(root, sweep):
    storage = f"sqlite:///{root / 'ray' / 'optuna.db'}"
    (name,) = [n for n in optuna.get_all_study_names(storage) if n.startswith(f"{sweep}-")]
    return optuna.load_study(study_name=name, storage=storage)


def _studies(uri, sweep, storage=None):
    data = query.load(uri, [sweep])
    (text,) = query.spec_texts(uri, data.parents).values()
    return studies.for_sweep(sweep, text, data.trials, storage)


def test_the_report_draws_the_persisted_study(search_store, tmp_path):
    uri, root, parents = search_store
    study = _study(root, "searched")
    out = tmp_path / "out"
    report.write_report(uri, ["searched"], out)
    text = (out / "report.md").read_text()
    assert f"### Study {study.study_name}" in text
    assert f"read from the study in `sqlite:///{root / 'ray' / 'optuna.db'}`" in text
    for kind in KINDS:
        png = out / "figures" / f"search_{study.study_name}_{kind}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", kind
        assert f"(figures/{png.name})" in text
        assert f'alt="{report.search_report.FIGURES[kind]}: {study.study_name}"' in (out / "report.html").read_text()
    held = {f.path for f in MlflowClient(uri).list_artifacts(parents["searched"], "report/figures")}
    assert {f"report/figures/search_{study.study_name}_{k}.png" for k in KINDS} <= held

    (s,), notes = _studies(uri, "searched")
    assert notes == []
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert list(s.trials["number"]) == [t.number for t in done] and len(done) == 12
    assert [tuple(r) for r in s.trials[s.metrics].to_numpy()] == [tuple(t.values) for t in done]
    front = set(s.trials.iloc[s.front()]["number"])
    assert front == {t.number for t in study.best_trials} and 1 < len(front) < 12  # Optuna's own Pareto front
    table = text.split("Pareto-optimal samples:\n\n", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    assert len(table) == len(front)  # the report's table lists exactly the front
    for n in front:
        row = s.trials.set_index("number").loc[n]
        assert f"| {n} | {row['data.gen_ratio']:.4g} | {row['train.lr']:.4g} |" in "\n".join(table)
    for metric in s.metrics:  # the planted metrics follow the ratio alone: the inert learning rate ranks last
        shares = s.importance[metric]
        assert shares["data.gen_ratio"] > shares["train.lr"] and sum(shares.values()) == pytest.approx(1)
    assert s.importance[s.metrics[0]] != s.importance[s.metrics[1]]  # each objective its own target

    report.write_report(uri, ["searched"], out, attach=False)  # the analysis from its cache; searches drawn again
    cached = (out / "report.md").read_text()
    assert "Runs read from the Parquet cache" in cached
    section = lambda t: t[t.index("## Searches"):t.index("_Runs read")]
    assert section(cached) == section(text)


def test_a_single_objective_study_has_its_best_sample_and_no_front(search_store, tmp_path):
    uri, root, _ = search_store
    study = _study(root, "single")
    report.write_report(uri, ["single"], tmp_path, attach=False)
    text = (tmp_path / "report.md").read_text()
    assert "Best sample:" in text and "Pareto" not in text
    assert not (tmp_path / "figures" / f"search_{study.study_name}_pareto.png").exists()
    (s,), _ = _studies(uri, "single")
    assert list(s.trials.iloc[s.front()]["number"]) == [study.best_trial.number]
    shares = s.importance["eval/und/total"]  # one objective: Optuna's default target, the study's value
    assert list(s.importance) == ["eval/und/total"] and shares["data.gen_ratio"] > shares["train.lr"]
    best = s.trials.set_index("number").loc[study.best_trial.number]
    assert f"| {study.best_trial.number} | {best['data.gen_ratio']:.4g} |" in text


def test_a_study_out_of_reach_is_drawn_from_its_runs_and_says_importance_needs_it(search_store, tmp_path):
    uri, root, _ = search_store
    study = _study(root, "searched")
    elsewhere = tmp_path / "elsewhere"  # as if the sweep ran with `run --storage` somewhere this report cannot see
    report.write_report(uri, ["searched"], tmp_path / "out", storage=str(elsewhere), attach=False)
    text = (tmp_path / "out" / "report.md").read_text()
    assert f"Study {study.study_name} is out of reach (no {elsewhere / 'optuna.db'})" in text
    assert "parameter importance needs the study" in text and "read from its MLflow runs" in text
    figures = tmp_path / "out" / "figures"
    assert [(figures / f"search_{study.study_name}_{k}.png").is_file() for k in KINDS] == [True, True, False, True]
    assert not elsewhere.exists()  # looking never creates a database

    (s,), notes = _studies(uri, "searched", str(elsewhere))
    assert s.url == "" and s.importance == {} and len(notes) == 1
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    ratios = pd.Series([t.params["data.gen_ratio"] for t in done])
    assert sorted(s.trials["data.gen_ratio"]) == pytest.approx(sorted(ratios))  # MLflow holds what Optuna sampled
    front = sorted(s.trials.iloc[s.front()]["data.gen_ratio"])
    assert front == pytest.approx(sorted(t.params["data.gen_ratio"] for t in study.best_trials))

    assert studies.load("s3://bucket/ray", study.study_name)[1].startswith("storage s3://bucket/ray is remote")


def test_the_storage_a_launch_recorded_is_where_the_report_looks(tmp_path):
    """`run --storage DIR` puts the studies where the stored spec does not say; the parent run's tag does."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    experiment_id = tracking.ensure_store(uri, "unisweep")
    client = MlflowClient(uri)
    without_fsync(client)
    parent = fill_search(client, experiment_id, "moved", tmp_path / "ray", samples=4)
    (tmp_path / "ray").rename(tmp_path / "launched-here")
    report.write_report(uri, ["moved"], tmp_path / "lost", attach=False)
    assert "is out of reach" in (tmp_path / "lost" / "report.md").read_text()
    client.set_tag(parent, tracking.STORAGE, str(tmp_path / "launched-here"))  # as the driver records it
    report.write_report(uri, ["moved"], tmp_path / "found", attach=False)
    assert f"read from the study in `sqlite:///{tmp_path / 'launched-here' / 'optuna.db'}`" in (
        tmp_path / "found" / "report.md").read_text()


def test_report_command_takes_the_studies_storage(search_store, tmp_path, capsys):
    uri, root, _ = search_store
    from unisweep.cli import make_parser

    parser = make_parser()
    args = parser.parse_args(["report", "searched", "--tracking-uri", uri, "--out", str(tmp_path / "a"),
                              "--storage", str(root / "ray")])
    assert args.func(args) == 0
    assert "read from the study in" in (tmp_path / "a" / "report.md").read_text()
    assert f"{tmp_path / 'a' / 'report.html'}" in capsys.readouterr().out
    args = parser.parse_args(["report", "searched", "--tracking-uri", uri, "--out", str(tmp_path / "b"),
                              "--storage", str(tmp_path / "none")])
    assert args.func(args) == 0
    assert "is out of reach" in (tmp_path / "b" / "report.md").read_text()
