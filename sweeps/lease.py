"""One live driver per sweep: a lease held in tags of the sweep's parent run, renewed by a heartbeat.

`acquire` refuses (`SweepBusy`, one line naming the live driver's host, pid and start) while another driver's
heartbeat is younger than the lease's time to live, and takes over a lease whose driver stopped beating (killed,
its machine lost): the caller then marks that driver's RUNNING runs FAILED and reruns them. MLflow offers no
compare-and-set, so a new holder writes its claim, waits `SETTLE_S` and reads it back: of two drivers that start
together, the later write wins and the other refuses. A background thread renews the heartbeat every quarter of
the time to live; `release` clears the claim when the driver ends, however it ends.

    UNISWEEP_LEASE_TTL_S   seconds without a heartbeat after which a lease is free (default 60)
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from sweeps import schema
from sweeps.errors import SweepBusy

OWNER, SINCE, BEAT = schema.LEASE_OWNER, schema.LEASE_SINCE, schema.LEASE_BEAT  # tags of the parent run
TTL_ENV = "UNISWEEP_LEASE_TTL_S"
SETTLE_S = 1.0  # between writing a claim and reading it back: longer than one driver's check-then-write


def ttl_s() -> float:
    return float(os.environ.get(TTL_ENV, 60))


@dataclass
class Holder:
    owner: str  # host:pid:nonce
    since: str
    beat: float  # epoch seconds of the last heartbeat

    @property
    def age_s(self) -> float:
        return time.time() - self.beat

    def describe(self) -> str:
        host, pid, _ = (self.owner.split(":") + ["", ""])[:3]
        return f"host {host}, pid {pid}, since {self.since}, last heartbeat {self.age_s:.0f} s ago"


@dataclass
class Lease:
    client: object
    run_id: str
    owner: str
    took_over: Holder | None = None  # the driver whose expired lease this one replaced
    _stop: threading.Event = field(default_factory=threading.Event)
    _beater: threading.Thread | None = None

    def start_beating(self) -> None:
        self._beater = threading.Thread(target=self._beat, name="unisweep-lease", daemon=True)
        self._beater.start()

    def release(self) -> None:
        self._stop.set()
        if self._beater is not None:  # a beat already on its way would land after the release and revive it
            self._beater.join(timeout=60)
        held = holder(self.client, self.run_id)
        if held is not None and held.owner == self.owner:
            self.client.set_tag(self.run_id, BEAT, "0")  # expired at once: the next driver need not wait

    def _beat(self) -> None:
        while not self._stop.wait(ttl_s() / 4):
            try:
                self.client.set_tag(self.run_id, BEAT, f"{time.time():.3f}")
            except Exception:  # noqa: BLE001 - a store outage: the next beat tries again
                pass


def holder(client, run_id: str) -> Holder | None:
    tags = client.get_run(run_id).data.tags
    if OWNER not in tags:
        return None
    return Holder(tags[OWNER], tags.get(SINCE, "?"), float(tags.get(BEAT, 0) or 0))


def acquire(client, run_id: str, sweep: str) -> Lease:
    """The sweep's lease for this process, or `SweepBusy` while another live driver holds it."""
    held = holder(client, run_id)
    if held is not None and held.age_s < ttl_s():
        raise SweepBusy(f"sweep {sweep!r} is being run by another driver ({held.describe()}); wait for it to end "
                        f"or stop it; a driver silent for {ttl_s():.0f} s is taken over")
    me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    client.set_tag(run_id, OWNER, me)
    client.set_tag(run_id, SINCE, time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    client.set_tag(run_id, BEAT, f"{time.time():.3f}")
    time.sleep(SETTLE_S)
    now = holder(client, run_id)
    if now is None or now.owner != me:
        raise SweepBusy(f"sweep {sweep!r} was claimed at the same moment by another driver "
                        f"({now.describe() if now else 'unknown'}); this one stands down")
    lease = Lease(client, run_id, me, took_over=held if held is not None and held.beat > 0 else None)
    lease.start_beating()
    return lease
