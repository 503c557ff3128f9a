"""Run a sweep on Ray Tune, every trial logged to MLflow exactly once.

    unisweep run sweeps/quickstart.yaml [--smoke] [--tracking-uri URI] [--address ADDR] [--storage PATH]

The driver (docs/DESIGN.md §8): creates the store once before any trial (docs/PLATFORM.md §6 race), marks runs a dead
driver left RUNNING as FAILED, finds or creates the sweep's parent run, skips the (cell, seed) pairs MLflow
holds FINISHED, builds stage 0 once per dataset in this process, then hands Tune the rest:

- a grid: one Tuner over every remaining trial; the driver creates each trial's MLflow run first and
  passes its id in (`sweeps.trial.run_trial`).
- a search: one Optuna study per grid cell (Ray's OptunaSearch refuses grid axes; ours does not), each a
  Tuner with `OptunaSearch` (single- or multi-objective) and optionally ASHA over the eval points. A sample's
  run can only be made once it is sampled, so the trial finds or creates it (same `tracking.trial_run`,
  tagged `unisweep.study`). The study lives in `<storage>/optuna.db`, so `resume` continues it, and a
  study's FINISHED samples count against its `num_samples`.

Concurrency comes from `sweeps.resources`, never from Ray's defaults, so a 2-CPU machine never deadlocks.
After each Tuner the driver settles every run it launched: ASHA-stopped ones are FINISHED (tag
`unisweep.stopped_early`), any left RUNNING by a dead trial process are FAILED. Ctrl-C (`sweeps.interrupt`)
stops every trial and launches no further Tuner; the trials it cut short are FAILED, those it never started
go back to SCHEDULED, and `resume` runs both in the same runs.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
import typing
from pathlib import Path

from sweeps import defaults, lease, tracking
from sweeps import resources as R
from sweeps.interrupt import catch_ctrl_c
from sweeps.job import TrialJob
from sweeps.sequential import Look, Undecided, next_round
from sweeps.spec import SweepSpec, Trial, common_config, expand, reseeded, varying_axes
from unified import config as C

# Train's controller polls its workers every 2 s by default, which holds a finished trial's teardown for
# seconds (docs/PLATFORM.md §5); a value the user exported wins.
TRAIN_ENV = {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")}
CRASH_ENV = "UNISWEEP_CRASH_AFTER"  # "<percent>:<marker dir>[:<rank>]": each trial's rank (0) dies once after that


@dataclasses.dataclass
class SweepResult:
    trials: int  # planned: grid cells x seeds, or studies x num_samples
    skipped: int  # already FINISHED in MLflow
    finished: int  # finished in this launch (ASHA-stopped included)
    failed: list[str]  # trial names
    wall_s: float
    rows: list[dict] = dataclasses.field(default_factory=list)  # per trial of this launch, for the final table
    not_run: list[str] = dataclasses.field(default_factory=list)  # never started: the sweep was interrupted
    interrupted: bool = False
    signum: int = 0  # the signal that interrupted it (SIGINT 2, SIGTERM 15)
    tracking_uri: str = ""  # where it logged
    experiment: str = ""
    failed_for_good: list[str] = dataclasses.field(default_factory=list)  # FAILED earlier for good, not rerun


@dataclasses.dataclass(frozen=True)
class SweepContext:
    """What every step of one launch shares, fixed once this driver holds the sweep's lease."""

    spec: SweepSpec
    smoke: bool
    client: typing.Any  # a PatientClient: an outage is waited out
    experiment: str  # id
    experiment_name: str
    parent: str  # the sweep's parent run id
    uri: str
    storage: str
    address: str | None
    cache_dir: str
    progress: typing.Callable[[str], None]
    retry_failed: bool


