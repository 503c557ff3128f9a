"""The command line as a researcher scripts it: --version, --json, exit codes, where each command reads and writes
(flag > environment > spec > default), a sweep's experiment found from its parent run, and axis tags.

Real SQLite stores and real `unisweep` subprocesses, no Ray: `run` and `resume` of a sweep whose every trial
MLflow holds FINISHED launch nothing, so their JSON summary is checked without a cluster.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from analysis_stores import without_fsync
from mlflow import MlflowClient

from sweeps import spec as S
from sweeps import tracking as T
from unisweep import cli

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")  # docs/PLATFORM.md §6

ROOT = Path(__file__).resolve().parent.parent
SPEC = """name: {name}
base: smartwatch-cpu
seeds: [0, 1]
grid:
  model.variant: [siglip-siglip, vq-vq]
  data.tasks: [mixed]
  zip:
    - model.alpha: [1.0, 0.2]
      model.affine_strength: [0.0, 0.5]
smoke:
  grid: {{model.alpha: [1.0]}}
tracking: {{uri: "{uri}", experiment: {experiment}}}
"""


@pytest.fixture(autouse=True)
def no_mlflow_env(monkeypatch):
    """Each test sets the variables it means; the caller's own must not leak in."""
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One SQLite store for the module (its schema costs seconds); each test logs sweeps of its own names."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('commands')}/mlflow.db"
    T.ensure_store(uri, "unisweep")
    client = MlflowClient(uri)
    without_fsync(client)
    return uri, client


def log_sweep(store, name: str, experiment: str, statuses=("FINISHED",) * 4) -> S.SweepSpec:
    """A smoke sweep of 4 trials logged as the driver logs one, each trial ending in the status given."""
    uri, client = store
    text = SPEC.format(name=name, uri=uri, experiment=experiment)
    spec = S.parse_spec(text)
    exp_id = T.ensure_store(uri, experiment)
    parent = T.start_sweep(client, exp_id, spec, text, smoke=True)
    trials = S.expand(spec, smoke=True)
    assert len(trials) == len(statuses)
    for trial, status in zip(trials, statuses, strict=True):
        run_id = T.trial_run(client, exp_id, parent, trial, smoke=True, axes=S.varying_axes(spec, smoke=True))
        T.RunLogger(client, run_id)({"eval/und/total": 0.1 + 0.1 * trial.seed}, 100)
        if status == "SCHEDULED":
            T.unschedule(client, run_id)
        elif status != "RUNNING":
            T.finish(client, run_id, status)
    T.finish(client, parent)
    return spec


def unisweep(*args, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME")}
    return subprocess.run([sys.executable, "-m", "unisweep.cli", *args], capture_output=True, text=True, timeout=120,
                          env={**clean, **(env or {})}, cwd=cwd or ROOT)


def test_version_comes_from_the_package_and_help_shows_exit_codes_and_ray_address(monkeypatch):
    expected = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)[1]
    out = unisweep("--version")
    assert out.returncode == 0 and out.stdout.strip() == f"unisweep {expected}"

    def not_installed(name):
        raise cli.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(cli.importlib.metadata, "version", not_installed)
    assert cli.version() == expected  # a checkout never installed reads pyproject.toml

    top = unisweep("--help").stdout
    for line in ("0    every trial FINISHED", "1    a trial FAILED", "2    bad input", "3    unfinished", "130  Ctrl-C",
                 "$RAY_ADDRESS", "$MLFLOW_EXPERIMENT_NAME"):
        assert line in top
    run = unisweep("run", "--help").stdout
    assert "$RAY_ADDRESS" in run and "launched" in run and "3    unfinished" in run
    assert "outcome" in unisweep("status", "--help").stdout and "ci_low" in unisweep("report", "--help").stdout


