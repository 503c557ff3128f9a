"""`unisweep run` on a real local Ray and a real SQLite MLflow store: exactly once, skips, extension."""

import json
import signal
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from sweeps import spec as S
from sweeps import tracking as T
from sweeps import trial
from sweeps.driver import run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
              pytest.mark.timeout(300)]

SPEC = """name: drive
base: smartwatch-cpu
seeds: [0]
grid:
  data.tasks: [mixed, understanding]
tracking: {{uri: "sqlite:///{db}", experiment: tests}}
storage: {storage}
"""


def test_a_smoke_sweep_logs_every_trial_once_and_reruns_nothing(tmp_path, cache_dir, ray_local):
    text = SPEC.format(db=tmp_path / "mlflow.db", storage=tmp_path / "ray")
    spec = S.parse_spec(text)
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.trials, result.finished, result.failed) == (2, 2, [])

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    parent = T.sweep_run(client, experiment, "drive", smoke=True)
    runs = T.search_trials(client, experiment, "drive")
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert parent.data.tags[T.STORAGE] == str(tmp_path / "ray")  # where the report looks for Optuna studies
    for r in runs:
        tags = r.data.tags
        assert tags["unisweep.smoke"] == "true" and tags["unisweep.seed"] == "0"
        assert tags["unisweep.git_sha"] and tags["unisweep.dirty"] in ("true", "false")
        assert tags["unisweep.version.torch"] and tags["unisweep.version.ray"] and tags["unisweep.node"]
        assert tags["unisweep.cpu"] == trial.cpu_description() and "; torch " in tags["unisweep.cpu"]
        artifacts = {a.path for a in client.list_artifacts(r.info.run_id)}
        assert "config.yaml" in artifacts
        assert ("generated.png" in artifacts) == (r.data.params["data.tasks"] == "mixed")
        assert tags["unisweep.variant"] == "siglip-siglip" and tags["unisweep.cell"] in r.info.run_name
        axes = {k: v for k, v in tags.items() if k.startswith(T.AXIS)}  # what varies: tasks (one seed, one variant)
        assert axes == {T.AXIS + "data.tasks": r.data.params["data.tasks"]}
        assert r.data.params["data.tasks"] in ("mixed", "understanding")
        for key in ("eval/und/total", "train/loss"):
            steps = [m.step for m in client.get_metric_history(r.info.run_id, key)]
            assert len(steps) == len(set(steps)) and steps  # every step exactly once
        assert [m.step for m in client.get_metric_history(r.info.run_id, "eval/und/total")] == [50, 100]

    again = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (again.skipped, again.finished) == (2, 0)
    assert len(T.search_trials(client, experiment, "drive")) == 2  # nothing launched, nothing duplicated

    wider = text.replace("[mixed, understanding]", "[mixed, understanding, generation]")
    more = run_sweep(S.parse_spec(wider), wider, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (more.trials, more.skipped, more.finished) == (3, 2, 1)  # only the new cell ran
    assert len(T.search_trials(client, experiment, "drive")) == 3

    from sweeps.report_runs import list_runs, sweep_status

    status = sweep_status(spec.tracking.uri, "tests", "drive")
    assert status["trials"] == 3 and status["by_status"] == {"FINISHED": 3}
    assert status["best"] is not None
    mixed = list_runs(spec.tracking.uri, "tests", "drive", where="params.data.tasks = 'mixed'")
    assert [r["tasks"] for r in mixed] == ["mixed"] and "eval/und/total" in mixed[0]["metrics"]

    cli = [sys.executable, "-m", "unisweep.cli"]
    out = subprocess.run([*cli, "runs", "--sweep", "drive", "--experiment", "tests", "--json",
                          "--tracking-uri", spec.tracking.uri], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and len(json.loads(out.stdout)) == 3
    out = subprocess.run([*cli, "status", "nosuch", "--experiment", "tests", "--tracking-uri", spec.tracking.uri],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no trial runs" in out.stderr


def test_a_crashed_trial_is_failed_and_resume_finishes_it_in_the_same_run(tmp_path, cache_dir, ray_local,
                                                                          monkeypatch, capsys):
    from sweeps.driver import CRASH_ENV
    from unisweep.cli import main

    text = SPEC.format(db=tmp_path / "mlflow.db", storage=tmp_path / "ray")
    text = text.replace("[mixed, understanding]", "[understanding]").replace("name: drive", "name: crashy")
    text += "resources: {max_failures: 0}\n"  # no retry: the crash fails the trial, and resume finishes it
    spec = S.parse_spec(text)
    monkeypatch.setenv(CRASH_ENV, f"50:{tmp_path / 'crashes'}")  # the trial process dies once, after 50 %
    launch = tmp_path / "launch"  # --storage, not the spec's: resume must find it without being told
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None, storage=str(launch))
    assert result.finished == 0 and len(result.failed) == 1

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    (run,) = T.search_trials(client, experiment, "crashy")
    assert run.info.status == "FAILED" and run.data.tags[T.ERROR]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/und/total")] == [50]
    assert T.sweep_run(client, experiment, "crashy", smoke=True).info.status == "FAILED"

    code = main(["resume", "crashy", "--tracking-uri", spec.tracking.uri, "--experiment", "tests",
                 "--cache-dir", str(cache_dir)])
    assert code == 0, capsys.readouterr()
    (again,) = T.search_trials(client, experiment, "crashy")
    assert again.info.run_id == run.info.run_id and again.info.status == "FINISHED"
    assert T.ERROR not in again.data.tags
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/und/total")] == [50, 100]
    assert T.sweep_run(client, experiment, "crashy", smoke=True).info.status == "FINISHED"
    assert not (tmp_path / "ray").exists() and len(list(launch.glob("crashy-*"))) == 2  # both launches' results
    assert main(["resume", "nosuch", "--tracking-uri", spec.tracking.uri, "--experiment", "tests"]) == 2


def test_an_in_process_trial_that_crashes_is_retried_from_its_last_checkpoint(tmp_path, cache_dir, ray_local,
                                                                             monkeypatch):
    from sweeps.driver import CRASH_ENV
    from sweeps.trial import RESUMED_TAG

    text = SPEC.format(db=tmp_path / "mlflow.db", storage=tmp_path / "ray")
    text = text.replace("[mixed, understanding]", "[understanding]").replace("name: drive", "name: retried")
    spec = S.parse_spec(text)  # resources.max_failures: 1, the default
    monkeypatch.setenv(CRASH_ENV, f"50:{tmp_path / 'crashes'}")  # the trial process dies once, after 50 %
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.finished, result.failed) == (1, [])
    assert len(list((tmp_path / "crashes").iterdir())) == 1  # it really died
    client = MlflowClient(spec.tracking.uri)
    (run,) = T.search_trials(client, client.get_experiment_by_name("tests").experiment_id, "retried")
    assert run.info.status == "FINISHED" and T.ERROR not in run.data.tags
    assert run.data.tags[RESUMED_TAG] == "50"  # from the 50 % checkpoint, not from zero
    for key in ("eval/und/total", "train/loss"):
        steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
        assert len(steps) == len(set(steps)) and max(steps) == 100, key  # nothing logged twice
    kept = [p for p in (tmp_path / "ray").rglob("checkpoint_*") if p.is_dir()]
    assert len(kept) == 1  # Tune keeps the latest eval point's state only


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_sweep_and_resume_finishes_it_in_the_same_runs(tmp_path, cache_dir, ray_local, signum):
    import os

    text = SPEC.format(db=tmp_path / "mlflow.db", storage=tmp_path / "ray")
    text = text.replace("seeds: [0]", "seeds: [0, 1, 2]").replace("name: drive", "name: halted")
    spec = S.parse_spec(text)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def ctrl_c_after_the_first_trial(line: str) -> None:
        if "| FINISHED" in line and not ctrl_c_after_the_first_trial.sent:  # a trial's end, on the progress line
            ctrl_c_after_the_first_trial.sent = True
            os.kill(os.getpid(), signum)  # as a terminal's Ctrl-C (or `ray job stop`'s SIGTERM) reaches the driver

    ctrl_c_after_the_first_trial.sent = False
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=ctrl_c_after_the_first_trial)
    assert result.interrupted and result.signum == signum
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # both handlers given back
    assert 1 <= result.finished < 6 and result.not_run  # two run at a time: most never started
    assert result.finished + len(result.failed) + len(result.not_run) == 6

    client = MlflowClient(spec.tracking.uri)
    experiment = client.get_experiment_by_name("tests").experiment_id
    runs = {r.info.run_name: r for r in T.search_trials(client, experiment, "halted")}
    assert len(runs) == 6
    assert {n for n, r in runs.items() if r.info.status == "SCHEDULED"} == set(result.not_run)
    for name in result.failed:  # cut short by the Ctrl-C: not closed FINISHED as if ASHA had stopped it
        assert "interrupted" in runs[name].data.tags[T.ERROR]
    for r in runs.values():
        if r.info.status == "FINISHED":
            assert [m.step for m in client.get_metric_history(r.info.run_id, "eval/und/total")] == [50, 100]
    assert T.sweep_run(client, experiment, "halted", smoke=True).info.status == "FAILED"

    again = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (again.skipped, again.finished, again.failed, again.interrupted) == (result.finished,
                                                                                6 - result.finished, [], False)
    after = {r.info.run_name: r for r in T.search_trials(client, experiment, "halted")}
    assert {n: r.info.run_id for n, r in after.items()} == {n: r.info.run_id for n, r in runs.items()}
    assert {r.info.status for r in after.values()} == {"FINISHED"}
    for r in after.values():
        steps = [m.step for m in client.get_metric_history(r.info.run_id, "eval/und/total")]
        assert steps == [50, 100] and T.ERROR not in r.data.tags  # nothing logged twice


