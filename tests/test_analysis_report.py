"""`unisweep report`: files, figures and parent-run artifacts from a SQLite store and from a real `mlflow server`."""

import logging

import numpy as np
import pandas as pd
import pytest
from analysis_stores import fill, memory_runs
from mlflow import MlflowClient
from PIL import Image

from analysis import plots, query, report
from sweeps import tracking
from sweeps.errors import NotFound


@pytest.fixture(scope="module", autouse=True)
def boot_server_early(server_process):
    """Start the session's `mlflow server` (tests/conftest.py) first, so it boots while the SQLite tests run."""


@pytest.fixture(scope="module")
def planted_report(analysis_store, tmp_path_factory):
    uri, parents = analysis_store
    out = tmp_path_factory.mktemp("report")
    return report.write_report(uri, ["planted"], out), out, uri, parents["planted"]


def test_the_machines_line_names_the_cpus_and_warns_only_when_they_differ():
    one = pd.DataFrame({"cpu": ["A; torch AVX2"] * 3})
    assert report.machines_line(one) == "Trained on A; torch AVX2 (3 runs)."
    assert report.machines_line(pd.DataFrame({"cpu": [None, None]})) == ""  # runs from before the tag
    mixed = report.machines_line(pd.DataFrame({"cpu": ["A; torch AVX2", None, "A; torch AVX2"]}))
    assert mixed.startswith("Trained on 2 kinds of CPU: A; torch AVX2 (2 runs), not recorded (1 run).")


