"""Where unisweep reads and writes MLflow: each default defined once, with its precedence (docs/DESIGN.md §8).

    store:      --tracking-uri > $MLFLOW_TRACKING_URI > the spec's tracking.uri > sqlite:///<cwd>/mlflow.db
    experiment: --experiment > $MLFLOW_EXPERIMENT_NAME > the spec's tracking.experiment > unisweep

Commands given a sweep name rather than a spec find its experiment from its parent run instead
(`tracking.find_experiment`). Light to import (no MLflow): the command line builds its help from these.
The stage-0 cache's default is `unified.config.default_cache_dir` ($UNISWEEP_CACHE, else ~/.cache/unisweep).
"""

from __future__ import annotations

import os
import re

from unified.config import ConfigError

URI_ENV, EXPERIMENT_ENV = "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"  # MLflow's own variables
DEFAULT_URI = "sqlite:///mlflow.db"  # relative: made absolute against the cwd
DEFAULT_EXPERIMENT = "unisweep"
# --help texts: commands given a spec, and commands given a sweep name
SPEC_URI_HELP = f"MLflow store (default: ${URI_ENV}, else the spec's tracking.uri, else sqlite:///<cwd>/mlflow.db)"
SPEC_EXPERIMENT_HELP = (f"MLflow experiment (default: ${EXPERIMENT_ENV}, else the spec's tracking.experiment, "
                        f"else {DEFAULT_EXPERIMENT})")
URI_HELP = f"MLflow store (default: ${URI_ENV}, else sqlite:///<cwd>/mlflow.db)"
EXPERIMENT_HELP = f"MLflow experiment (default: ${EXPERIMENT_ENV}, else the one holding the sweep's parent run)"


def tracking_uri(flag: str | None = None, spec: str | None = None) -> str:
    """The store a command uses, absolute: `flag` > $MLFLOW_TRACKING_URI > `spec` > the default."""
    for source, uri in (("--tracking-uri", flag), (f"${URI_ENV}", os.environ.get(URI_ENV)), ("tracking.uri", spec)):
        if uri:
            try:
                return absolute_tracking_uri(uri)
            except ConfigError as e:
                raise ConfigError(f"{source}: {e}") from None
    return absolute_tracking_uri(DEFAULT_URI)


def experiment_name(flag: str | None = None, spec: str | None = None) -> str:
    """The experiment a sweep logs to: `flag` > $MLFLOW_EXPERIMENT_NAME > `spec` > the default."""
    return flag or os.environ.get(EXPERIMENT_ENV) or spec or DEFAULT_EXPERIMENT


_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][\w+.-]*://[^:/@\s'\"]*):[^@/\s'\"]+@")


def redact(text: str) -> str:
    """`text` with the password of every URI in it replaced by `***` (postgresql://me:***@db/mlflow): what is
    printed, written to a report or logged to MLflow never holds a credential. The trials get the real URI
    out of band (the driver passes it with `tune.with_parameters`, not in the trial config Tune writes)."""
    return _CREDENTIALS.sub(r"\g<head>:***@", text)


def absolute_tracking_uri(uri: str) -> str:
    """Make a relative sqlite path absolute against the cwd; trials run in other directories (docs/PLATFORM.md §4)."""
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        return uri if path.startswith("/") or path == ":memory:" else f"sqlite:///{os.path.abspath(path)}"
    if uri.startswith("file:") or "://" not in uri:
        raise ConfigError(f"{uri!r}: MLflow 3 refuses the file store; use sqlite:///path/mlflow.db or http://host:port")
    return uri
