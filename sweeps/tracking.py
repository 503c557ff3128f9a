"""MLflow record of sweeps (docs/DESIGN.md §5, §8), through `MlflowClient` only.

One parent run per sweep (tags `unisweep.role=sweep`, `unisweep.sweep`, `unisweep.smoke`), one child run per
trial named `{sweep}/{cell}/s{seed}`, found again by its tags, so a retried or resumed trial logs into the run
it already has. `RunLogger` is the `report(metrics, step, state=None)` that `unified.train.train` calls: it
reads what the run holds first and never logs a (key, step) twice. Ray's MLflow integrations are not used:
they create their own runs and log at Tune's iteration, not at the percent of data seen.

The driver calls `ensure_store` once before any trial starts (docs/PLATFORM.md §6: concurrent first writers race
on the SQLite schema; sweeps/store_open.py serialises the first opening of a file), then
`mark_stale_running_failed`, `start_sweep` and `trial_run` per trial.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import math
import os
import re
import subprocess
import time
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from sweeps.defaults import EXPERIMENT_ENV, redact
from sweeps.errors import Ambiguous, NotFound
from sweeps.schema import (  # noqa: F401  (re-exported: `tracking.SWEEP` and its kin name the record's tags)
    AXIS,
    CELL,
    CPU,
    DIRTY,
    ERROR,
    EVAL_CLOCK,
    FOR_GOOD,
    GIT_SHA,
    MEMBERS,
    NAME_PATTERN,
    PRESET_VERSION,
    ROLE,
    SEED,
    SMOKE,
    STOPPED_EARLY,
    STORAGE,
    STUDY,
    SWEEP,
    VARIANT,
    VERSION,
)
from sweeps.store_open import open_client
from unified import config as C

MAX_PARAM_CHARS = 6000  # MLflow refuses longer param values
BATCH_PARAMS, BATCH_METRICS = 100, 1000  # log_batch limits per call
HOLD_TRAIN_S = 10.0  # train/* metrics wait up to this long for one batch: a SQLite commit costs ~15 ms
# SCHEDULED: created for a trial that an interrupted sweep never started. A KILLED run was abandoned on
# purpose: a new run replaces it.
REUSABLE = ("FINISHED", "RUNNING", "FAILED", "SCHEDULED")
VERSIONED = ("unisweep", "torch", "ray", "mlflow", "optuna", "transformers")
MAX_TAG_CHARS = 5000


# ---------------------------------------------------------------- the store


def ensure_store(uri: str, experiment: str) -> str:
    """Create the database (once, before concurrent writers) and the experiment; return its id. Idempotent."""
    artifacts = None
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        db.parent.mkdir(parents=True, exist_ok=True)
        artifacts = (db.parent / "mlartifacts").as_uri()  # beside the DB, not under the cwd (docs/PLATFORM.md §6)
    client = open_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(found.experiment_id)
        return found.experiment_id
    try:
        return client.create_experiment(experiment, artifact_location=artifacts)
    except MlflowException:  # another driver created it between our lookup and create
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise
        return found.experiment_id


# ---------------------------------------------------------------- provenance


@functools.lru_cache(maxsize=1)
def provenance_tags() -> dict[str, str]:
    """Git SHA and dirty flag of the checkout this package runs from, and the versions that matter."""
    root = Path(__file__).resolve().parent.parent

    def git(*args):
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    tags = {GIT_SHA: sha or "unknown",
            DIRTY: "unknown" if dirty is None or sha is None else str(bool(dirty)).lower()}
    for package in VERSIONED:
        try:
            tags[f"{VERSION}{package}"] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return tags


# ---------------------------------------------------------------- runs


def start_sweep(client: MlflowClient, experiment_id: str, spec, spec_text: str, smoke: bool = False,
                storage: str = "") -> str:
    """Find or create the sweep's parent run (one per sweep name and smoke flag), mark it RUNNING, return its id.
    `storage`: the launch's storage, absolute (the report finds the searches' Optuna studies there)."""
    found = _search(client, experiment_id, _tag_filter({ROLE: "sweep", SWEEP: spec.name, SMOKE: _flag(smoke)}))
    tags = {ROLE: "sweep", SWEEP: spec.name, SMOKE: _flag(smoke), **provenance_tags(),
            PRESET_VERSION: f"{spec.base} v{C.PRESET_VERSIONS[spec.base]}"}
    if storage:
        tags[STORAGE] = storage
    if spec.description:
        tags["mlflow.note.content"] = spec.description  # shown as the run's description in the UI
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])  # provenance of this launch
    else:
        run_id = client.create_run(experiment_id, tags=tags, run_name=spec.name).info.run_id
    # the latest spec (an extended grid replaces the old one), without the passwords of URIs written in it
    client.log_text(run_id, redact(spec_text), "spec.yaml")
    return run_id


def sweep_run(client: MlflowClient, experiment_id: str, sweep: str, smoke: bool = False) -> Run | None:
    """The sweep's parent run at this smoke flag, if any."""
    found = _search(client, experiment_id, _tag_filter({ROLE: "sweep", SWEEP: sweep, SMOKE: _flag(smoke)}))
    return found[0] if found else None


