"""The private MLflow APIs unisweep uses, in one place: tied to the MLflow versions pyproject.toml allows
(`mlflow>=...,<...`); tests/test_versions.py fails loudly when the installed MLflow is outside that range or
these stop importing. Public APIs are used everywhere else.

analysis/query.py reads a SQL store directly (one query for every run's latest metrics, one for the histories:
seconds for 10,000 trials where the public client needs a call per run and key), through the store behind a
client and its SQLAlchemy models.
"""

from __future__ import annotations


def sql_store(client):
    """The SQLAlchemy store behind an `MlflowClient`, or None when it talks to a server or a file store."""
    store = client._tracking_client.store
    return store if hasattr(store, "ManagedSessionMaker") and hasattr(store, "engine") else None


def models():
    """MLflow's table models: the `models` module, with SqlRun, SqlTag, SqlParam, SqlMetric, SqlLatestMetric."""
    from mlflow.store.tracking.dbmodels import models as m

    return m


def check() -> None:
    """Import every private API above (no store needed): what tests/test_versions.py runs."""
    from mlflow.tracking import MlflowClient

    m = models()
    assert all(hasattr(m, n) for n in ("SqlRun", "SqlTag", "SqlParam", "SqlMetric", "SqlLatestMetric"))
    assert hasattr(MlflowClient("sqlite:///:memory:"), "_tracking_client")
