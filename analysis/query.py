"""Sweeps read back from MLflow: the only module of analysis/ that talks to MLflow (STYLE.md habit 14).

    data = load(uri, ["quickstart"])        # SweepData(trials, histories, parents, cached)

`trials`: one row per trial run — run_id, name, status, start/end time, the tags `sweep`, `cell`, `seed`,
`variant`, `smoke`, every param under its dotted key typed back to bool / int / float / str (params are
stored as strings), and every metric's latest value (MLflow keeps the value at the highest step: the final
eval point). `histories`: the eval keys at every step, long (run_id, key, step, value).

Runs come from `sweeps.tracking.search_trials` (paged). Histories are read in bulk on a SQLAlchemy store (one
query per key and 500 runs) and with a thread pool elsewhere (one `get_metric_history` per run and key, about
1 ms each on SQLite, slower over HTTP). Both frames are cached as Parquet under a key made of the store,
the sweeps and each run's id, status, end time and latest metrics, so any run that logs or ends changes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sweeps import tracking
from sweeps.errors import NotFound

HISTORY_KEYS = ("eval/und/total", "eval/gen/attr_acc")
TAG_COLUMNS = {tracking.SWEEP: "sweep", tracking.CELL: "cell", tracking.SEED: "seed", "unisweep.variant": "variant",
               tracking.SMOKE: "smoke"}
BULK_RUNS = 500  # run ids per bulk query: well under SQLite's bound-parameter limit
THREADS = 16  # history reads wait on I/O (HTTP) or on SQLite; more threads than cores pays off
IDENTITY = {"run_id", "name", "status", "start_time", "end_time"}
CACHE_VERSION = 1  # bump when the frames' layout changes


@dataclass
class SweepData:
    trials: pd.DataFrame
    histories: pd.DataFrame  # run_id, key, step, value
    parents: dict[str, str]  # sweep -> parent run id (the non-smoke one when both exist)
    cached: bool


def connect(uri: str, experiment: str):
    """An MlflowClient and the experiment's id; NotFound when the experiment does not exist."""
    from mlflow import MlflowClient  # late: a second to import

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise NotFound(f"no experiment {experiment!r} in {uri}")
    return client, found.experiment_id


def load(uri: str, sweeps: list[str], experiment: str = "unisweep", cache_dir: str | Path | None = None,
         history_keys: tuple[str, ...] = HISTORY_KEYS, bulk: bool = True) -> SweepData:
    """The trial runs and eval histories of `sweeps`; NotFound when a sweep has no trial runs."""
    client, experiment_id = connect(uri, experiment)
    runs = []
    for sweep in sweeps:
        found = tracking.search_trials(client, experiment_id, sweep)
        if not found:
            raise NotFound(f"sweep {sweep!r} has no trial runs in {uri} (experiment {experiment!r})")
        runs.extend(found)
    parents = {}
    for sweep in sweeps:
        parent = tracking.sweep_run(client, experiment_id, sweep) or tracking.sweep_run(client, experiment_id, sweep,
                                                                                           smoke=True)
        if parent is not None:
            parents[sweep] = parent.info.run_id

    key = cache_key(uri, experiment, sweeps, history_keys, runs)
    paths = None
    if cache_dir is not None:
        paths = [Path(cache_dir) / f"{name}-{key}.parquet" for name in ("trials", "histories")]
        if all(p.is_file() for p in paths):
            return SweepData(pd.read_parquet(paths[0]), pd.read_parquet(paths[1]), parents, cached=True)

    trials = trials_frame(runs)
    histories = fetch_histories(client, list(trials["run_id"]), history_keys, bulk)
    if paths is not None:
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for path, frame in zip(paths, (trials, histories), strict=True):
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            frame.to_parquet(tmp, index=False)
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return SweepData(trials, histories, parents, cached=False)