def run_sweep(spec: SweepSpec, spec_text: str, smoke: bool = False, tracking_uri: str | None = None,
              address: str | None = None, cache_dir: str | None = None, storage: str | None = None,
              progress=print, experiment_name: str | None = None, retry_failed: bool = False,
              undecided: Undecided | None = None) -> SweepResult:
    """`tracking_uri` and `experiment_name` (--tracking-uri, --experiment) win over the spec's (sweeps/defaults.py).
    Trials FAILED for good (a diverging loss) are not run again unless `retry_failed`. A spec with seeds until
    decided runs its later rounds only when given `undecided` (the analysis, composed in by the CLI)."""
    t0 = time.perf_counter()
    uri = defaults.tracking_uri(tracking_uri, spec.tracking.uri)
    name = defaults.experiment_name(experiment_name, spec.tracking.experiment)
    storage = os.path.abspath(os.path.expanduser(storage)) if storage and "://" not in storage else (
        storage or spec.storage)
    cells = expand(spec, smoke)
    from sweeps.patient import DRIVER_PATIENCE_S, PatientClient, patience_s  # late: MLflow takes a second

    experiment = tracking.ensure_store(uri, name)  # an unreachable store fails here, at once
    client = PatientClient(uri, max(patience_s(), DRIVER_PATIENCE_S))  # later, an outage is waited out
    # One live driver per sweep: hold its lease before touching any of its runs
    existing = tracking.sweep_run(client, experiment, spec.name, smoke)
    held = lease.acquire(client, existing.info.run_id, spec.name) if existing else None
    parent = tracking.start_sweep(client, experiment, spec, spec_text, smoke, storage)
    held = held or lease.acquire(client, parent, spec.name)
    ctx = SweepContext(spec, smoke, client, experiment, name, parent, uri, storage, address,
                       str(cache_dir or C.default_cache_dir()), progress, retry_failed)
    try:
        if held.took_over:
            progress(f"took over sweep {spec.name} from a driver that stopped answering "
                     f"({held.took_over.describe()})")
        stale = tracking.mark_stale_running_failed(client, experiment, spec.name, smoke)
        if stale:
            progress(f"marked {stale} run(s) left RUNNING by an earlier driver as FAILED")
        result = _rounds(ctx, cells, undecided)
        complete = not (result.failed or result.not_run or result.failed_for_good or result.interrupted)
        tracking.finish(client, parent, "FINISHED" if complete else "FAILED")
        return dataclasses.replace(result, wall_s=time.perf_counter() - t0)
    finally:
        held.release()


def _rounds(ctx: SweepContext, cells: list[Trial], undecided: Undecided | None) -> SweepResult:
    """The first round's trials, then, for seeds until decided, a round per look while cells stay undecided."""
    spec = ctx.spec
    plan = None if ctx.smoke and spec.smoke_seeds else spec.sequential
    result = _run_trials(ctx, cells)
    while plan and undecided and not result.interrupted:
        look = Look(ctx.uri, ctx.experiment_name, spec.name, ctx.smoke, plan.first, plan.step, plan.max,
                    plan.precision, _members(cells) or {spec.name: frozenset(t.cell for t in cells)})
        open_cells = undecided(look)
        added = next_round(plan, cells, open_cells, lambda t, seed: reseeded(spec.name, t, seed, spec.seed_scope))
        if not added:
            break
        ctx.progress(f"seeds until decided: {len(open_cells)} cell(s) still feed an undecided comparison; "
                     f"{len(added)} trial(s) added")
        cells = cells + added
        result = _merged(result, _run_trials(ctx, cells))
    return result


def _members(cells: list[Trial]) -> dict[str, frozenset[str]]:
    """A suite's members and the cells each asked for (empty for a plain sweep)."""
    members: dict[str, set[str]] = {}
    for t in cells:
        for m in t.members:
            members.setdefault(m, set()).add(t.cell)
    return {m: frozenset(c) for m, c in members.items()}


def _merged(before: SweepResult, now: SweepResult) -> SweepResult:
    """Two rounds of one launch as one result: `now` counts `before`'s finished trials as already FINISHED."""
    return dataclasses.replace(now, skipped=now.skipped - before.finished, finished=before.finished + now.finished,
                               failed=sorted(set(before.failed) | set(now.failed)), rows=before.rows + now.rows)


