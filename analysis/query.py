"""Sweeps read back from MLflow: the only module of analysis/ that talks to MLflow (the rest is pure: frames in,
tables and figures out).

    data = load(uri, ["quickstart"])        # SweepData(trials, histories, parents, cached)

`trials`: one row per trial run — run_id, name, status, start/end time, the tags `sweep`, `cell`, `seed`,
`variant`, `smoke`, `stopped_early`, `study` (a search sample's Optuna study), every param under its dotted key
typed back to bool / int / float / str (params are stored as strings), and every metric's latest value (MLflow
keeps the value at the highest step: the final eval point). `histories`: the eval keys at every step, long
(run_id, key, step, value).

Two ways in. Through the tracking API (any store, and the only way over HTTP): runs from
`sweeps.tracking.search_trials` (paged), histories from an `mlflow server`'s bulk endpoint (100 runs a request, in
a thread pool), else one `get_metric_history` per run and key. On a SQLAlchemy store (SQLite, PostgreSQL), in bulk:
a handful of SELECTs over MLflow's tables, because `search_runs` there costs about 3 s per 1,000 trials (see the
section below). Both frames are cached as Parquet under a key made of the store, the sweeps and each run's id,
status, end time and latest-metric summary, so any run that is added, ends or logs a new value changes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import mlflow_internals
from sweeps import tracking
from sweeps.errors import NotFound

log = logging.getLogger(__name__)

HISTORY_KEYS = ("eval/und/total", "eval/gen/attr_acc")
TAG_COLUMNS = {tracking.SWEEP: "sweep", tracking.CELL: "cell", tracking.SEED: "seed", tracking.VARIANT: "variant",
               tracking.SMOKE: "smoke", tracking.STOPPED_EARLY: "stopped_early", tracking.STUDY: "study",
               tracking.CPU: "cpu", tracking.MEMBERS: "members"}
BULK_RUNS = 500  # run ids per bulk query: well under SQLite's bound-parameter limit
THREADS = 16  # history reads wait on I/O (HTTP) or on SQLite; more threads than cores pays off
IDENTITY = {"run_id", "name", "status", "start_time", "end_time"}
CACHE_VERSION = 4  # bump when the frames' layout changes


@dataclass
class SweepData:
    trials: pd.DataFrame
    histories: pd.DataFrame  # run_id, key, step, value
    parents: dict[str, str]  # sweep -> parent run id (the non-smoke one when both exist)
    cached: bool
    key: str  # the cache key: the same while no run of the sweeps changes


def load(uri: str, sweeps: list[str], experiment: str = "unisweep", cache_dir: str | Path | None = None,
         history_keys: tuple[str, ...] = HISTORY_KEYS, bulk: bool = True) -> SweepData:
    """The trial runs and eval histories of `sweeps`; NotFound when a sweep has no trial runs.

    `bulk` (default) reads a SQLAlchemy store (SQLite, PostgreSQL) with a few SQL queries; otherwise, and
    always over HTTP, through the tracking API: `search_runs` pages, then histories in a thread pool."""
    client, experiment_id = tracking.connect(uri, experiment)
    db = mlflow_internals.sql_store(client) if bulk else None
    if db is not None:
        listing = _sql_listing(db, experiment_id, sweeps)  # [(run_id, sweep, status, end_time, metric summary)]
        found = {row[1] for row in listing}
        fingerprint = sorted(tuple(row) for row in listing)
    else:
        runs = [run for sweep in sweeps for run in list_trials(client, experiment_id, sweep)]
        found = {run.data.tags.get(tracking.SWEEP) for run in runs}
        fingerprint = sorted((r.info.run_id, r.info.status, r.info.end_time, sorted(r.data.metrics.items()))
                             for r in runs)
    for sweep in sweeps:
        if sweep not in found:
            raise NotFound(f"sweep {sweep!r} has no trial runs in {uri} (experiment {experiment!r})")
    parents = {}
    for sweep in sweeps:
        parent = tracking.sweep_run(client, experiment_id, sweep) or tracking.sweep_run(client, experiment_id, sweep,
                                                                                           smoke=True)
        if parent is not None:
            parents[sweep] = parent.info.run_id

    key = cache_key([uri, experiment, sorted(sweeps), list(history_keys), db is not None], fingerprint)
    paths = None
    if cache_dir is not None:
        paths = [Path(cache_dir) / f"{name}-{key}.parquet" for name in ("trials", "histories")]
        if all(p.is_file() for p in paths):
            return SweepData(pd.read_parquet(paths[0]), pd.read_parquet(paths[1]), parents, True, key)

    if db is not None:
        run_ids = [row[0] for row in listing]
        trials = records_frame(_sql_records(db, run_ids))
        histories = _sql_histories(db, run_ids, history_keys)
    else:
        trials = trials_frame(runs)
        histories = fetch_histories(client, list(trials["run_id"]), history_keys)
    if paths is not None:
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        for path, frame in zip(paths, (trials, histories), strict=True):
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            frame.to_parquet(tmp, index=False)
            tmp.replace(path)  # atomic: a concurrent reader never sees half a file
    return SweepData(trials, histories, parents, False, key)


def cache_key(what: list, fingerprint: list) -> str:
    """Changes when any run is added, removed, ends, changes status or logs a new latest value."""
    h = hashlib.sha256(json.dumps([CACHE_VERSION, *what]).encode())
    h.update(repr(fingerprint).encode())
    return h.hexdigest()[:20]


# ---------------------------------------------------------------- runs -> frame


def trials_frame(runs) -> pd.DataFrame:
    """One row per `mlflow.entities.Run` (see `records_frame`)."""
    return records_frame([{"run_id": r.info.run_id, "name": r.info.run_name, "status": r.info.status,
                           "start_time": r.info.start_time, "end_time": r.info.end_time, "tags": r.data.tags,
                           "params": r.data.params, "metrics": r.data.metrics} for r in runs])


def records_frame(records: list[dict]) -> pd.DataFrame:
    """One row per run record: identity, tags, typed params, latest metrics (a param's name wins over a metric's).

    Built column by column from lists: per-column pandas calls cost milliseconds each, and a run has ~75 params."""
    if not records:
        return pd.DataFrame()
    records = sorted(records, key=lambda rec: rec["run_id"])  # the same order whichever way the runs were read
    taken = set(IDENTITY) | set(TAG_COLUMNS.values())
    param_keys = [k for k in dict.fromkeys(k for rec in records for k in rec["params"]) if k not in taken]
    metric_keys = [k for k in dict.fromkeys(k for rec in records for k in rec["metrics"])
                   if k not in taken and k not in param_keys]
    data = {k: [rec[k] for rec in records] for k in ("run_id", "name", "status", "start_time", "end_time")}
    for tag, column in TAG_COLUMNS.items():
        data[column] = [rec["tags"].get(tag) for rec in records]
    for key in param_keys:
        data[key] = typed([rec["params"].get(key) for rec in records])
    for key in metric_keys:
        data[key] = np.array([rec["metrics"].get(key, np.nan) for rec in records], dtype=float)
    data["seed"] = pd.array([int(s) if s is not None and s.lstrip("-").isdigit() else None for s in data["seed"]],
                            dtype="Int64")
    data["smoke"] = np.array([v == "true" for v in data["smoke"]])
    data["stopped_early"] = np.array([v == "true" for v in data["stopped_early"]])  # ASHA stopped it early
    for key in ("run_id", "name", "status", "sweep", "cell", "variant", "study", "members"):
        data[key] = pd.array(data[key], dtype="str")
    data["start_time"] = pd.array(data["start_time"], dtype="Int64")
    data["end_time"] = pd.array(data["end_time"], dtype="Int64")
    return pd.DataFrame(data)


def typed(values: list) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """Param strings back to values: "True"/"False" -> bool, numbers -> int or float, "None" -> missing.

    String columns come back as pandas' "str" dtype, which is also what Parquet gives back (cached frames equal
    fresh ones)."""
    raw = [None if v is None or v in ("None", "") else v for v in values]
    present = [v for v in raw if v is not None]
    if present and all(v in ("True", "False") for v in present):
        return pd.array([None if v is None else v == "True" for v in raw], dtype="boolean")
    try:
        numbers = [float(v) for v in present]
    except ValueError:
        return pd.array(raw, dtype="str")
    if not present:
        return pd.array(raw, dtype="str")
    integral = all(n.is_integer() and not any(c in v for c in ".eEn") for n, v in zip(numbers, present, strict=True))
    if integral and len(present) == len(raw):
        return np.array([int(v) for v in present], dtype="int64")
    return np.array([np.nan if v is None else float(v) for v in raw], dtype="float64")


# ---------------------------------------------------------------- histories


def list_trials(client, experiment_id: str, sweep: str) -> list:
    """A sweep's trial runs. From an `mlflow server`, whose `search_runs` pages come one after another, the sweep is
    split by the first hex digit of its runs' cell hash (`unisweep.cell`, a SHA-256 prefix: the parts come out
    even) and the 16 parts are listed at once, in threads; from any other store, one paged search."""
    if mlflow_internals.rest_store_creds(client) is None:
        return tracking.search_trials(client, experiment_id, sweep)
    parts = [f"tags.`{tracking.CELL}` LIKE '{digit}%'" for digit in "0123456789abcdef"]
    with ThreadPoolExecutor(len(parts)) as pool:
        return [run for part in pool.map(lambda where: tracking.search_trials(client, experiment_id, sweep, where),
                                         parts) for run in part]


def fetch_histories(client, run_ids: list[str], keys=HISTORY_KEYS, bulk: bool = True,
                    runs_per_request: int = mlflow_internals.HISTORY_BULK_RUNS,
                    points_per_response: int = mlflow_internals.HISTORY_BULK_POINTS) -> pd.DataFrame:
    """Long frame (run_id, key, step, value) of `keys` for every run, read in a thread pool: from an `mlflow
    server`, 100 runs a request (10,000 trials x 2 keys in 200 requests); from any other store, or a server
    without the bulk endpoint, one `get_metric_history` per run and key. The two bounds are the server's own;
    a proxy with lower ones can pass them."""
    creds = mlflow_internals.rest_store_creds(client) if bulk else None
    if creds is not None:
        rows = _bulk_histories(creds, run_ids, keys, runs_per_request, points_per_response)
        if rows is not None:
            return _history_frame(rows)
    jobs = [(run_id, key) for run_id in run_ids for key in keys]
    rows = []
    with ThreadPoolExecutor(THREADS) as pool:
        for (run_id, key), history in zip(jobs, pool.map(lambda j: client.get_metric_history(*j), jobs), strict=True):
            rows.extend((run_id, key, m.step, m.timestamp, m.value) for m in history)
    return _history_frame(rows)


def _bulk_histories(creds, run_ids: list[str], keys, size: int, max_points: int) -> list[tuple] | None:
    """Rows for `_history_frame` from the server's bulk endpoint, or None if it has none. A response at the
    bound on points may be cut short: its runs are asked again in halves."""
    requests = []  # one entry per request sent (list.append is atomic across the pool's threads)

    def read(job):
        ids, key = job
        requests.append(len(ids))
        points = mlflow_internals.history_bulk(creds, ids, key, max_points)
        if points is None or len(points) < max_points or len(ids) == 1:
            return points
        half = len(ids) // 2
        first, second = read((ids[:half], key)), read((ids[half:], key))
        return None if first is None or second is None else first + second

    jobs = [(run_ids[i:i + size], key) for key in keys for i in range(0, len(run_ids), size)]
    rows = []
    with ThreadPoolExecutor(THREADS) as pool:
        for (_, key), points in zip(jobs, pool.map(read, jobs), strict=True):
            if points is None:
                return None
            rows.extend((p["run_id"], key, p["step"], p["timestamp"], p["value"]) for p in points)
    log.debug("histories of %d runs x %d keys in %d bulk requests", len(run_ids), len(keys), len(requests))
    return rows


def _history_frame(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["run_id", "key", "step", "timestamp", "value"])
    frame = frame.astype({"run_id": str, "key": str, "step": "int64", "timestamp": "int64", "value": "float64"})
    # A retried trial logs each (key, step) once, but be safe: the latest write of a step wins, as in MLflow.
    frame = frame.sort_values(["run_id", "key", "step", "timestamp"], kind="stable")
    frame = frame.drop_duplicates(["run_id", "key", "step"], keep="last").drop(columns="timestamp")
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------- SQL stores, read in bulk
#
# `search_runs` on a SQLAlchemy store builds an ORM object per param, tag and metric: about 3 s per 1,000 trials
# of 75 params here, so listing 10,000 trials just to see whether the cache is fresh would take half a minute.
# These read the same tables (runs, tags, params, latest_metrics, metrics) with plain SELECTs instead; a test
# checks that both ways give the same frames.


def _sql_listing(db, experiment_id: str, sweeps: list[str]) -> list[tuple]:
    """(run_id, sweep, status, end_time, #latest metrics, max timestamp, max step) of every active trial run."""
    from sqlalchemy import and_, func, select
    from sqlalchemy.orm import aliased

    m = mlflow_internals.models()
    SqlLatestMetric, SqlRun, SqlTag = m.SqlLatestMetric, m.SqlRun, m.SqlTag

    role, sweep = aliased(SqlTag), aliased(SqlTag)
    query = (select(SqlRun.run_uuid, sweep.value, SqlRun.status, SqlRun.end_time, func.count(SqlLatestMetric.key),
                    func.max(SqlLatestMetric.timestamp), func.max(SqlLatestMetric.step))
             .join(role, and_(role.run_uuid == SqlRun.run_uuid, role.key == tracking.ROLE, role.value == "trial"))
             .join(sweep, and_(sweep.run_uuid == SqlRun.run_uuid, sweep.key == tracking.SWEEP,
                               sweep.value.in_(list(sweeps))))
             .outerjoin(SqlLatestMetric, SqlLatestMetric.run_uuid == SqlRun.run_uuid)
             .where(SqlRun.experiment_id == int(experiment_id), SqlRun.lifecycle_stage == "active")
             .group_by(SqlRun.run_uuid, sweep.value, SqlRun.status, SqlRun.end_time))
    with db.ManagedSessionMaker() as session:
        return [tuple(row) for row in session.execute(query).all()]


def _sql_records(db, run_ids: list[str]) -> list[dict]:
    """Run records (as `records_frame` takes them) for `run_ids`, four SELECTs per chunk of runs."""
    m = mlflow_internals.models()
    SqlLatestMetric, SqlParam, SqlRun, SqlTag = m.SqlLatestMetric, m.SqlParam, m.SqlRun, m.SqlTag
    from sqlalchemy import select

    records = {}
    with db.ManagedSessionMaker() as session:
        for i in range(0, len(run_ids), BULK_RUNS):
            chunk = run_ids[i:i + BULK_RUNS]
            for run_id, name, status, start, end in session.execute(
                    select(SqlRun.run_uuid, SqlRun.name, SqlRun.status, SqlRun.start_time, SqlRun.end_time)
                    .where(SqlRun.run_uuid.in_(chunk))):
                records[run_id] = {"run_id": run_id, "name": name, "status": status, "start_time": start,
                                   "end_time": end, "tags": {}, "params": {}, "metrics": {}}
            for table, field in ((SqlTag, "tags"), (SqlParam, "params")):
                for run_id, key, value in session.execute(
                        select(table.run_uuid, table.key, table.value).where(table.run_uuid.in_(chunk))):
                    records[run_id][field][key] = value
            for run_id, key, value, is_nan in session.execute(
                    select(SqlLatestMetric.run_uuid, SqlLatestMetric.key, SqlLatestMetric.value,
                           SqlLatestMetric.is_nan).where(SqlLatestMetric.run_uuid.in_(chunk))):
                records[run_id]["metrics"][key] = float("nan") if is_nan else value
    return list(records.values())


def _sql_histories(db, run_ids: list[str], keys) -> pd.DataFrame:
    SqlMetric = mlflow_internals.models().SqlMetric
    from sqlalchemy import select

    rows = []
    with db.ManagedSessionMaker() as session:
        for i in range(0, len(run_ids), BULK_RUNS):
            query = (select(SqlMetric.run_uuid, SqlMetric.key, SqlMetric.step, SqlMetric.timestamp, SqlMetric.value,
                            SqlMetric.is_nan)
                     .where(SqlMetric.run_uuid.in_(run_ids[i:i + BULK_RUNS]), SqlMetric.key.in_(list(keys))))
            rows.extend((r, k, s, t, float("nan") if nan else v) for r, k, s, t, v, nan in session.execute(query))
    return _history_frame(rows)


# ---------------------------------------------------------------- artifacts


def download_images(uri: str, run_ids: list[str], dst: str | Path,
                    names: tuple[str, ...] = ("generated.png", "real.png", "prompts.json")
                    ) -> dict[str, dict[str, Path]]:
    """{run_id: {name: local path}} for each of `names` the run holds as an artifact; absent ones are left out."""
    from mlflow import MlflowClient

    client, out = MlflowClient(uri), {}
    with tracking.quiet_artifacts():
        for run_id in run_ids:
            held = {f.path for f in client.list_artifacts(run_id)}
            for name in names:
                if name in held:
                    target = Path(dst) / run_id
                    target.mkdir(parents=True, exist_ok=True)
                    out.setdefault(run_id, {})[name] = Path(client.download_artifacts(run_id, name, str(target)))
    return out


def spec_texts(uri: str, parent_ids: dict[str, str]) -> dict[str, str]:
    """{sweep: the spec YAML its parent run holds}; a parent without `spec.yaml` is left out."""
    from mlflow import MlflowClient

    client, out = MlflowClient(uri), {}
    with tracking.quiet_artifacts():
        for sweep, run_id in parent_ids.items():
            if "spec.yaml" in {f.path for f in client.list_artifacts(run_id)}:
                out[sweep] = tracking.spec_text(client, run_id)
    return out


def parent_tag(uri: str, parent_ids: dict[str, str], key: str) -> dict[str, str]:
    """{sweep: the value of tag `key` on its parent run}; parents without it are left out."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    tags = {sweep: client.get_run(run_id).data.tags for sweep, run_id in parent_ids.items()}
    return {sweep: t[key] for sweep, t in tags.items() if key in t}


def attach_report(uri: str, parent_ids: list[str], files: list[Path], root: Path, prefix: str = "report",
                  tags: dict[str, str] | None = None, metrics: dict[str, float] | None = None) -> None:
    """Log the report's files as artifacts of each sweep's parent run, under `prefix/`, keeping their layout, and
    `tags` and `metrics` (the verdicts, for the runs table to sort and filter by) on it."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, RunTag

    client = MlflowClient(uri)
    now = int(time.time() * 1000)
    values = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
    with tracking.quiet_artifacts():
        for run_id in parent_ids:
            if tags or values:  # one request per parent, not one per verdict (over HTTP each is a round trip)
                client.log_batch(run_id, metrics=values, tags=[RunTag(k, v) for k, v in (tags or {}).items()])
            for path in files:
                sub = Path(prefix) / path.relative_to(root).parent
                client.log_artifact(run_id, str(path), sub.as_posix())
