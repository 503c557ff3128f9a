"""Free the worker groups that stopped Ray Train trials leave behind, without the State API.

A Ray Train controller reserves its workers in a placement group of its own. When Tune stops a trial (ASHA)
the controller dies with the trial's actor, but GCS keeps the group while the job lives: it frees a group only
once its creator job *and* actor are dead. Train V2's detached cleaner removes it only while the State API
(the dashboard) answers; when that is slow, down, or fighting a second local Ray for its ports, the next
trial on a full machine waits forever (docs/LOG.md). The driver sweeps such groups itself.
"""

from __future__ import annotations

import time

from ray import tune

CHECK_EVERY_S = 1.0
SETTLE_S = 30.0  # at the end of a Tuner, how long to wait for stopped trials' controllers to die


def _actor_groups() -> list:
    """This job's placement groups, not yet removed, that an actor created (a Train controller's workers)."""
    import ray

    from sweeps.ray_internals import placement_groups, removed_state

    job, removed = ray.get_runtime_context().get_job_id(), removed_state()
    return [pg for pg in placement_groups() if pg.creator_job_id.hex() == job and not pg.is_detached
            and pg.state != removed and ray.ActorID(pg.creator_actor_id) != ray.ActorID.nil()]


def free_orphaned_placement_groups() -> int:
    """Remove this job's placement groups whose creating actor is dead; return how many.

    Groups created by the driver itself (Tune's per-trial groups) have no creator actor: never touched.
    """
    import ray
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    orphans = [pg for pg in _actor_groups() if pg.creator_actor_dead]
    for pg in orphans:
        remove_placement_group(PlacementGroup(ray.PlacementGroupID(pg.placement_group_id)))
    return len(orphans)


class FreeOrphans(tune.Callback):
    """Runs `free_orphaned_placement_groups` from Tune's event loop, at most once a second, and once more when
    the Tuner ends: Tune returns while the controllers of the trials it stopped last are still dying, and a
    group left behind would hold its CPUs for whatever the same Ray runs next."""

    def __init__(self):
        self.last = 0.0

    def on_step_begin(self, iteration, trials, **info):
        if time.monotonic() - self.last >= CHECK_EVERY_S:
            self.last = time.monotonic()
            free_orphaned_placement_groups()

    def on_experiment_end(self, trials, **info):
        deadline = time.monotonic() + SETTLE_S
        while True:
            free_orphaned_placement_groups()
            if not _actor_groups() or time.monotonic() > deadline:
                return
            time.sleep(0.2)
