"""The Optuna studies of a sweep's `search`, for the report: found from the sweep's MLflow record and read with
Optuna's own API, or, when out of reach, rebuilt from the sample runs MLflow holds.

Where the driver put them (sweeps/driver.py, sweeps/search.py): one study per grid cell in `<storage>/optuna.db`
(SQLite), named `<sweep>-<cell>` (`<sweep>-smoke-<cell>` under `--smoke`), and each sample's run tagged
`unisweep.study=<cell>`. `storage` is the one the launch recorded on the parent run (tag `unisweep.storage`,
absolute), else that of the spec the parent run holds (`spec.yaml`; a relative path resolves against the current
directory), unless `unisweep report --storage DIR` names another folder. Remote storage (s3://...)
kept the study in memory: nothing to load, the runs stand in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import stats


@dataclass
class Study:
    sweep: str
    name: str  # Optuna's study name
    keys: list[str]  # the searched config keys (Optuna's param names)
    log_keys: set[str]  # those searched on a log scale
    metrics: list[str]  # the objectives
    modes: list[str]  # "max" or "min", one per objective
    trials: pd.DataFrame  # "number", one column per key and per metric: complete samples in the order sampled
    url: str = ""  # the study's storage; "" when out of reach and rebuilt from the MLflow runs
    importance: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> {key: share}; study only

    def front(self) -> np.ndarray:
        """Row positions of the non-dominated samples (the best one for a single objective)."""
        signs = np.array([1.0 if m == "max" else -1.0 for m in self.modes])
        values = self.trials[self.metrics].to_numpy(dtype=float) * signs
        if len(values) == 0:
            return np.array([], dtype=int)
        if len(self.metrics) == 1:
            return np.array([int(np.argmax(values[:, 0]))])
        return stats.pareto_front(values)


def for_sweep(sweep: str, spec_text: str, trials: pd.DataFrame, storage: str | None = None
              ) -> tuple[list[Study], list[str]]:
    """The studies of `sweep` (none when its spec has no `search`) and notes on what could not be loaded.

    `trials`: the report's trial rows (analysis/query.py); a study's samples are its sweep's rows tagged with it."""
    from sweeps.spec import SpecError, parse_spec

    try:
        spec = parse_spec(spec_text)
    except SpecError as e:
        return [], [f"Sweep {sweep}: its stored spec no longer parses ({e}); its search is not shown."]
    if spec.search is None:
        return [], []
    rows = trials[trials["sweep"].eq(sweep)]
    storage = os.path.abspath(os.path.expanduser(storage)) if storage and "://" not in storage else (
        storage or spec.storage)
    smoke = bool(len(rows)) and bool(rows["smoke"].all())  # the studies of the runs the report uses
    keys = list(spec.search.space)
    log_keys = {k for k, d in spec.search.space.items() if d.kind == "loguniform"}
    studies, notes = [], []
    for cell, g in rows.groupby("study", dropna=True):
        name = f"{sweep}{'-smoke' if smoke else ''}-{cell}"
        study = Study(sweep, name, keys, log_keys, list(spec.search.metric), list(spec.search.mode), pd.DataFrame())
        loaded, why = load(storage, name)
        if loaded is not None:
            study.trials, study.url = from_study(loaded, study), f"sqlite:///{Path(storage) / 'optuna.db'}"
            study.importance, failed = importance(loaded, study.metrics)
            notes += [f"Study {name}: no parameter importance ({failed})."] if failed else []
        else:
            study.trials = from_runs(g, study)
            notes.append(f"Study {name} is out of reach ({why}): its history, Pareto front and parallel "
                         "coordinates are drawn from its MLflow runs; parameter importance needs the study "
                         "(`unisweep report --storage DIR`, DIR holding its `optuna.db`).")
        studies.append(study)
    return studies, notes


def load(storage: str, name: str):
    """(the Optuna study, None), or (None, why not). Never creates a database where there is none."""
    if "://" in storage:
        return None, f"storage {storage} is remote: the driver kept the study in memory"
    db = Path(storage) / "optuna.db"
    if not db.is_file():
        return None, f"no {db}"
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=f"sqlite:///{db}"), None
    except KeyError:
        return None, f"{db} holds no study {name!r}"
    except RuntimeError as e:  # e.g. a schema this Optuna cannot read
        return None, f"{db}: {e}"


def from_study(study, s: Study) -> pd.DataFrame:
    """The study's complete trials, in the order sampled, as number + keys + objectives."""
    import optuna

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    rows = [{"number": t.number, **{k: t.params.get(k) for k in s.keys}, **dict(zip(s.metrics, t.values, strict=True))}
            for t in sorted(done, key=lambda t: t.number)]
    return pd.DataFrame(rows, columns=["number", *s.keys, *s.metrics])


def from_runs(rows: pd.DataFrame, s: Study) -> pd.DataFrame:
    """The study's FINISHED sample runs in the order they started, numbered from 0, as `from_study` gives them."""
    rows = rows.sort_values(["start_time", "run_id"])
    frame = pd.DataFrame({c: rows[c].to_numpy() if c in rows else np.nan for c in [*s.keys, *s.metrics]})
    frame = frame.dropna(subset=s.metrics).reset_index(drop=True)
    return frame.assign(number=range(len(frame)))[["number", *s.keys, *s.metrics]]


def importance(study, metrics: list[str]) -> tuple[dict[str, dict[str, float]], str]:
    """{metric: {key: share of the variance}} by Optuna's fANOVA, and why not where it cannot.

    fANOVA, not Optuna 5's default PED-ANOVA: that one compares the top 10 % of trials with the rest, which at
    a 12-sample search is one trial, and it ranks keys at random there; fANOVA's forest uses every sample."""
    import optuna

    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    out = {}
    try:
        for i, metric in enumerate(metrics):
            target = None if len(metrics) == 1 else (lambda t, i=i: t.values[i])
            shares = optuna.importance.get_param_importances(study, evaluator=evaluator, target=target)
            out[metric] = {k: float(v) for k, v in shares.items()}
    except (ValueError, RuntimeError) as e:  # too few complete trials, or a space with nothing that varies
        return {}, str(e).splitlines()[0]
    return out, ""