def test_report_files_hold_the_verdict_table_first(planted_report):
    verdicts, out, _, _ = planted_report
    text = (out / "report.md").read_text()
    assert text.startswith("# unisweep report: planted")
    table_at = text.index("| # | verdict | effect | interval | n | claim |")
    assert table_at < text.index("## Finding 1")  # the verdict table comes before every finding's section
    assert "| 1-und | reproduced |" in text and "| 1-gen | reproduced |" in text
    assert "| 4 | not run | — | — | 0 |" in text
    assert "![finding 1-und](figures/mutual_benefit_und.png)" in text and "![generated images]" in text
    assert "## Searches" not in text  # a grid sweep: no Optuna study to show
    assert "Trained on 2 kinds of CPU: Planted CPU; torch AVX2 (" in text and "Other CPU; torch AVX512 (" in text
    html = (out / "report.html").read_text()  # the same document, self-contained (tests/test_report_browser.py)
    assert '<table id="verdicts">' in html and html.count('src="data:image/png;base64,') == text.count("![")
    # every arm against its chance level, before the findings
    assert text.index("## Every arm against its chance level") < text.index("## Finding 1")
    assert "| model.variant=siglip-siglip, mixed | eval/und/total |" in text and "| 0.2 |" in text
    # each comparison's arms against their own chance level
    assert "- und, model.variant=siglip-siglip: mixed 0." in text and "vs chance 0.200" in text
    csv = pd.read_csv(out / "findings.csv")
    assert list(csv["finding"]) == [1, 1, *range(2, 9)]
    assert list(csv["side"].fillna("")) == ["understanding", "generation"] + [""] * 7
    assert list(csv["verdict"]) == [v.verdict for v in verdicts.values()]
    assert csv.loc[0, "effect"] == pytest.approx(verdicts["1-und"].effect)
    comparisons = pd.read_csv(out / "comparisons.csv")
    assert {"arms_vs_chance", "why_untestable"} <= set(comparisons.columns)
    for name in ("mutual_benefit_und", "mutual_benefit_gen", "data_scaling", "alignment", "generated_images"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not (out / "figures" / "affine.png").exists()  # finding 4 not run: no empty figure


def test_parent_run_holds_the_report(planted_report):
    _, _, uri, parent = planted_report
    client = MlflowClient(uri)
    held = {f.path for f in client.list_artifacts(parent, "report")}
    assert {"report/report.md", "report/report.html", "report/findings.csv", "report/figures"} <= held
    figures = {f.path for f in client.list_artifacts(parent, "report/figures")}
    assert "report/figures/mutual_benefit_und.png" in figures
    data = client.get_run(parent).data  # the verdicts, queryable: tags.`finding.1-und.verdict`, metrics too
    assert data.tags["finding.1-und.verdict"] == "reproduced" and data.tags["finding.4.verdict"] == "not run"
    assert data.metrics["finding.1-und.effect"] > 0 and "finding.4.effect" not in data.metrics  # not run: NaN


def test_image_grid_pairs_each_real_image_with_its_generation_and_prompt(planted_report, tmp_path):
    _, _, uri, _ = planted_report
    data = query.load(uri, ["planted"])
    trials = data.trials
    mixed = trials[trials["data.tasks"].eq("mixed")].sort_values("seed")
    run = mixed["run_id"].iloc[0]
    # a lower-seed "mixed" run that logged no images (another sweep's, say) is passed over, not shown blank
    imageless = trials.loc[trials["data.tasks"].ne("mixed"), "run_id"].iloc[0]
    trials = pd.concat([mixed.iloc[[0]].assign(seed=-1, run_id=imageless), trials])
    shown = report.shown_images(uri, trials, tmp_path)
    files = shown[mixed["variant"].iloc[0]]
    assert files["generated.png"].parent.name == run
    assert set(files) == {"generated.png", "real.png", "prompts.json"}
    assert plots._prompts(files) == [f"hour={h}, weather=sunny" for h in range(4)]
    tiles = plots._tiles(np.asarray(Image.open(files["generated.png"]).convert("RGB")), 4)
    seed = int(data.trials.set_index("run_id").loc[run, "seed"])
    assert [t.shape for t in tiles] == [(8, 8, 3)] * 4
    assert [int(t[0, 0, 0]) for t in tiles] == [40 * seed + 10 * i for i in range(4)]  # each tile is its image


def test_second_report_reads_the_cache(planted_report, tmp_path):
    verdicts, out, uri, _ = planted_report
    fresh = (out / "report.md").read_text()
    again = report.write_report(uri, ["planted"], out, attach=False)
    cached = (out / "report.md").read_text()
    assert "Runs read from the Parquet cache" in cached
    assert cached.rsplit("_Runs read", 1)[0] == fresh.rsplit("_Runs read", 1)[0]  # the same report, from data
    saved = list((out / ".cache").glob("report-*/*"))
    assert {p.suffix for p in saved} == {".json", ".parquet"}  # no pickle: a cache must not be able to run code
    loaded = report.load_analysis(saved[0].parent, query.load(uri, ["planted"], cache_dir=out / ".cache").trials)
    assert loaded is not None and list(loaded[1]) == list(verdicts)
    for key, verdict in verdicts.items():
        pd.testing.assert_frame_equal(loaded[1][key].comparisons, verdict.comparisons, check_dtype=False)
    pd.testing.assert_frame_equal(pd.DataFrame([v.row() for v in again.values()]),
                                  pd.DataFrame([v.row() for v in verdicts.values()]))


def test_report_command_prints_the_verdict_table_and_writes_reports_slash_sweep(analysis_store, tmp_path,
                                                                               monkeypatch, capsys):
    uri, _ = analysis_store
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the default store when --tracking-uri is not given
    from unisweep.cli import make_parser

    parser = make_parser()  # `report` as the unisweep command line registers it
    args = parser.parse_args(["report", "nulleffect"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "inconclusive" in printed and "not run" in printed
    assert (tmp_path / "reports" / "nulleffect" / "report.md").is_file()
    args = parser.parse_args(["report", "no_such_sweep", "--tracking-uri", uri, "--out", str(tmp_path / "x")])
    with pytest.raises(NotFound, match="sweep 'no_such_sweep' has no trial runs"):
        args.func(args)
    args = parser.parse_args(["report", "planted", "--experiment", "nope"])
    with pytest.raises(NotFound, match="no experiment 'nope'"):
        args.func(args)


@pytest.mark.slow
def test_report_from_a_real_mlflow_server(server, tmp_path):
    experiment_id = tracking.ensure_store(server, "unisweep")
    client = MlflowClient(server)
    parent = fill(client, experiment_id, "served")
    verdicts = report.write_report(server, "served", tmp_path)
    assert verdicts["1-und"].verdict == "reproduced" and verdicts["1-und"].n == 3
    assert verdicts["1-und"].ci_low < 0.1 < verdicts["1-und"].ci_high
    assert verdicts["2"].verdict == "reproduced"  # histories read over HTTP by the thread pool
    assert "report/report.md" in {f.path for f in client.list_artifacts(parent, "report")}
    assert "No trial logged a `generated.png`" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_histories_over_http_come_in_bulk_and_match_one_call_per_run(server, caplog):
    experiment_id = tracking.ensure_store(server, "bulk")  # the "served" sweep again, in its own experiment
    client = MlflowClient(server)
    fill(client, experiment_id, "served")
    run_ids = [r.info.run_id for r in tracking.search_trials(client, experiment_id, "served")]
    caplog.set_level(logging.DEBUG, logger="analysis.query")
    bulk = query.fetch_histories(client, run_ids, runs_per_request=4)  # several chunks from a small sweep
    requests = 2 * -(-len(run_ids) // 4)  # a request per 4 runs and key, none per run
    assert f"in {requests} bulk requests" in caplog.text
    one_by_one = query.fetch_histories(client, run_ids, bulk=False)  # one request per run and key
    assert len(bulk) > 0 and bulk.equals(one_by_one)


@pytest.mark.slow
def test_trials_over_http_are_listed_in_16_parts_at_once_and_none_is_missed(server):
    experiment_id = tracking.ensure_store(server, "parts")
    client = MlflowClient(server)
    fill(client, experiment_id, "served")
    whole = [r.info.run_id for r in tracking.search_trials(client, experiment_id, "served")]
    parts = [r.info.run_id for r in query.list_trials(client, experiment_id, "served")]
    assert len(parts) == len(set(parts)) and sorted(parts) == sorted(whole) and len(whole) > 1


@pytest.mark.slow
def test_a_bulk_response_at_the_servers_bound_is_asked_again_in_halves(server, caplog):
    experiment_id = tracking.ensure_store(server, "halves")  # the "served" sweep again, in its own experiment
    client = MlflowClient(server)
    fill(client, experiment_id, "served")
    run_ids = [r.info.run_id for r in tracking.search_trials(client, experiment_id, "served")]
    points = len(client.get_metric_history(run_ids[0], "eval/und/total"))
    caplog.set_level(logging.DEBUG, logger="analysis.query")
    # the real server cuts its responses at this bound: any two runs overflow it
    cut = query.fetch_histories(client, run_ids, points_per_response=points + 1)
    assert cut.equals(query.fetch_histories(client, run_ids, bulk=False))
    assert int(caplog.text.split(" bulk requests")[0].split()[-1]) > 2  # more than one request per key


def test_only_finished_full_length_runs_are_analysed_and_smoke_only_when_alone():
    trials = query.trials_frame(memory_runs("nulleffect"))
    trials.loc[0, "status"] = "FAILED"
    trials.loc[1, "stopped_early"] = True
    rows, notes = report.select_trials(trials)
    assert len(rows) == len(trials) - 2 and set(rows["run_id"]).isdisjoint(trials["run_id"][:2])
    assert any("1 FAILED" in n for n in notes) and any("ASHA stopped early" in n for n in notes)
    half = trials.assign(smoke=trials.index % 2 == 0)
    assert not report.select_trials(half)[0]["smoke"].any()  # real runs exist: smoke ones are left out
    rows, notes = report.select_trials(trials.assign(smoke=True))
    assert len(rows) == len(trials) - 2 and any("only smoke runs" in n for n in notes)
