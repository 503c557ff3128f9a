"""The private MLflow APIs unisweep uses, in one place: tied to the MLflow versions pyproject.toml allows
(`mlflow>=...,<...`); tests/test_versions.py fails loudly when the installed MLflow is outside that range or
these stop importing. Public APIs are used everywhere else.

analysis/query.py reads a SQL store directly (one query for every run's latest metrics, one for the histories:
seconds for 10,000 trials where the public client needs a call per run and key), through the store behind a
client and its SQLAlchemy models. Over HTTP it reads histories from the server's bulk endpoint, the one MLflow's
own UI charts use (`/ajax-api/2.0/mlflow/metrics/get-history-bulk`: 100 runs a request), through the REST
store's credentials and request helper, so that auth and retries are MLflow's own.
"""

from __future__ import annotations


def sql_store(client):
    """The SQLAlchemy store behind an `MlflowClient`, or None when it talks to a server or a file store."""
    store = client._tracking_client.store
    return store if hasattr(store, "ManagedSessionMaker") and hasattr(store, "engine") else None


HISTORY_BULK = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
HISTORY_BULK_RUNS = 100  # the server's bound on run ids per request
HISTORY_BULK_POINTS = 25_000  # the server's bound on points per response


def rest_store_creds(client):
    """The host credentials of the `mlflow server` behind an `MlflowClient`, or None for any other store."""
    store = client._tracking_client.store
    return store.get_host_creds() if hasattr(store, "get_host_creds") else None


def history_bulk(creds, run_ids: list[str], key: str, max_points: int = HISTORY_BULK_POINTS) -> list[dict] | None:
    """Every point of `key` for up to 100 runs: dicts with run_id, step, timestamp, value. None when the server
    has no bulk endpoint (404: an older or proxied server)."""
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    response = http_request(creds, HISTORY_BULK, "GET",
                            params={"run_id": run_ids, "metric_key": key, "max_results": max_points})
    if response.status_code == 404:
        return None
    return verify_rest_response(response, HISTORY_BULK).json().get("metrics", [])


def models():
    """MLflow's table models: the `models` module, with SqlRun, SqlTag, SqlParam, SqlMetric, SqlLatestMetric."""
    from mlflow.store.tracking.dbmodels import models as m

    return m


def check() -> None:
    """Import every private API above (no store needed): what tests/test_versions.py runs."""
    from mlflow.tracking import MlflowClient
    from mlflow.utils.rest_utils import http_request, verify_rest_response  # noqa: F401

    m = models()
    assert all(hasattr(m, n) for n in ("SqlRun", "SqlTag", "SqlParam", "SqlMetric", "SqlLatestMetric"))
    assert hasattr(MlflowClient("sqlite:///:memory:"), "_tracking_client")
