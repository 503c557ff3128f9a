"""`unisweep doctor`: what a sweep needs from a cluster, checked before anything launches; one line per check.

    unisweep doctor [SPEC] [--address ADDR] [--tracking-uri URI] [--storage PATH] [--cache-dir DIR] [--json]

- ray        the cluster answers (within seconds, not Ray's minute of retries) and lets this client in;
- resources  one trial of SPEC fits on the live nodes (docs/PLATFORM.md §4), and how many run at once;
- tracking   the MLflow store takes a run (created, then deleted);
- reach      every node reaches that store (a probe task per node);
- storage    `storage` (Ray results, checkpoints, Optuna studies) and the stage-0 cache are one shared folder:
  a file written here is read on every node, and a file each node writes is read back here.

A failure names the node and the fix. docs/CLUSTER.md says what each means.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sweeps import defaults

PROBE_DIR = ".unisweep-doctor"
PROBE_TIMEOUT_S = 60.0  # a node whose worker cannot start (a broken environment) must not hang the doctor


@dataclass
class Check:
    name: str  # ray, resources, tracking, cache, storage, reach
    ok: bool
    detail: str  # what was found; for a failure, where and the fix

    def line(self) -> str:
        return f"{'ok' if self.ok else 'FAIL':<5} {self.name:<10} {self.detail}"

    def as_json(self) -> dict:
        return asdict(self)


def diagnose(spec=None, address: str | None = None, uri: str | None = None, experiment: str | None = None,
             storage: str | None = None, cache_dir: str | None = None) -> list[Check]:
    """Every check, in order; the later ones only when Ray answered."""
    import ray

    from unified.config import default_cache_dir

    uri = defaults.tracking_uri(uri, spec.tracking.uri if spec and spec.tracking else None)
    experiment = defaults.experiment_name(experiment, spec.tracking.experiment if spec and spec.tracking else None)
    storage = storage or (spec.storage if spec else None)
    cache = str(cache_dir or default_cache_dir())
    checks = [_reach_ray(address)]
    if not checks[0].ok:
        return checks
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cpus = sum(n["Resources"].get("CPU", 0) for n in nodes)
        gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
        checks[0].detail += f": {len(nodes)} node(s) alive, {cpus:g} CPU, {gpus:g} GPU"
        if spec is not None:
            checks.append(_fit(spec, nodes, cpus, gpus))
        checks.append(_write_tracking(uri, experiment))
        folders = {"cache": cache, **({"storage": storage} if storage else {})}
        checks += _probe_nodes(nodes, folders, uri, experiment if checks[-1].ok else None)
    finally:
        ray.shutdown()
    return checks


def _reach_ray(address: str | None) -> Check:
    import os

    import ray

    from sweeps.driver import trial_env_vars

    address = address or os.environ.get("RAY_ADDRESS") or None
    where = address or "a local Ray (no --address, no $RAY_ADDRESS)"
    host_port = _gcs_host_port(address)
    if host_port is not None:
        try:
            socket.create_connection(host_port, timeout=5).close()
        except OSError as e:
            return Check("ray", False, f"nothing answers at {address} ({e.strerror or e}): start the head with "
                                       "`ray start --head`, or pass its GCS address, host:6379, as --address")
    try:
        ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": trial_env_vars()})
    except Exception as e:  # noqa: BLE001 - any refusal is the one line this check prints
        first = " ".join(str(e).split())[:300]
        return Check("ray", False, f"{where} refused this client: {first}. With token auth on, set RAY_AUTH_MODE=token "
                                   "and the cluster's token in $RAY_AUTH_TOKEN (or ~/.ray/auth_token)")
    return Check("ray", True, where)


def _gcs_host_port(address: str | None) -> tuple[str, int] | None:
    """(host, port) of a plain GCS address (host:port); None for auto, ray://, or none."""
    if not address or "://" in address or address == "auto" or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    return (host, int(port)) if port.isdigit() else None


def _fit(spec, nodes: list[dict], cpus: float, gpus: float) -> Check:
    from sweeps import resources as R
    from sweeps.spec import SpecError

    try:
        R.check_fits(spec, [n["Resources"] for n in nodes])
        n = R.max_concurrent(spec, cpus, gpus)
    except SpecError as e:
        return Check("resources", False, f"{e.message}: add nodes, or lower resources.cpus_per_worker / "
                                         "gpus_per_worker / workers_per_trial in the spec")
    need = R.trial_resources(spec)
    return Check("resources", True, f"a trial needs {need['CPU']:g} CPU, {need['GPU']:g} GPU; {n} run at once")