def _run_trials(ctx: SweepContext, cells: list[Trial]) -> SweepResult:
    """Run what of `cells` MLflow does not hold FINISHED (nor FAILED for good); the parent run stays open."""
    spec, client, experiment, progress, smoke = ctx.spec, ctx.client, ctx.experiment, ctx.progress, ctx.smoke
    failed_before: list[str] = []  # FAILED for good earlier (a diverging loss): not rerun unless retry_failed
    if spec.search:
        todo = _study_todo(client, experiment, spec, cells, spec.num_samples(smoke))
        planned, to_run = len(cells) * spec.num_samples(smoke), sum(n for _, n in todo)
    else:
        done = tracking.finished_trials(client, experiment, spec.name)
        for_good = {} if ctx.retry_failed else tracking.failed_for_good(client, experiment, spec.name)
        todo = [t for t in cells if (t.cell, t.seed) not in done and (t.cell, t.seed) not in for_good]
        failed_before = sorted(for_good[k] for k in for_good.keys() & {(t.cell, t.seed) for t in cells})
        planned, to_run = len(cells), len(todo)
    left_out = f", {len(failed_before)} FAILED for good earlier (--retry-failed reruns them)" if failed_before else ""
    progress(f"sweep {spec.name}: {planned} trials, {planned - to_run - len(failed_before)} already FINISHED"
             f"{left_out}, {to_run} to run")
    if not to_run:
        return SweepResult(planned, planned - len(failed_before), 0, [], 0.0, tracking_uri=ctx.uri,
                           experiment=ctx.experiment_name, failed_for_good=failed_before)

    t_stage0 = time.perf_counter()
    _build_stage0([t for t, *_ in todo] if spec.search else todo, ctx.cache_dir, progress)
    client.log_metric(ctx.parent, "time/stage0_s", time.perf_counter() - t_stage0)  # apart from the sweep's cost
    # The store's URI is not in the job: Tune writes each trial's config to storage (params.json), and a URI may
    # hold a password. `_Launch` hands it to the trials through the object store instead.
    r = spec.resources
    base = TrialJob(spec.name, smoke, experiment, ctx.parent, ctx.cache_dir, ctx.storage, r.workers_per_trial,
                    r.cpus_per_worker, r.gpus_per_worker, r.execution, r.max_failures,
                    tuple(varying_axes(spec, smoke)), _crash_after())
    with _ray(ctx.address), catch_ctrl_c(progress) as stop:
        launch = _Launch(spec, client, to_run, ctx.storage, progress, stop, ctx.uri)
        if spec.search:
            common = C.flatten(common_config(spec, smoke))
            for study, n in todo:
                if stop.requested:
                    break
                launch.study(study, n, dataclasses.replace(
                    base, name=study.name, common=common, point=study.overrides, seed=study.seed, study=study.cell,
                    search_keys=tuple(spec.search.space)))
        else:
            launch.grid([dataclasses.replace(base, name=t.name, config=C.flatten(t.config), run_id=tracking.trial_run(
                client, experiment, ctx.parent, t, smoke, axes=base.axes)) for t in todo])
        finished, failed, not_run = launch.settle(experiment)
    for trial in failed:
        progress(f"FAILED {trial}")
    return SweepResult(planned, planned - to_run - len(failed_before), finished, failed, 0.0,
                       list(launch.progress.rows.values()), not_run, stop.requested, stop.signum, ctx.uri,
                       ctx.experiment_name, failed_before)


def _study_todo(client, experiment: str, spec: SweepSpec, cells: list[Trial], samples: int) -> list[tuple[Trial, int]]:
    """Per grid cell, the samples its study still owes: num_samples minus its FINISHED runs."""
    todo = []
    for cell in cells:
        done = tracking.search_trials(client, experiment, spec.name,
                                      f"attributes.status = 'FINISHED' and tags.`{tracking.STUDY}` = '{cell.cell}'")
        if len(done) < samples:
            todo.append((cell, samples - len(done)))
    return todo


def _crash_after() -> tuple[int, str, int] | None:
    raw = os.environ.get(CRASH_ENV)
    if not raw:
        return None
    percent, _, rest = raw.partition(":")
    marker_dir, rank = (rest.rsplit(":", 1) if re.search(r":\d+$", rest) else (rest, "0"))
    return int(percent), marker_dir, int(rank)


