"""The spec's `search` as Ray Tune objects: an Optuna searcher per study, and ASHA over the eval points.

Distributions are given to OptunaSearch as Optuna's own (keys stay dotted config keys, so a sample is
applied with `config.override` like any grid value). Each study persists in `<storage>/optuna.db` under
its own name, so `resume` continues it where it stopped; with remote storage (s3://...) the study lives in
memory and a resumed search samples afresh (MLflow still counts the samples already FINISHED).
"""

from __future__ import annotations

from pathlib import Path

from sweeps.spec import Search


def distributions(search: Search) -> dict:
    import optuna

    d = optuna.distributions
    make = {
        "uniform": lambda a: d.FloatDistribution(a[0], a[1]),
        "loguniform": lambda a: d.FloatDistribution(a[0], a[1], log=True),
        "int": lambda a: d.IntDistribution(a[0], a[1]),
        "choice": lambda a: d.CategoricalDistribution(a),
    }
    return {key: make[dist.kind](dist.args) for key, dist in search.space.items()}


def optuna_search(search: Search, storage: str, study_name: str):
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    db = None
    if "://" not in storage:
        Path(storage).mkdir(parents=True, exist_ok=True)
        db = optuna.storages.RDBStorage(f"sqlite:///{Path(storage) / 'optuna.db'}")
    single = len(search.metric) == 1
    return OptunaSearch(distributions(search), metric=search.metric[0] if single else search.metric,
                        mode=search.mode[0] if single else search.mode, seed=search.seed, storage=db,
                        study_name=study_name)


def asha(search: Search, eval_points: int):
    """ASHA on the first metric; its time is the number of eval reports (Tune's training_iteration)."""
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(time_attr="training_iteration", metric=search.metric[0], mode=search.mode[0],
                         max_t=eval_points, grace_period=search.asha.grace_period,
                         reduction_factor=search.asha.reduction_factor)
