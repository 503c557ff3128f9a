"""`unisweep report`: files, figures and parent-run artifacts from a SQLite store and from a real `mlflow server`."""


import pandas as pd
import pytest
from analysis_stores import fill, memory_runs
from mlflow import MlflowClient

from analysis import query, report
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


def test_report_files_hold_the_verdict_table_first(planted_report):
    verdicts, out, _, _ = planted_report
    text = (out / "report.md").read_text()
    assert text.startswith("# unisweep report: planted")
    table_at = text.index("| # | verdict | effect | interval | n | claim |")
    assert table_at < text.index("## Finding 1")  # the verdict table comes before every finding's section
    assert "| 1 | reproduced |" in text and "| 4 | not run | — | — | 0 |" in text
    assert "![finding 1](figures/mutual_benefit.png)" in text and "![generated images]" in text
    csv = pd.read_csv(out / "findings.csv")
    assert list(csv["finding"]) == list(range(1, 9))
    assert list(csv["verdict"]) == [v.verdict for v in verdicts.values()]
    assert csv.loc[0, "effect"] == pytest.approx(verdicts[1].effect)
    for name in ("mutual_benefit", "data_scaling", "alignment", "generated_images"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not (out / "figures" / "affine.png").exists()  # finding 4 not run: no empty figure


def test_parent_run_holds_the_report(planted_report):
    _, _, uri, parent = planted_report
    client = MlflowClient(uri)
    held = {f.path for f in client.list_artifacts(parent, "report")}
    assert {"report/report.md", "report/findings.csv", "report/figures"} <= held
    figures = {f.path for f in client.list_artifacts(parent, "report/figures")}
    assert "report/figures/mutual_benefit.png" in figures


def test_second_report_reads_the_cache(planted_report, tmp_path):
    verdicts, out, uri, _ = planted_report
    again = report.write_report(uri, ["planted"], out, attach=False)
    assert "Runs read from the Parquet cache" in (out / "report.md").read_text()
    pd.testing.assert_frame_equal(pd.DataFrame([v.row() for v in again.values()]),
                                  pd.DataFrame([v.row() for v in verdicts.values()]))


def test_report_command_prints_the_verdict_table_and_writes_reports_slash_sweep(analysis_store, tmp_path,
                                                                               monkeypatch, capsys):
    uri, _ = analysis_store
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # the default store when --tracking-uri is not given
    from sweeps.cli import make_parser

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


def test_report_from_a_real_mlflow_server(server, tmp_path):
    experiment_id = tracking.ensure_store(server, "unisweep")
    client = MlflowClient(server)
    parent = fill(client, experiment_id, "served")
    verdicts = report.write_report(server, "served", tmp_path)
    assert verdicts[1].verdict == "reproduced" and verdicts[1].n == 3
    assert verdicts[1].ci_low < 0.1 < verdicts[1].ci_high
    assert verdicts[2].verdict == "reproduced"  # histories read over HTTP by the thread pool
    assert "report/report.md" in {f.path for f in client.list_artifacts(parent, "report")}
    assert "No trial logged a `generated.png`" in (tmp_path / "report.md").read_text()


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