def sweep_runs(client: MlflowClient, experiment_id: str, sweep: str) -> list[Run]:
    """The sweep's parent runs: one per smoke flag."""
    return _search(client, experiment_id, _tag_filter({ROLE: "sweep", SWEEP: sweep}))


def spec_text(client: MlflowClient, run_id: str) -> str:
    """The spec YAML a sweep's parent run holds (`resume NAME` runs it again)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d, quiet_artifacts():
        return Path(client.download_artifacts(run_id, "spec.yaml", d)).read_text()


@contextlib.contextmanager
def quiet_artifacts():
    """MLflow draws a progress bar per artifact transfer; our commands print their own lines instead."""
    old = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = old


def trial_run(client: MlflowClient, experiment_id: str, parent_id: str, trial, smoke: bool = False,
              extra_tags: dict[str, str] | None = None, axes: list[str] = (), reuse_running: bool = True) -> str:
    """Find the run of (sweep, cell, seed), or create it; record config, params and tags; return its id.
    `reuse_running=False` for search samples: two concurrent samples of one config each get their own run.

    A found FAILED or SCHEDULED run is set back to RUNNING (the trial resumes into it); a FINISHED one is
    returned as it is. `axes`: the keys that vary across the sweep (`seed` included), each tagged
    `unisweep.axis.<key>` with this trial's value, so the UI can chart just those.
    Params, axis metrics and tags are logged only where missing, so calling this again logs nothing twice.
    """
    sweep = trial.name.split("/")[0]
    ids = {ROLE: "trial", SWEEP: sweep, CELL: trial.cell, SEED: str(trial.seed)}
    reusable = REUSABLE if reuse_running else tuple(s for s in REUSABLE if s != "RUNNING")
    found = [r for r in _search(client, experiment_id, _tag_filter(ids)) if r.info.status in reusable]
    found.sort(key=lambda r: (reusable.index(r.info.status), -r.info.start_time))
    point = {**trial.overrides, "seed": trial.seed}
    tags = {**ids, "mlflow.parentRunId": parent_id, VARIANT: trial.config.model.variant,
            SMOKE: _flag(smoke), **provenance_tags(), **{f"{AXIS}{k}": str(point[k]) for k in axes if k in point},
            **{k: v for k, v in client.get_run(parent_id).data.tags.items() if k == PRESET_VERSION},
            **({MEMBERS: ",".join(trial.members)} if getattr(trial, "members", ()) else {}), **(extra_tags or {})}
    if found:
        run = found[0]
        reopen(client, run)
    else:
        run = client.create_run(experiment_id, tags=tags, run_name=trial.name)
    run_id = run.info.run_id
    flat = C.flatten(trial.config)
    params = [Param(k, str(v)[:MAX_PARAM_CHARS]) for k, v in flat.items() if k not in run.data.params]
    axes = [Metric(k, float(flat[k]), _now_ms(), 0) for k in trial.overrides
            if _is_number(flat.get(k)) and k not in run.data.metrics]  # numeric axes plot as metrics too
    for i in range(0, len(params), BATCH_PARAMS):
        client.log_batch(run_id, params=params[i:i + BATCH_PARAMS])
    new_tags = [RunTag(k, v) for k, v in tags.items() if run.data.tags.get(k) != v]
    if axes or new_tags:
        client.log_batch(run_id, metrics=axes, tags=new_tags)
    if not found:
        client.log_text(run_id, C.to_yaml(trial.config), "config.yaml")
    return run_id


def reopen(client: MlflowClient, run: Run) -> None:
    """A FAILED or SCHEDULED run back to RUNNING, without the reason of the failure it resumes from."""
    if run.info.status in ("FAILED", "SCHEDULED"):
        client.update_run(run.info.run_id, status="RUNNING")
        for tag in (ERROR, FOR_GOOD):
            if tag in run.data.tags:
                client.delete_tag(run.info.run_id, tag)


def finish(client: MlflowClient, run_id: str, status: str = "FINISHED", tags: dict[str, str] | None = None) -> None:
    """End a run: FINISHED, FAILED or KILLED, with tags saying how."""
    if tags:
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.from_string(status)))


def finish_unless_settled(client: MlflowClient, run_id: str) -> None:
    """A trial's own close: FINISHED, unless the driver already settled the run.

    A trial that Ctrl-C stopped can still reach its end after the driver marked its run FAILED; the driver's
    word stands and `resume` runs the trial again, logging only what is missing."""
    if client.get_run(run_id).info.status == "RUNNING":
        finish(client, run_id)


def close_stopped(client: MlflowClient, run_id: str) -> None:
    """Close a run Tune stopped: FINISHED, tagged `unisweep.stopped_early` unless it reached its last eval point.

    ASHA also "stops" every trial at its last rung, after the final report: that one is simply finished.
    """
    steps = [m.step for m in client.get_metric_history(run_id, EVAL_CLOCK)]
    early = {} if steps and max(steps) >= 100 else {STOPPED_EARLY: "true"}
    finish(client, run_id, "FINISHED", early)


def unschedule(client: MlflowClient, run_id: str) -> None:
    """Set back to SCHEDULED the run of a trial that never started (the sweep stopped first): `resume` runs it."""
    client.update_run(run_id, status="SCHEDULED")


def fail(client: MlflowClient, run_id: str, error: BaseException | str, for_good: bool = False) -> None:
    """End a run FAILED with its reason as one line (tag `unisweep.error`); `for_good`: a rerun would fail the
    same way (a diverging loss), so `run` and `resume` leave it alone unless told `--retry-failed`."""
    reason = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    tags = {ERROR: " ".join(str(reason).split())[:MAX_TAG_CHARS], **({FOR_GOOD: "true"} if for_good else {})}
    finish(client, run_id, "FAILED", tags)


class RunLogger:
    """`report(metrics, step, state=None)` for `unified.train.train`, logging into one run at step = percent.

    On construction it reads every (key, step) the run already holds; a retried trial replays reports from its
    last checkpoint and this logs only the ones that are new. A report that carries anything beyond `train/*`
    (an eval point) is logged at once, together with whatever waits; `train/*` alone, arriving at every
    percent, waits up to `HOLD_TRAIN_S` so that a trial pays one commit per batch, not per percent. Call
    `flush()` when training ends early. `state` (a checkpoint) is the driver's business.
    """

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id
        keys = client.get_run(run_id).data.metrics
        self.logged = {(m.key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}
        self.pending: list[Metric] = []
        self.flushed_at = time.monotonic()

    def __call__(self, metrics: dict[str, float], step: int, state=None) -> None:
        now, step = _now_ms(), int(step)
        new = [Metric(k, float(v), now, step) for k, v in metrics.items()
               if v is not None and (k, step) not in self.logged]
        self.logged.update((m.key, step) for m in new)
        self.pending += new
        if any(not k.startswith("train/") for k in metrics) or time.monotonic() - self.flushed_at >= HOLD_TRAIN_S:
            self.flush()

    def flush(self) -> None:
        for i in range(0, len(self.pending), BATCH_METRICS):
            self.client.log_batch(self.run_id, metrics=self.pending[i:i + BATCH_METRICS])
        self.pending, self.flushed_at = [], time.monotonic()

    def images(self, images: dict[str, np.ndarray]) -> None:
        """Image grids as PNG artifacts, e.g. {"generated": ..., "real": ...} -> generated.png, real.png; an array
        of strings (what each prompt asked for) as a JSON list, e.g. {"prompts": ...} -> prompts.json."""
        for name, batch in images.items():
            if len(batch) and np.asarray(batch).dtype.kind in "US":
                self.client.log_dict(self.run_id, [str(s) for s in batch], f"{name}.json")
            elif len(batch):
                log_image_grid(self.client, self.run_id, batch, f"{name}.png")


def log_image_grid(client: MlflowClient, run_id: str, images: np.ndarray, path: str = "generated.png",
                   columns: int | None = None) -> None:
    """Tile uint8 images [n, h, w, 3] into one PNG artifact at `path`, with a 2-pixel white gap."""
    images = np.asarray(images, dtype=np.uint8)
    n, h, w, _ = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows, gap = math.ceil(n / cols), 2
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, dtype=np.uint8)  # [H, W, 3]
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = img
    client.log_image(run_id, grid, artifact_file=path)


# ---------------------------------------------------------------- queries


def connect(uri: str, experiment: str | None) -> tuple[MlflowClient, str | list[str]]:
    """An MlflowClient and the experiment's id, for readers; NotFound when the experiment does not exist.
    `experiment=None`: the ids of every active experiment."""
    client = _reader(uri)
    if experiment is None:
        return client, [e.experiment_id for e in _experiments(client)]
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise NotFound(f"no experiment {experiment!r} in {uri}")
    return client, found.experiment_id


def find_experiment(uri: str, sweeps: list[str], experiment: str | None = None) -> str:
    """The experiment that holds `sweeps` (names): `experiment` (--experiment), else $MLFLOW_EXPERIMENT_NAME, else
    the one whose parent runs carry those names, found by one search over every experiment.

    NotFound when no experiment holds a sweep; Ambiguous when one is in several, or they are in different ones.
    """
    named = experiment or os.environ.get(EXPERIMENT_ENV)
    if named:
        return named

    client = _reader(uri)
    names = {e.experiment_id: e.name for e in _experiments(client)}
    valid = [s for s in sweeps if NAME_PATTERN.match(s)]  # any other name would break the filter, and names nothing
    parents = []
    if valid and names:  # MLflow's IN does not take tags: several names read every parent run (one per sweep)
        wanted = {ROLE: "sweep", **({SWEEP: valid[0]} if len(valid) == 1 else {})}
        parents = _search(client, list(names), _tag_filter(wanted))
    held: dict[str, set[str]] = {s: set() for s in sweeps}
    for run in parents:
        if run.data.tags.get(SWEEP) in held:
            held[run.data.tags[SWEEP]].add(names[run.info.experiment_id])
    for sweep, where in held.items():
        if not where:
            raise NotFound(f"sweep {sweep!r} has no trial runs in {uri} (no experiment holds its parent run)")
        if len(where) > 1:
            raise Ambiguous(f"sweep {sweep!r} is in experiments {_names(where)} of {uri}: name one with --experiment")
    found = set().union(*held.values())
    if len(found) > 1:
        each = "; ".join(f"{s}: {_names(e)}" for s, e in held.items())
        raise Ambiguous(f"the sweeps are in different experiments ({each}): name one with --experiment")
    return found.pop()


def finished_trials(client: MlflowClient, experiment_id: str, sweep: str) -> set[tuple[str, int]]:
    """(cell, seed) of every FINISHED trial of the sweep: what `run` and `resume` skip."""
    where = "attributes.status = 'FINISHED'"
    return {(r.data.tags[CELL], int(r.data.tags[SEED])) for r in search_trials(client, experiment_id, sweep, where)}


def failed_for_good(client: MlflowClient, experiment_id: str, sweep: str) -> dict[tuple[str, int], str]:
    """{(cell, seed): run name} of the sweep's trials FAILED for good: skipped unless `--retry-failed`."""
    where = f"attributes.status = 'FAILED' and tags.`{FOR_GOOD}` = 'true'"
    return {(r.data.tags[CELL], int(r.data.tags[SEED])): r.info.run_name
            for r in search_trials(client, experiment_id, sweep, where)}