def test_status_exit_code_is_0_finished_1_failed_3_unfinished_and_json_is_one_object(store):
    uri, _ = store
    log_sweep(store, "st_done", "unisweep")
    log_sweep(store, "st_failed", "unisweep", ("FINISHED", "FAILED", "FINISHED", "FINISHED"))
    log_sweep(store, "st_running", "unisweep", ("FINISHED", "FAILED", "RUNNING", "FINISHED"))
    log_sweep(store, "st_stopped", "unisweep", ("FINISHED", "SCHEDULED", "FINISHED", "FINISHED"))

    out = unisweep("status", "st_running", "--tracking-uri", uri, "--json")
    assert out.returncode == 3, out.stderr  # a trial still runs: the failed one does not decide yet
    status = json.loads(out.stdout)  # stdout is exactly one JSON object
    assert status["by_status"] == {"FINISHED": 2, "FAILED": 1, "RUNNING": 1} and status["outcome"] == "unfinished"
    assert (status["sweep"], status["experiment"], status["tracking_uri"], status["trials"]) == (
        "st_running", "unisweep", uri, 4)
    assert status["metric"] == "eval/und/total" and status["best"]["value"] == pytest.approx(0.2)

    for sweep, code, outcome in (("st_done", 0, "finished"), ("st_failed", 1, "failed"),
                                 ("st_stopped", 3, "unfinished")):
        out = unisweep("status", sweep, "--tracking-uri", uri)
        assert out.returncode == code, (sweep, out.stderr)
        assert out.stdout.startswith(f"sweep {sweep}: 4 trials (") and f"): {outcome}\n" in out.stdout