def test_a_sweep_logs_to_a_real_mlflow_server_and_its_password_is_nowhere(tmp_path, cache_dir, ray_local, server):
    """Through Ray Train, with a password in the server's URI: the trial logs with it, and no file the sweep or
    its report writes, and nothing MLflow holds, contains it."""
    secret = "s3cret-pw"
    with_password = server.replace("http://", f"http://alice:{secret}@")
    text = f"""name: served
base: smartwatch-cpu
seeds: [0]
grid:
  data.tasks: [mixed]
tracking: {{uri: "{with_password}", experiment: served}}
storage: {tmp_path / "ray"}
resources: {{workers_per_trial: 1, cpus_per_worker: 1, execution: train}}
"""
    spec = S.parse_spec(text)
    result = run_sweep(spec, text, smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    assert (result.finished, result.failed) == (1, [])
    from analysis.report import write_report

    write_report(with_password, ["served"], tmp_path / "report", experiment="served")
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "params.json" for p in written) and (tmp_path / "report" / "report.md").is_file()
    assert [p for p in written if secret.encode() in p.read_bytes()] == []
    client = MlflowClient(server)
    experiment = client.get_experiment_by_name("served").experiment_id
    (run,) = T.search_trials(client, experiment, "served")
    assert run.info.status == "FINISHED" and run.data.tags["unisweep.git_sha"]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "eval/gen/attr_acc")] == [50, 100]
    assert {"config.yaml", "generated.png", "real.png"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    parent = T.sweep_run(client, experiment, "served", True)
    assert "spec.yaml" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    stored = T.spec_text(client, parent.info.run_id)
    assert "alice:***@" in stored and secret not in stored
    for r in (run, parent):
        held = client.get_run(r.info.run_id).data
        assert secret not in repr((held.params, held.tags))


def test_a_diverged_trial_fails_for_good_once_and_is_rerun_only_when_asked(tmp_path, cache_dir, ray_local,
                                                                           capsys):
    from unisweep.cli import main

    db, storage = tmp_path / "mlflow.db", tmp_path / "ray"
    path = tmp_path / "spec.yaml"
    path.write_text(f"""name: bad_lr
base: smartwatch-cpu
seeds: [0]
grid:
  train.lr: [0.003, 1.0e+30]
tracking: {{uri: "sqlite:///{db}", experiment: tests}}
storage: {storage}
""")
    spec = S.load_spec(path)
    result = run_sweep(spec, path.read_text(), smoke=True, cache_dir=cache_dir, progress=lambda *a: None)
    client = MlflowClient(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("tests").experiment_id
    runs = {r.data.params["train.lr"]: r for r in T.search_trials(client, experiment, "bad_lr")}
    bad = runs["1e+30"]
    assert result.finished == 1 and result.failed == [bad.info.run_name]  # once, under its run's name
    assert bad.info.status == "FAILED" and bad.data.tags[T.FOR_GOOD] == "true" and "train.lr" in bad.data.tags[T.ERROR]

    capsys.readouterr()
    argv = ["run", str(path), "--smoke", "--cache-dir", str(cache_dir), "--json"]
    assert main(argv) == 1  # nothing to run, and the sweep did not finish: "failed", not "finished"
    out = json.loads(capsys.readouterr().out)
    assert (out["failed_for_good"], out["failed"], out["launched"], out["outcome"]) == (
        [bad.info.run_name], [], [], "failed")
    assert T.sweep_run(client, experiment, "bad_lr", True).info.status == "FAILED"

    again = run_sweep(spec, path.read_text(), smoke=True, cache_dir=cache_dir, progress=lambda *a: None,
                      retry_failed=True)
    assert again.failed == [bad.info.run_name] and again.finished == 0  # asked for: rerun, in the same run
    assert len(T.search_trials(client, experiment, "bad_lr")) == 2