def mark_stale_running_failed(client: MlflowClient, experiment_id: str, sweep: str, smoke: bool = False) -> int:
    """Mark the sweep's RUNNING trials (at this smoke flag) FAILED: call at the start of `run`/`resume`, once this
    driver holds the sweep's lease (sweeps/lease.py), so none of them belongs to a live driver."""
    where = f"attributes.status = 'RUNNING' and tags.`{SMOKE}` = '{_flag(smoke)}'"
    stale = search_trials(client, experiment_id, sweep, where)
    for run in stale:
        fail(client, run.info.run_id, "its driver died (the sweep's lease expired); rerun by the next driver")
    return len(stale)


def search_trials(client: MlflowClient, experiment_id: str | list[str], sweep: str | None = None,
                  where: str | None = None, page_size: int = 1000, order_by: list[str] | None = None) -> list[Run]:
    """Every trial run (of one sweep, if given) matching `where`; dotted keys need no backticks."""
    tags = {ROLE: "trial", **({SWEEP: sweep} if sweep else {})}
    clauses = [_tag_filter(tags)] + ([quote_keys(where)] if where else [])
    return _search(client, experiment_id, " and ".join(clauses), page_size, order_by)


def quote_keys(where: str) -> str:
    """``params.model.variant = 'x'`` -> ``params.`model.variant` = 'x'``: MLflow needs backticks
    (docs/PLATFORM.md §6)."""
    return re.sub(r"\b(params|metrics|tags|attributes)\.(?!`)([\w./-]*[\w])",
                  lambda m: f"{m[1]}.`{m[2]}`" if re.search(r"[./-]", m[2]) else m[0], where)


def _search(client: MlflowClient, experiment_id: str | list[str], filter_string: str, page_size: int = 1000,
            order_by: list[str] | None = None) -> list[Run]:
    ids = [experiment_id] if isinstance(experiment_id, str) else experiment_id
    runs, token = [], None
    while True:
        page = client.search_runs(ids, filter_string, max_results=page_size, order_by=order_by, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _reader(uri: str) -> MlflowClient:
    """A client for a reader: NotFound where a SQLite store does not exist (MLflow would create an empty one)."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise NotFound(f"no MLflow store at {uri} (give --tracking-uri or set $MLFLOW_TRACKING_URI)")
    return open_client(uri)


def _experiments(client: MlflowClient) -> list:
    """Every active experiment of the store."""
    found, token = [], None
    while True:
        page = client.search_experiments(max_results=1000, page_token=token)
        found.extend(page)
        token = page.token
        if not token:
            return found


def _names(experiments: set[str]) -> str:
    return ", ".join(repr(e) for e in sorted(experiments))


def _tag_filter(tags: dict[str, str]) -> str:
    return " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _now_ms() -> int:
    return int(time.time() * 1000)