def test_a_sweeps_experiment_is_found_from_its_parent_run(store, monkeypatch, capsys):
    uri, _ = store
    log_sweep(store, "found", "elsewhere")
    log_sweep(store, "twice", "first")
    log_sweep(store, "twice", "second", ("FINISHED", "FAILED", "FINISHED", "FINISHED"))

    assert cli.main(["status", "found", "--tracking-uri", uri, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["experiment"] == "elsewhere"
    assert cli.main(["runs", "--sweep", "found", "--tracking-uri", uri, "--json"]) == 0
    assert {r["sweep"] for r in json.loads(capsys.readouterr().out)} == {"found"}

    assert cli.main(["status", "twice", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'first', 'second'" in err and "--experiment" in err
    assert cli.main(["status", "twice", "--tracking-uri", uri, "--experiment", "second"]) == 1
    capsys.readouterr()
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "first")  # the environment names it as the flag would
    assert cli.main(["status", "twice", "--tracking-uri", uri, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["experiment"] == "first"
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")

    assert cli.main(["runs", "--tracking-uri", uri, "--json"]) == 0  # no sweep: every experiment's trials
    assert {"found", "twice"} <= {r["sweep"] for r in json.loads(capsys.readouterr().out)}
    assert cli.main(["status", "nosuch", "--tracking-uri", uri]) == 2
    assert "sweep 'nosuch' has no trial runs" in capsys.readouterr().err
    missing = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).parent}/none/m.db"
    assert cli.main(["status", "found", "--tracking-uri", missing]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    assert not Path(missing.removeprefix("sqlite:///")).exists()  # reading never creates a store


def test_plan_store_and_experiment_flag_beat_environment_beat_spec_beat_default(tmp_path):
    spec_uri, env_uri, flag_uri = (f"sqlite:///{tmp_path}/{n}.db" for n in ("spec", "env", "flag"))
    with_tracking = tmp_path / "with.yaml"
    with_tracking.write_text(SPEC.format(name="where", uri=spec_uri, experiment="spec-exp"))
    bare = tmp_path / "bare.yaml"
    bare.write_text(SPEC.format(name="where", uri="", experiment="x").split("tracking:")[0])

    def plan(path, *flags, **env):
        env = {"CUDA_VISIBLE_DEVICES": "", **env}  # no GPU to count: plan skips importing torch
        out = unisweep("plan", str(path), "--smoke", "--json", *flags, env=env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        j = json.loads(out.stdout)
        return j["tracking_uri"], j["experiment"]

    assert plan(bare) == (f"sqlite:///{tmp_path}/mlflow.db", "unisweep")
    assert plan(with_tracking) == (spec_uri, "spec-exp")
    env = {"MLFLOW_TRACKING_URI": env_uri, "MLFLOW_EXPERIMENT_NAME": "env-exp"}
    assert plan(with_tracking, **env) == (env_uri, "env-exp")
    assert plan(with_tracking, "--tracking-uri", flag_uri, "--experiment", "flag-exp", **env) == (flag_uri, "flag-exp")
    assert plan(bare, "--tracking-uri", "sqlite:///rel.db") == (f"sqlite:///{tmp_path}/rel.db", "unisweep")


def test_run_and_resume_json_of_a_sweep_mlflow_holds_finished_and_the_environment_beats_the_spec(store, tmp_path):
    uri, _ = store
    spec = log_sweep(store, "done_json", "json-exp")
    path = tmp_path / "done.yaml"  # the same sweep, naming a store of its own that the environment overrides
    path.write_text(SPEC.format(name="done_json", uri=f"sqlite:///{tmp_path}/spec.db", experiment="json-exp"))

    out = unisweep("run", str(path), "--smoke", "--json", env={"MLFLOW_TRACKING_URI": uri})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["tracking_uri"], result["experiment"], result["sweep"]) == (uri, "json-exp", "done_json")
    assert (result["trials"], result["skipped"], result["finished"], result["failed"], result["not_run"]) == (
        4, 4, 0, [], [])
    assert result["outcome"] == "finished" and result["interrupted"] is False and result["signal"] is None
    assert "4 already FINISHED, 0 to run" in out.stderr  # the human lines went to stderr
    assert not (tmp_path / "spec.db").exists()  # the spec's store was never touched

    out = unisweep("resume", spec.name, "--json", env={"MLFLOW_TRACKING_URI": uri})  # no --experiment: found
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert (result["experiment"], result["skipped"], result["outcome"]) == ("json-exp", 4, "finished")


def test_trial_runs_are_tagged_with_the_axes_that_vary(store):
    spec = log_sweep(store, "axes", "unisweep")
    assert S.varying_axes(spec, smoke=True) == ["model.variant", "seed"]  # smoke.grid keeps one zip point
    assert S.varying_axes(spec) == ["model.variant", "model.alpha", "model.affine_strength", "seed"]
    _, client = store
    runs = T.search_trials(client, client.get_experiment_by_name("unisweep").experiment_id, "axes")
    assert len(runs) == 4
    for r in runs:
        axes = {k.removeprefix(T.AXIS): v for k, v in r.data.tags.items() if k.startswith(T.AXIS)}
        assert axes == {"model.variant": r.data.params["model.variant"], "seed": r.data.tags[T.SEED]}
    assert {(r.data.tags[T.AXIS + "model.variant"], r.data.tags[T.AXIS + "seed"]) for r in runs} == {
        (v, s) for v in ("siglip-siglip", "vq-vq") for s in ("0", "1")}

    search = S.parse_spec(SPEC.format(name="s", uri="sqlite:///x.db", experiment="e") + (
        "search: {space: {train.lr: {loguniform: [0.0003, 0.003]}}, metric: eval/und/total, mode: max, "
        "num_samples: 2}\n"))
    assert S.varying_axes(search) == ["model.variant", "model.alpha", "model.affine_strength", "train.lr"]  # 1 seed


def test_report_json_holds_every_verdict_and_the_report_path(analysis_store, tmp_path):
    uri, _ = analysis_store
    out = unisweep("report", "nulleffect", "--tracking-uri", uri, "--out", str(tmp_path / "r"), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (report["sweeps"], report["experiment"], report["tracking_uri"]) == (["nulleffect"], "unisweep", uri)
    assert Path(report["report"]) == (tmp_path / "r" / "report.md").resolve() and Path(report["report"]).is_file()
    assert Path(report["report_html"]) == (tmp_path / "r" / "report.html").resolve()
    assert Path(report["report_html"]).is_file()
    verdicts = {v["key"]: v for v in report["verdicts"]}
    assert "1-und" in verdicts and "inconclusive" in {v["verdict"] for v in verdicts.values()}  # no planted effect
    for v in verdicts.values():
        assert {"finding", "claim", "effect", "ci_low", "ci_high", "n", "verdict", "detail"} <= set(v)


@pytest.mark.parametrize("uri, shown", [
    ("postgresql://me:pa:ss@db:5432/mlflow", "postgresql://me:***@db:5432/mlflow"),
    ("mysql+pymysql://root:p%40ss@h/db", "mysql+pymysql://root:***@h/db"),
    ("http://alice:s3cret@127.0.0.1:5000", "http://alice:***@127.0.0.1:5000"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("sqlite:////tmp/m.db", "sqlite:////tmp/m.db")])
def test_uris_are_shown_without_their_passwords(uri, shown, capsys):
    from sweeps.defaults import redact
    from sweeps.output import print_json

    assert redact(f'tracking: {{uri: "{uri}"}}') == f'tracking: {{uri: "{shown}"}}'  # the spec.yaml artifact
    print_json({"tracking_uri": uri})  # every --json output
    assert json.loads(capsys.readouterr().out)["tracking_uri"] == shown


def test_an_unreachable_store_is_a_one_line_error_without_its_password(monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once: nothing listens there
    from conftest import free_port

    uri = f"http://alice:s3cret@127.0.0.1:{free_port()}"
    assert cli.main(["status", "quickstart", "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert err.startswith("unisweep: error: the MLflow store:") and err.count("\n") == 1
    assert "s3cret" not in err and "alice:***@" in err
