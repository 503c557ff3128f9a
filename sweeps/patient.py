"""An MlflowClient that rides out a store outage: what trials and the driver write through.

MLflow's HTTP client retries a refused connection or a 5xx a few times on its own; an outage that lasts longer
(a server restarting, a database failing over, a SQLite file locked by a long writer) surfaces as an exception
that would fail the trial. `PatientClient` retries such transient failures with exponential backoff (1 s,
doubling, at most 30 s apart) for up to `$UNISWEEP_STORE_PATIENCE_S` seconds (default 300); past that, the last
error is raised as it is, so the trial fails with the real cause and `unisweep resume` finishes it. The driver
waits at least `DRIVER_PATIENCE_S`: after its trials gave up, it is what marks their runs FAILED with that
cause and closes the sweep's parent run.

Only calls that are safe to repeat are retried. A retried `log_batch` resends the same metrics with the same
timestamps, which the store keeps once; tags, params and statuses are set, not added. `create_run` and
`create_experiment` are never retried: a reply lost after the store acted would mean a second run.
"""

from __future__ import annotations

import functools
import os
import time

from mlflow.exceptions import MlflowException

from sweeps.store_open import open_client

PATIENCE_ENV = "UNISWEEP_STORE_PATIENCE_S"
DEFAULT_PATIENCE_S = 300.0
DRIVER_PATIENCE_S = 120.0  # at least: the driver alone closes the record, after its trials gave up
NEVER_RETRIED = frozenset({"create_run", "create_experiment"})
# MLflow's codes for "try again later"; a wrapped connection failure or timeout arrives as INTERNAL_ERROR
TRANSIENT_CODES = frozenset({"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "RESOURCE_EXHAUSTED",
                             "REQUEST_LIMIT_EXCEEDED", "DEADLINE_EXCEEDED"})


def patience_s() -> float:
    return float(os.environ.get(PATIENCE_ENV, DEFAULT_PATIENCE_S))


def is_transient(error: BaseException) -> bool:
    """A failure that waiting may cure: the store unreachable, overloaded or locked; not a bad request."""
    import requests
    import sqlalchemy.exc

    if isinstance(error, requests.exceptions.RequestException | sqlalchemy.exc.OperationalError | ConnectionError):
        return True
    return isinstance(error, MlflowException) and (error.error_code in TRANSIENT_CODES
                                                   or "database is locked" in str(error))


class PatientClient:
    """`MlflowClient(uri)` whose repeatable calls are retried through a store outage (module docstring)."""

    def __init__(self, uri: str, patience: float | None = None):
        self.patience = patience_s() if patience is None else patience
        self._client = self._patiently(open_client)(uri)  # a SQLite store is built now: through an outage too

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr) or name in NEVER_RETRIED or name.startswith("_"):
            return attr
        return self._patiently(attr)

    def _patiently(self, fn):
        """`fn`, retried on transient failures with exponential backoff for up to `self.patience` seconds."""

        @functools.wraps(fn)
        def call(*args, **kwargs):
            deadline, wait = time.monotonic() + self.patience, 1.0
            while True:
                try:
                    return fn(*args, **kwargs)
                except Exception as e:
                    if not is_transient(e) or time.monotonic() + wait > deadline:
                        raise
                    time.sleep(wait)
                    wait = min(wait * 2, 30.0)

        return call
