"""The private Ray APIs unisweep uses, in one place: each is tied to the Ray versions pyproject.toml allows
(`ray[...]>=...,<...`), and tests/test_versions.py fails loudly when the installed Ray is outside that range
or one of these stops importing. Public APIs are used everywhere else.

- the GCS placement-group table (sweeps/orphans.py frees the worker groups of stopped Train trials without
  the State API): `ray._private.state`, `ray.core.generated.gcs_pb2`;
- a Tune trial's session stop event (sweeps/trial.py tells ASHA's stop from a failure):
  `ray.train._internal.session.get_session`;
- the runtime env of the Ray job a driver runs in (`ray job submit`), which Ray hands the entrypoint as JSON
  in `RAY_JOB_CONFIG_JSON_ENV_VAR` (sweeps/driver.py leaves the job's own env vars alone).
"""

from __future__ import annotations


def placement_groups() -> list:
    """Every placement group GCS holds, as `gcs_pb2.PlacementGroupTableData` messages."""
    from ray._private.state import state
    from ray.core.generated import gcs_pb2

    return [gcs_pb2.PlacementGroupTableData.FromString(raw)
            for raw in state._connect_and_get_accessor().get_placement_group_table()]


def removed_state() -> int:
    from ray.core.generated import gcs_pb2

    return gcs_pb2.PlacementGroupTableData.REMOVED


def trial_stop_event():
    """The event Tune sets when it stops the calling trial, or None outside a Tune trial."""
    from ray.train._internal.session import get_session

    session = get_session()
    return session.stop_event if session is not None else None


def job_env_vars() -> dict[str, str]:
    """The env vars of the Ray job this process is the entrypoint of; {} outside `ray job submit`."""
    import json
    import os

    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    raw = os.environ.get(RAY_JOB_CONFIG_JSON_ENV_VAR)
    return dict((json.loads(raw).get("runtime_env") or {}).get("env_vars") or {}) if raw else {}


def check() -> None:
    """Import every private API above (no Ray session needed): what tests/test_versions.py runs."""
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR  # noqa: F401
    from ray._private.state import state  # noqa: F401
    from ray.core.generated import gcs_pb2  # noqa: F401
    from ray.train._internal.session import get_session  # noqa: F401

    assert hasattr(state, "_connect_and_get_accessor") and hasattr(gcs_pb2.PlacementGroupTableData, "REMOVED")
