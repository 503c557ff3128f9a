"""One Tune trial on the in-process path: train the cell's config and log it to its MLflow run.

Ray runs this function in a trial process; it must live in the installed package (PLATFORM.md §10). The
driver created the run; this process only logs to it, through `tracking.RunLogger`, which skips any
(metric, step) the run already holds. Tune hears only the evaluation points.
"""

from __future__ import annotations


def run_trial(config: dict) -> None:
    import torch
    from mlflow import MlflowClient
    from ray import tune

    from sweeps import tracking
    from unified import config as C
    from unified.train import train

    job = config["job"]
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))  # Ray's CPU request, rounded down; never more threads than cores
    client = MlflowClient(job["uri"])
    log = tracking.RunLogger(client, job["run_id"])

    def report(metrics, step, state=None):
        log(metrics, step)
        if state is not None:
            tune.report({**{k: float(v) for k, v in metrics.items()}, "percent": step})

    try:
        train(C.from_flat(job["config"]), report, cache_dir=job["cache_dir"])
    except BaseException:
        tracking.finish(client, job["run_id"], "FAILED")
        raise
    tracking.finish(client, job["run_id"], "FINISHED")
