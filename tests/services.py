"""Real services the tests start on 127.0.0.1: a PostgreSQL server (Debian's package, which `make test` installs
through scripts/apt_install.sh) and Ray nodes made with `ray start`, each in its own process group."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _pg_bin(name: str) -> str:
    """Debian keeps the server's programs out of PATH, under /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or [shutil.which(name)]
    if not found[-1]:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: `make test` installs it "
                           "(scripts/apt_install.sh)")
    return found[-1]


class Postgres:
    """A throwaway PostgreSQL server on 127.0.0.1:`port` with one database, `mlflow`, trust auth on loopback.

    PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user the package made, in a
    folder of its own under /tmp (pytest's are private to root, and its socket path must stay short)."""

    def __init__(self, port: int):
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def uri(self) -> str:
        return f"postgresql://mlflow@127.0.0.1:{self.port}/mlflow"

    def _run(self, *cmd: str) -> None:
        subprocess.run([*self.as_owner, *cmd], check=True, capture_output=True, timeout=120)

    def start(self) -> Postgres:
        if self.as_owner:
            shutil.chown(self.root, "postgres")
        self._run(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "mlflow", "--no-sync")
        self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "start",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off")
        self._run(_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "mlflow", "mlflow")
        return self

    def stop(self) -> None:
        try:
            self._run(_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def ray_cli() -> str:
    return str(Path(sys.executable).with_name("ray"))


def start_ray_node(args: list[str], env: dict, private: tuple[str, ...] = ()) -> subprocess.Popen:
    """`ray start ARGS` as the leader of a new session. Its raylet stays in that session after `ray start`
    returns, and so do the workers the raylet spawns (each in a process group of its own): `kill_node` ends that
    node alone, as a lost machine would end (`ray stop` would end every Ray on this machine).

    `private` folders are hidden from the node behind an empty tmpfs in a mount namespace of its own (root only):
    a machine that did not mount the shared folder the others did."""
    cmd = [ray_cli(), "start", *args, "--disable-usage-stats"]
    if private:
        mounts = " && ".join(f"mount -t tmpfs tmpfs {shlex.quote(path)}" for path in private)
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f"{mounts} && exec {shlex.join(cmd)}"]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    out, _ = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{out[-3000:]}")
    return proc


def _session(proc: subprocess.Popen) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and os.getsid(int(entry)) == proc.pid:
                pids.append(int(entry))
        except ProcessLookupError:
            pass
    return pids


def kill_node(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    for pid in _session(proc):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def stop_ray_node(proc: subprocess.Popen) -> None:
    """SIGTERM to the node's processes, then SIGKILL to what is left a few seconds later."""
    kill_node(proc, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _session(proc) and time.monotonic() < deadline:
        time.sleep(0.2)
    kill_node(proc)