def cache_key(uri: str, experiment: str, sweeps: list[str], history_keys, runs) -> str:
    """Changes when any run is added, removed, ends, changes status or logs a new latest value."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, uri, experiment, sorted(sweeps), list(history_keys)]).encode())
    for run in sorted(runs, key=lambda r: r.info.run_id):
        metrics = sorted(run.data.metrics.items())
        h.update(repr((run.info.run_id, run.info.status, run.info.end_time, metrics)).encode())
    return h.hexdigest()[:20]


# ---------------------------------------------------------------- runs -> frame


def trials_frame(runs) -> pd.DataFrame:
    """One row per run: identity, tags, typed params, latest metrics (a param's name wins over a metric's)."""
    rows = []
    for run in runs:
        tags, params = run.data.tags, run.data.params
        row = {"run_id": run.info.run_id, "name": run.info.run_name, "status": run.info.status,
               "start_time": run.info.start_time, "end_time": run.info.end_time}
        row.update({column: tags.get(tag) for tag, column in TAG_COLUMNS.items()})
        row.update({k: v for k, v in params.items() if k not in row})
        row.update({k: v for k, v in run.data.metrics.items() if k not in row and k not in params})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    param_keys = {k for run in runs for k in run.data.params} - IDENTITY - set(TAG_COLUMNS.values())
    for column in param_keys:
        frame[column] = typed(frame[column])
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    frame["smoke"] = frame["smoke"].eq("true")
    for column in frame.columns[frame.dtypes.eq(object)]:
        frame[column] = frame[column].astype("str")  # what Parquet gives back, so cached and fresh frames agree
    return frame


def typed(values: pd.Series) -> pd.Series:
    """Param strings back to values: "True"/"False" -> bool, numbers -> int or float, "None" -> missing."""
    raw = values.astype(object).where(values.notna(), None)
    raw = raw.where(~raw.isin(["None", ""]), None)
    present = raw.dropna()
    if present.empty:
        return raw
    if present.isin(["True", "False"]).all():
        return raw.map({"True": True, "False": False, None: None}).astype("boolean")
    numbers = pd.to_numeric(present, errors="coerce")
    if numbers.notna().all():
        out = pd.to_numeric(raw, errors="coerce")
        if len(present) == len(raw) and (numbers == numbers.round()).all() and not present.str.contains(r"[.eE]").any():
            return out.astype("int64")
        return out.astype("float64")
    return raw


# ---------------------------------------------------------------- histories


def fetch_histories(client, run_ids: list[str], keys=HISTORY_KEYS, bulk: bool = True) -> pd.DataFrame:
    """Long frame (run_id, key, step, value) of `keys` for every run, sorted by run, key and step."""
    store = client._tracking_client.store  # the SQLAlchemy store has a many-runs query; the REST store does not
    rows = []
    if bulk and hasattr(store, "get_metric_history_bulk"):
        for key in keys:
            for i in range(0, len(run_ids), BULK_RUNS):
                chunk = run_ids[i:i + BULK_RUNS]
                found = store.get_metric_history_bulk(chunk, key, max_results=len(chunk) * 10_000)
                rows.extend((m.run_id, key, m.step, m.value) for m in found)
    else:
        jobs = [(run_id, key) for run_id in run_ids for key in keys]
        with ThreadPoolExecutor(THREADS) as pool:
            for (run_id, key), history in zip(jobs, pool.map(lambda j: client.get_metric_history(*j), jobs),
                                              strict=True):
                rows.extend((run_id, key, m.step, m.value) for m in history)
    frame = pd.DataFrame(rows, columns=["run_id", "key", "step", "value"])
    frame = frame.astype({"run_id": str, "key": str, "step": "int64", "value": "float64"})
    # A retried trial logs each (key, step) once, but be safe: the latest write of a step wins, as in MLflow.
    frame = frame.drop_duplicates(["run_id", "key", "step"], keep="last")
    return frame.sort_values(["run_id", "key", "step"], ignore_index=True)


# ---------------------------------------------------------------- artifacts


def download_images(uri: str, run_ids: list[str], dst: str | Path,
                    names: tuple[str, ...] = ("generated.png", "real.png")) -> dict[str, dict[str, Path]]:
    """{run_id: {name: local path}} for each of `names` the run holds as an artifact; absent ones are left out."""
    from mlflow import MlflowClient

    client, out = MlflowClient(uri), {}
    for run_id in run_ids:
        held = {f.path for f in client.list_artifacts(run_id)}
        for name in names:
            if name in held:
                target = Path(dst) / run_id
                target.mkdir(parents=True, exist_ok=True)
                out.setdefault(run_id, {})[name] = Path(client.download_artifacts(run_id, name, str(target)))
    return out


def attach_report(uri: str, parent_ids: list[str], files: list[Path], root: Path, prefix: str = "report") -> None:
    """Log the report's files as artifacts of each sweep's parent run, under `prefix/`, keeping their layout."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    for run_id in parent_ids:
        for path in files:
            sub = Path(prefix) / path.relative_to(root).parent
            client.log_artifact(run_id, str(path), sub.as_posix())