def _build_stage0(trials: list[Trial], cache_dir: str, progress) -> None:
    """Stage 0 once per distinct dataset, here, so concurrent trials only ever load it.

    A cache that `ready` vouches for is not loaded: that would import the vision stack (about 7 s) for nothing.
    """
    from unified.vision import ready

    distinct = {C.stable_hash([C.flatten(t.config.data), C.flatten(t.config.vision)]): t.config for t in trials}
    missing = [cfg for cfg in distinct.values() if not ready.is_ready(cfg, cache_dir)]
    if missing:
        from unified import determinism
        from unified.data.dataset import load_pool
        from unified.data.tokenizer import build_tokenizer
        from unified.vision.stage0 import build_spaces

        determinism.pin()  # the kernels were pinned at start-up (unisweep/cli.py); here the threads and algorithms
        for cfg in missing:
            pool = load_pool(cfg.data, cache_dir)
            build_spaces(cfg, pool, build_tokenizer(cfg.data.domain, cfg.data.tokenizer_path), cache_dir)
    text = [t.config for t in trials if t.config.backbone.init == "text"]
    if text:  # the text priors of `backbone.init: text` (unified/text_prior.py), also once per dataset
        from unified.data.dataset import load_pool
        from unified.data.tokenizer import build_tokenizer
        from unified.text_prior import build_text_prior, prior_dir

        for folder, cfg in {prior_dir(cfg, cache_dir): cfg for cfg in text}.items():
            if not folder.is_dir():
                tokenizer = build_tokenizer(cfg.data.domain, cfg.data.tokenizer_path)
                build_text_prior(cfg, load_pool(cfg.data, cache_dir), tokenizer, cache_dir)
    progress(f"stage 0 ready for {len(distinct)} dataset(s), {len(missing)} checked by loading")


class _ray:
    """Start a local Ray (or join `address`) unless one is up; shut down only what we started.

    The dashboard stays on: its State API lets Train V2's own cleaner free a stopped trial's workers and then
    exit. The sweep does not depend on it: `sweeps.orphans` frees those workers even when the API is down.
    """

    def __init__(self, address: str | None):
        self.address = address

    def __enter__(self):
        import ray

        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=self.address, include_dashboard=True, log_to_driver=False,
                     runtime_env={"env_vars": trial_env_vars()})
        return self

    def __exit__(self, *exc):
        import ray

        if self.started:
            ray.shutdown()


def trial_env_vars() -> dict[str, str]:
    """What every trial process gets in its environment. Under `ray job submit`, the job's runtime env already
    reaches them and Ray refuses a driver that sets one of its keys again: the submitter's values win."""
    from sweeps.ray_internals import job_env_vars
    from unified import determinism

    # the CPU pin (or its switch off) reaches each trial process before it imports torch: the kernels it trains
    # with and the stage-0 keys it looks up are the ones a pinned driver built stage 0 with
    ours = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **TRAIN_ENV, **determinism.pinned_env()}
    theirs = job_env_vars()
    return {k: v for k, v in ours.items() if k not in theirs}


