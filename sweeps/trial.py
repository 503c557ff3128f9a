"""One Tune trial: find its MLflow run, train (here, or on a Ray Train worker group), close the run.

Ray runs these functions in other processes; they must live in the installed package (docs/PLATFORM.md §10).
`run_trial(config, tracking_uri)` is the Tune function trainable. `config["job"]` is the `sweeps.job.TrialJob`
the driver fixed for the trial; a search adds its sampled values as top-level dotted keys. The store's URI comes
apart from the config, so that Tune never writes it to storage.
Two paths (docs/DESIGN.md §8):

- in-process (`execution: auto`, one worker): `unified.train.train` runs in this Tune trial process and
  reports each eval point to Tune; rank "0" is this process.
- Ray Train (`workers_per_trial > 1` or `execution: train`): this trial only drives a `TorchTrainer`
  (docs/PLATFORM.md §4 pattern) whose workers run `train_worker`; rank 0 logs to MLflow and reports a checkpoint
  at every eval point; `TuneReportCallback` forwards rank 0's reports to Tune (and so to ASHA and Optuna);
  Train's FailureConfig restarts the workers from the last checkpoint, and a rerun of the same trial name
  restores it too (Train V2 keeps the run's checkpoint index under `<storage>/train/<name>`).

Either way every metric goes through `tracking.RunLogger`, which never logs a (key, step) twice, so a
restarted trial adds only what is new. A diverging loss is a result, not a crash: it is recorded on the run
(tag `unisweep.error`, status FAILED) and not retried.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from pathlib import Path

from sweeps import schema
from sweeps.job import TrialJob

STATE_FILE = "state.pt"
NODE_TAG, NODES_TAG, RESUMED_TAG = schema.NODE, schema.NODES, schema.RESUMED_FROM  # the record's (sweeps/schema.py)


def run_trial(config: dict, tracking_uri: str) -> None:
    """`tracking_uri` arrives apart from `config` (tune.with_parameters), so Tune never writes it to storage."""
    from ray import tune

    from sweeps import tracking
    from sweeps.patient import PatientClient

    job = dataclasses.replace(TrialJob.from_config(config["job"]), uri=tracking_uri)
    stop = _stop_event()
    client = PatientClient(job.uri)
    if job.run_id is None:
        job = _search_sample(client, job, config)
    run = client.get_run(job.run_id)
    if run.info.status == "FINISHED":  # a search sampled a config that already ran: hand Optuna its result
        tune.report({**_tune_metrics(run.data.metrics, 100), "run_id": job.run_id})
        return
    tracking.reopen(client, run)  # Tune's retry of a trial whose first attempt failed
    _tag_node(client, job.run_id)
    from unified.errors import DivergenceError

    try:
        if job.on_ray_train:
            _drive_trainer(job)
        else:
            _train_here(job)
    except DivergenceError as e:  # a result, not a crash: FAILED for good, and Tune sees the trial end cleanly
        tracking.fail(client, job.run_id, e, for_good=True)
        return
    except BaseException as e:  # noqa: BLE001 - a failure closes the run, then re-raises
        # A stop (ASHA, or Ctrl-C through the driver's stopper) leaves the run RUNNING: only the driver knows
        # which it was, and settles it after the Tuner (stopped early: FINISHED; interrupted: FAILED).
        if not (isinstance(e, SystemExit) or stop.is_set()):
            tracking.fail(client, job.run_id, e)
        raise
    tracking.finish_unless_settled(client, job.run_id)


# ---------------------------------------------------------------- the in-process path


def _train_here(job: TrialJob) -> None:
    import torch
    from ray import tune

    from unified import config as C
    from unified.train import train

    _pin(job)
    checkpoint = tune.get_checkpoint()  # set when Tune retries this trial (resources.max_failures)
    resume = _load_state(checkpoint.path) if checkpoint else None
    _tag_resumed(job, resume)

    def publish(metrics: dict, state: dict | None):
        if state is None:
            return  # Tune hears only the eval points: ASHA counts them as its time
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, Path(d) / STATE_FILE)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    report = _Reporter(job, publish, rank=0)
    try:
        train(C.from_flat(job.config), report, resume=resume, cache_dir=job.cache_dir)
    finally:
        report.flush()


# ---------------------------------------------------------------- the Ray Train path


def _drive_trainer(job: TrialJob) -> None:
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    use_gpu = job.gpus_per_worker > 0
    per_worker = {"CPU": job.cpus_per_worker, **({"GPU": job.gpus_per_worker} if use_gpu else {})}
    trainer = TorchTrainer(
        train_worker,
        train_loop_config={"job": job},
        scaling_config=ray.train.ScalingConfig(num_workers=job.workers, use_gpu=use_gpu,
                                               resources_per_worker=per_worker),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=ray.train.RunConfig(
            # keyed by the MLflow run: a rerun of this run restores its checkpoint; another store's never does
            name=f"{job.name.replace('/', '-')}-{job.run_id}",
            storage_path=f"{job.storage.rstrip('/')}/train",  # a local path or s3://...
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=1),
            failure_config=ray.train.FailureConfig(max_failures=job.max_failures),
            callbacks=[TuneReportCallback()]),  # built inside the Tune trial, as it must be (docs/PLATFORM.md §4)
    )
    trainer.fit()  # Tune heard every eval point through the callback; a diverged run is FAILED for good by now


def train_worker(loop_config: dict) -> None:
    """One Ray Train worker: train under DDP; rank 0 logs to MLflow and reports the checkpoints."""
    import ray.train
    import torch

    from sweeps import tracking
    from sweeps.patient import PatientClient
    from unified import config as C
    from unified.errors import DivergenceError
    from unified.train import train

    job: TrialJob = loop_config["job"]
    _pin(job)
    rank = ray.train.get_context().get_world_rank()
    _tag_worker_nodes(job, rank)
    checkpoint = ray.train.get_checkpoint()  # set on a restart after a failure, or on a rerun of the trial
    resume = None
    if checkpoint is not None:
        with checkpoint.as_directory() as d:
            resume = _load_state(d)
    if rank == 0:
        _tag_resumed(job, resume)

    def publish(metrics: dict, state: dict | None):
        if state is None:
            return  # only eval points go to Train: every rank reports them, the same number of times
        if rank != 0:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, Path(d) / STATE_FILE)
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(d))

    report = _Reporter(job, publish, rank)
    try:
        train(C.from_flat(job.config), report, resume=resume, cache_dir=job.cache_dir)
    except DivergenceError as e:  # every rank sees it at the same step (train.py syncs the check)
        report.flush()  # the losses that led there, before the run closes
        if rank == 0:
            tracking.fail(PatientClient(job.uri), job.run_id, e, for_good=True)
    finally:
        report.flush()


# ---------------------------------------------------------------- shared


class _Reporter:
    """`report(metrics, step, state)` for `unified.train`: MLflow on rank 0, Tune/Train at the eval points."""

    def __init__(self, job: TrialJob, publish, rank: int):
        from sweeps import tracking
        from sweeps.patient import PatientClient

        self.job, self.publish, self.rank = job, publish, rank
        self.log = tracking.RunLogger(PatientClient(job.uri), job.run_id) if rank == 0 else None

    def __call__(self, metrics: dict, step: int, state: dict | None = None):
        images = state.pop("images", None) if state is not None else None
        if self.log is not None:
            self.log(metrics, step)
            if images and step == 100:
                self.log.images(images)
        self.publish({**_tune_metrics(metrics, step), "run_id": self.job.run_id}, state)
        if state is not None:
            _maybe_crash(self.job, step, self.rank)

    def flush(self) -> None:
        """What waits in the logger, e.g. the losses before a divergence."""
        if self.log is not None:
            self.log.flush()


def _stop_event():
    """The event Tune sets when it stops this trial, held from the start: Tune drops its session while stopping.

    A stopped Train trial's actor exits while `fit()` still waits, which kills the controller it owns: `fit()`
    then raises `ActorDiedError`, which is a stop rather than a failure."""
    import threading

    from sweeps.ray_internals import trial_stop_event

    return trial_stop_event() or threading.Event()


def _tag_resumed(job: TrialJob, state: dict | None) -> None:
    if state is not None:
        from sweeps.patient import PatientClient

        PatientClient(job.uri).set_tag(job.run_id, RESUMED_TAG, str(state["last_pct"]))


def _tag_node(client, run_id: str) -> None:
    """`unisweep.node`: the Ray node that trains (rank 0), for placement questions on a cluster; `unisweep.cpu`."""
    import ray
    from mlflow.entities import RunTag

    from sweeps.tracking import CPU

    node = ray.get_runtime_context().get_node_id()
    client.log_batch(run_id, tags=[RunTag(NODE_TAG, node), RunTag(CPU, cpu_description())])


def _pin(job: TrialJob) -> None:
    """Threads and algorithms of a trial process; its kernels came pinned in its environment (trial_env_vars)."""
    import torch

    from unified import determinism

    gpu = job.gpus_per_worker > 0
    if not gpu:  # GPU kernels are not pinned: a GPU trial keeps its threads and torch's fast algorithms
        determinism.pin()
    # one thread when pinned; unpinned, never more threads than the CPUs Ray gave us
    torch.set_num_threads(determinism.threads(job.cpus_per_worker, gpu))


def cpu_description() -> str:
    """'<the CPU's model name>; torch <its kernels' instruction set>', e.g. 'AMD EPYC; torch AVX512'."""
    import platform

    import torch

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            name = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}; torch {torch.backends.cpu.get_cpu_capability()}"


def _tag_worker_nodes(job: TrialJob, rank: int) -> None:
    """Rank 0 tags where the worker group trains: `unisweep.node` its own node (rather than the trial driver's),
    `unisweep.nodes` every rank's. The node ids travel over the group's own gloo/NCCL process group."""
    import ray
    import torch.distributed as dist
    from mlflow.entities import RunTag

    from sweeps.patient import PatientClient
    from sweeps.tracking import CPU

    node = ray.get_runtime_context().get_node_id()
    nodes = [node]
    if dist.is_available() and dist.is_initialized():
        nodes = [None] * dist.get_world_size()
        dist.all_gather_object(nodes, node)
    if rank == 0:
        PatientClient(job.uri).log_batch(job.run_id, tags=[RunTag(NODE_TAG, node), RunTag(NODES_TAG, ",".join(nodes)),
                                                           RunTag(CPU, cpu_description())])


def _tune_metrics(metrics: dict, step: int) -> dict:
    return {**{k: float(v) for k, v in metrics.items() if k.startswith(("eval/", "time/"))}, "percent": int(step)}


def _load_state(directory: str) -> dict:
    import torch

    # weights_only: a checkpoint on shared storage is data (tensors, dicts, numbers), never code to run
    return torch.load(Path(directory) / STATE_FILE, weights_only=True)


def trial_name(trial) -> str:
    """Tune's name for a trial (and its folder): ours, `{sweep}-{cell}-s{seed}`, also for a search sample."""
    job = TrialJob.from_config(trial.config["job"])
    name = job.name if job.run_id else _sampled(job, trial.config).name
    return name.replace("/", "-")


def _sampled(job: TrialJob, config: dict):
    from sweeps.spec import sampled_trial
    from unified import config as C

    sample = {k: config[k] for k in job.search_keys}
    return sampled_trial(job.sweep, C.from_flat(job.common), {**job.point, **sample}, job.seed)


def _search_sample(client, job: TrialJob, config: dict) -> TrialJob:
    """A search sample's trial and run, found or created here: the driver cannot know the sample in advance."""
    from sweeps import tracking
    from unified import config as C

    trial = _sampled(job, config)
    run_id = tracking.trial_run(client, job.experiment_id, job.parent_id, trial, job.smoke,
                                {tracking.STUDY: job.study}, axes=job.axes, reuse_running=False)
    return dataclasses.replace(job, name=trial.name, config=C.flatten(trial.config), run_id=run_id)


def _maybe_crash(job: TrialJob, step: int, rank: int) -> None:
    """Fault injection for the tests: `crash_after` = (percent, marker dir, rank) kills that rank's process once,
    hard (the in-process path has rank 0 only)."""
    if not job.crash_after or rank != job.crash_after[2]:
        return
    percent, marker_dir, _ = job.crash_after
    marker = Path(marker_dir) / f"{job.name.replace('/', '-')}.crashed"
    if step >= percent and not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        # A moment after the checkpoint, as a real crash would be: Train's controller registers a reported
        # checkpoint when it next polls its workers (RAY_TRAIN_HEALTH_CHECK_INTERVAL_S, 2 s unless set); a worker
        # that dies before that restarts from the checkpoint before (measured: from zero). Nothing is logged twice
        # either way.
        time.sleep(3.0)
        os._exit(1)  # like a lost node: no cleanup, no exception to catch