def _write_tracking(uri: str, experiment: str) -> Check:
    from mlflow import MlflowClient

    from sweeps import tracking

    shown = defaults.redact(uri)
    try:
        experiment_id = tracking.ensure_store(uri, experiment)
        client = MlflowClient(uri)
        run = client.create_run(experiment_id, run_name="unisweep-doctor", tags={tracking.ROLE: "doctor"})
        client.log_param(run.info.run_id, "probe", "1")
        client.delete_run(run.info.run_id)
    except Exception as e:  # noqa: BLE001
        first = defaults.redact(" ".join(str(e).split()))[:300]
        return Check("tracking", False, f"cannot write to {shown} (experiment {experiment!r}): {first}. Check that "
                                        "the server is up and that this user may create runs")
    note = ""
    if uri.startswith(("sqlite:", "file:")):
        note = " (a file store: on several nodes every node must see the same file; prefer an `mlflow server`)"
    return Check("tracking", True, f"{shown}, experiment {experiment!r}: a run created and deleted{note}")


def _probe_nodes(nodes: list[dict], folders: dict[str, str], uri: str, experiment: str | None) -> list[Check]:
    """One probe task pinned to each node: it reads what this process wrote in each folder, writes its own file,
    and, when `experiment` is given, reaches the tracking store; then this process reads the nodes' files."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = secrets.token_hex(8)
    local = {name: path for name, path in folders.items() if "://" not in path}
    problems: dict[str, list[str]] = {name: [] for name in [*folders, "tracking"]}
    for name, path in local.items():
        try:
            (Path(path) / PROBE_DIR).mkdir(parents=True, exist_ok=True)
            (Path(path) / PROBE_DIR / token).write_text(token)
        except OSError as e:
            problems[name].append(f"cannot write {path} here ({e.strerror or e}): make it writable, or pass "
                                  f"--{'cache-dir' if name == 'cache' else 'storage'}")
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
    pending = {n["NodeID"]: (n.get("NodeManagerAddress", "?"), probe.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
            local, token, uri, experiment)) for n in nodes}
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    for node_id, (ip, ref) in pending.items():
        where = f"node {ip} ({node_id[:8]})"
        try:
            seen = ray.get(ref, timeout=max(1.0, deadline - time.monotonic()))
        except Exception as e:  # noqa: BLE001 - a timeout, or the node died
            problems["storage" if "storage" in folders else "cache"].append(
                f"{where} ran no probe within {PROBE_TIMEOUT_S:g} s ({type(e).__name__}): check the node's "
                "Python environment has unisweep installed")
            continue
        for name, path in local.items():
            if not seen[name]:
                problems[name].append(f"{where} does not see {path} as written here: mount the same shared folder "
                                      f"at {path} on every node")
            elif not (Path(path) / PROBE_DIR / f"{token}-{node_id}").is_file():
                problems[name].append(f"{where} wrote to {path}, but its file is not here: mount the same shared "
                                      f"folder at {path} on every node")
        if seen["tracking"]:
            problems["tracking"].append(f"{where} cannot reach {defaults.redact(uri)}: "
                                        f"{defaults.redact(seen['tracking'])}. Let "
                                        "every node reach the MLflow server (host, port, firewall)")
    for path in local.values():
        for leftover in (Path(path) / PROBE_DIR).glob(f"{token}*"):
            leftover.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (Path(path) / PROBE_DIR).rmdir()  # unless another doctor probes at the same time
    checks = []
    for name, path in folders.items():
        if problems[name]:
            checks += [Check(name, False, p) for p in problems[name]]
        elif name not in local:
            checks.append(Check(name, True, f"{path}: not a local folder; Ray and the nodes read it themselves"))
        else:
            checks.append(Check(name, True, f"{path}: one shared folder for this process and {len(nodes)} node(s)"))
    if experiment is not None:
        checks += [Check("reach", False, p) for p in problems["tracking"]] or [
            Check("reach", True, f"every node ({len(nodes)}) reaches {defaults.redact(uri)}")]
    return checks


def _probe(folders: dict[str, str], token: str, uri: str, experiment: str | None) -> dict:
    """Runs on one node: what it sees of this process's files, and whether it reaches the tracking store."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    seen: dict = {}
    for name, path in folders.items():
        mine = Path(path) / PROBE_DIR / token
        try:
            seen[name] = mine.read_text() == token
            (Path(path) / PROBE_DIR / f"{token}-{node_id}").write_text(node_id)
        except OSError:
            seen[name] = False
    seen["tracking"] = None
    if experiment is not None:
        try:
            from mlflow import MlflowClient

            if MlflowClient(uri).get_experiment_by_name(experiment) is None:
                seen["tracking"] = f"no experiment {experiment!r} there"
        except Exception as e:  # noqa: BLE001
            seen["tracking"] = " ".join(str(e).split())[:200]
    return seen