class _Launch:
    """The Tuners of one `run`: resources checked against the live cluster, one progress display, settling."""

    def __init__(self, spec: SweepSpec, client, total: int, storage: str, progress, stop, uri: str):
        import ray

        from sweeps.progress import Progress

        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # with verbose=0, Tune's legacy output prints nothing
        # Keeping one checkpoint per trial makes Tune snapshot its (small, local) state after each one, and warn
        # about it at every eval point of a busy sweep: the cost is known and paid on purpose
        os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
        R.check_fits(spec, [n["Resources"] for n in ray.nodes() if n.get("Alive")])
        cluster = ray.cluster_resources()
        self.concurrency = R.max_concurrent(spec, cluster.get("CPU", 0), cluster.get("GPU", 0))
        self.spec, self.client, self.storage, self.stop, self.uri = spec, client, storage, stop, uri
        self.stamp = time.strftime("%Y%m%d-%H%M%S")  # Tune folders per launch; Train's stay per trial
        metric = spec.search.metric[0] if spec.search else "eval/und/total"
        mode = spec.search.mode[0] if spec.search else "max"
        self.progress = Progress(total, min(total, self.concurrency), metric, mode, progress)
        self.launched: set[str] = set()  # run ids of this launch's trials
        self.errored: dict[str, str] = {}  # trial name -> error, for trials that never reported a run id
        need = R.trial_resources(spec)
        path = f"Ray Train, {spec.resources.workers_per_trial} worker(s)" if R.uses_ray_train(spec) else "in-process"
        gpus = f", {need['GPU']:g} GPU" if need["GPU"] else ""
        progress(f"running {total} trial(s), at most {min(total, self.concurrency)} at a time, "
                 f"{need['CPU']:g} CPU{gpus} each ({path})")

    def grid(self, jobs: list[TrialJob]) -> None:
        from ray import tune

        self.launched.update(j.run_id for j in jobs)
        self._fit(f"{self.spec.name}-{self.stamp}", {"job": tune.grid_search([j.as_config() for j in jobs])},
                  len(jobs))

    def study(self, cell: Trial, samples: int, job: TrialJob) -> None:
        from sweeps.search import asha, optuna_search

        s = self.spec.search
        self._fit(f"{self.spec.name}-{self.stamp}-{cell.cell}", {"job": job.as_config()}, samples,
                  search_alg=optuna_search(s, self.storage, f"{job.sweep}{'-smoke' if job.smoke else ''}-"
                                                            f"{cell.cell}"),
                  scheduler=asha(s, cell.config.train.eval_points) if s.asha else None)

    def _fit(self, name: str, param_space: dict, n: int, search_alg=None, scheduler=None) -> None:
        from ray import tune

        from sweeps.orphans import FreeOrphans
        from sweeps.trial import run_trial, trial_name

        train_path = R.uses_ray_train(self.spec)
        trainable = tune.with_resources(tune.with_parameters(run_trial, tracking_uri=self.uri),
                                        {k.lower(): v for k, v in R.bundles(self.spec)[0].items()})
        callbacks = [self.progress, FreeOrphans()] if train_path else [self.progress]
        tuner = tune.Tuner(
            trainable,
            param_space=param_space,
            tune_config=tune.TuneConfig(
                search_alg=search_alg, scheduler=scheduler, num_samples=1 if search_alg is None else n,
                max_concurrent_trials=min(n, self.concurrency), trial_name_creator=trial_name,
                trial_dirname_creator=trial_name,
                # A reused actor keeps its imports (about 8 s a trial on the Train path). Not where ASHA may stop
                # a Train trial: its actor must die so that the controller it owns, and its workers, go too.
                reuse_actors=not train_path or scheduler is None),
            run_config=tune.RunConfig(
                name=name, storage_path=self.storage, verbose=0, callbacks=callbacks, stop=self.stop,  # Ctrl-C
                # Tune retries a trial whose process died (its node was lost, say) from its last eval-point
                # checkpoint, of which it keeps only the latest; on the Train path Train's own FailureConfig
                # restarts lost workers, and a Tune retry's TorchTrainer restores the run's last checkpoint
                failure_config=tune.FailureConfig(max_failures=self.spec.resources.max_failures),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )
        for result in tuner.fit():
            metrics = result.metrics or {}
            run_id = metrics.get("run_id")
            if result.error is not None:
                self.errored[_name_of(result)] = _cause(result.error)
            if run_id:
                self.launched.add(run_id)
                if result.error is None and not self.stop.requested:  # an interrupted trial is not finished
                    self._close_stopped(run_id)

    def _close_stopped(self, run_id: str) -> None:
        """A trial that ended without error but left its run RUNNING was stopped by ASHA: close it as such.

        `run_trial` leaves a stopped trial's run to the driver, which alone knows ASHA's stop from a Ctrl-C."""
        if self.client.get_run(run_id).info.status == "RUNNING":
            tracking.close_stopped(self.client, run_id)

    def settle(self, experiment: str) -> tuple[int, list[str], list[str]]:
        """Close what this launch left RUNNING; return how many trials finished, the failed, the never started.

        A trial Tune never started (an interrupted sweep) goes back to SCHEDULED; one that started and left
        its run RUNNING was cut short by Ctrl-C, or its process died: FAILED, with the reason.
        """
        started = set(self.progress.rows)  # Tune's trial names: run names with "/" as "-"
        reason = ("stopped: the sweep was interrupted" if self.stop.requested
                  else "the trial's process ended without closing its run")
        for run in tracking.search_trials(self.client, experiment, self.spec.name, "attributes.status = 'RUNNING'"):
            tune_name = run.info.run_name.replace("/", "-")
            if run.info.run_id in self.launched and tune_name not in started:
                tracking.unschedule(self.client, run.info.run_id)
            else:  # the trial's own error when Tune has it (say, a store outage that outlasted its patience)
                tracking.fail(self.client, run.info.run_id, self.errored.get(tune_name, reason))
                self.launched.add(run.info.run_id)
        runs = [self.client.get_run(run_id) for run_id in self.launched]
        for r in runs:  # the final table says what MLflow holds, not what Tune last showed of a stopped trial
            row = self.progress.rows.get(r.info.run_name.replace("/", "-"))
            if row and row["status"] == "RUNNING":
                row["status"] = r.info.status
        failed = {r.info.run_name for r in runs if r.info.status == "FAILED"}
        not_run = {r.info.run_name for r in runs if r.info.status == "SCHEDULED"}
        finished = sum(r.info.status == "FINISHED" for r in runs)
        run_name = {r.info.run_name.replace("/", "-"): r.info.run_name for r in runs}  # Tune's names -> MLflow's
        errored = {run_name.get(n, n) for n in self.errored}  # a trial counted once, under its run's name
        return finished, sorted(failed | errored), sorted(not_run)


def _cause(error: BaseException) -> str:
    """What failed a trial, one line: the exception its function raised (Ray wraps it), without passwords."""
    cause = getattr(error, "cause", None) or error
    lines = str(cause).strip().splitlines() or [""]
    return defaults.redact(f"{type(cause).__name__}: {lines[0]}"[:500])


def _name_of(result) -> str:
    return Path(result.path).name if result.path else "?"


def resume_sweep(name: str, tracking_uri: str | None = None, experiment: str | None = None,
                 smoke: bool | None = None, **kwargs) -> SweepResult:
    """`unisweep resume NAME`: rerun the sweep from the spec its parent run holds, so only what is missing runs.

    Of the sweep's parent runs (one per smoke flag) it takes the one `smoke` names, else the latest one that
    did not finish, else the latest. The store is the one it was found in, whatever the spec says; the
    experiment, unless named, the one that holds the sweep; the storage, unless named, the one the launch
    used (where its Train checkpoints and Optuna studies are).
    """
    import dataclasses as dc

    from sweeps.errors import NotFound
    from sweeps.spec import Tracking, parse_spec

    uri = defaults.tracking_uri(tracking_uri)
    experiment = tracking.find_experiment(uri, [name], experiment)
    client, experiment_id = tracking.connect(uri, experiment)
    parents = tracking.sweep_runs(client, experiment_id, name)
    if smoke is not None:
        parents = [p for p in parents if p.data.tags.get(tracking.SMOKE) == ("true" if smoke else "false")]
    if not parents:
        raise NotFound(f"no sweep {name!r}{' (smoke)' if smoke else ''} in {uri} (experiment {experiment!r})")
    parent = max(parents, key=lambda p: (p.info.status != "FINISHED", p.info.start_time))
    text = tracking.spec_text(client, parent.info.run_id)
    spec = dc.replace(parse_spec(text), tracking=Tracking(uri, experiment))
    if not kwargs.get("storage"):
        kwargs["storage"] = parent.data.tags.get(tracking.STORAGE)  # None: the spec's
    return run_sweep(spec, text, parent.data.tags.get(tracking.SMOKE) == "true", uri, experiment_name=experiment,
                     **kwargs)
