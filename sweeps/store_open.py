"""Open an MLflow store so that two processes meeting a new SQLite file never migrate its schema at once.

MLflow's tracking store creates and migrates a new database's schema when it is first built in a process, with
no lock: a driver and a reader (`unisweep status`, a test polling), or two drivers, that open the same new file
together break each other's migration ("Online migration expected to match one row ... 0 found", seen in CI).
`open_client` builds the store under an exclusive per-file lock, so the first opener migrates and every other
waits and finds the schema done. MLflow caches the built store per process and URI, so later
`MlflowClient(uri)` calls in the same process reuse it and need no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

from mlflow import MlflowClient

SQLITE = "sqlite:///"


def open_client(uri: str) -> MlflowClient:
    """`MlflowClient(uri)`; where `uri` is SQLite, with its store built now, under the file's lock. A server or
    another database is left to MLflow (a server migrates its own database once, at its start), and is not
    touched here: a client built during an outage must still be made (sweeps/patient.py rides it out)."""
    if not uri.startswith(SQLITE):
        return MlflowClient(uri)
    with schema_lock(uri):
        client = MlflowClient(uri)  # may build the store already
        client.search_experiments(max_results=1)  # builds it at the latest: creates and migrates a new file's schema
    return client


@contextlib.contextmanager
def schema_lock(uri: str):
    """An exclusive lock per SQLite file, held by every unisweep process while it builds a store for it. The lock
    file lives in the temp dir, not beside the database, so a store in a read-only folder can still be read
    (SQLite is one machine's store anyway)."""
    db = os.path.realpath(uri.removeprefix(SQLITE))
    key = hashlib.sha1(db.encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"unisweep-schema-{key}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
