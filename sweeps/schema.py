"""The MLflow record's schema: every tag name, the metric prefixes and the run-name pattern, in one light module.

Writers (sweeps/tracking.py, trial.py, lease.py) and readers (analysis/, `status`, `runs`) import the names from
here, so a renamed tag changes in one place. Standard library only: the readers need no MLflow to know them.
docs/DESIGN.md §5 says what the record holds.
"""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]+$")  # a sweep's name: it names runs and MLflow filters
RUN_NAME = "{sweep}/{cell}/s{seed}"  # a trial run's name

# every run
ROLE = "unisweep.role"  # "sweep" (a parent run), "trial", "doctor"
SWEEP = "unisweep.sweep"
SMOKE = "unisweep.smoke"  # "true" for --smoke runs
GIT_SHA, DIRTY = "unisweep.git_sha", "unisweep.dirty"
VERSION = "unisweep.version."  # + a package name: its installed version
# on a parent run and every trial run: "<base preset> v<N>" (unified.config.PRESET_VERSIONS)
PRESET_VERSION = "unisweep.preset_version"
# a trial run
CELL, SEED = "unisweep.cell", "unisweep.seed"
VARIANT = "unisweep.variant"
MEMBERS = "unisweep.members"  # a suite's trial: the member specs that ask for its cell, comma-separated
STUDY = "unisweep.study"  # a search trial: the grid cell whose Optuna study sampled it
AXIS = "unisweep.axis."  # + a key that varies across the sweep (sweeps.spec.varying_axes) = the trial's value
STOPPED_EARLY = "unisweep.stopped_early"  # ASHA stopped it: FINISHED, with fewer eval points than the budget
ERROR = "unisweep.error"  # why a FAILED run failed, one line
FOR_GOOD = "unisweep.failed_for_good"  # "true": FAILED for a reason a rerun cannot change (a diverging loss)
# the CPU its rank 0 trained on and torch's kernels for it (sweeps/trial.py): the same seed gives other floats on
# another CPU, and a trajectory near a threshold can end elsewhere (docs/LOG.md, 2026-12-01)
CPU = "unisweep.cpu"
NODE = "unisweep.node"
NODES = "unisweep.nodes"  # a Ray Train trial's worker nodes, by rank, comma-separated
RESUMED_FROM = "unisweep.resumed_from"  # the percent a restarted trial resumed from (its last checkpoint)
# a parent run
STORAGE = "unisweep.storage"  # where its launch kept Ray results and Optuna studies
LEASE_OWNER, LEASE_SINCE, LEASE_BEAT = "unisweep.lease.owner", "unisweep.lease.since", "unisweep.lease.heartbeat"
FINDING = "finding."  # + "<key>.verdict" (tag), "<key>.effect" / ".ci_low" / ".ci_high" (metrics): the report's

# metrics, by prefix
EVAL, TRAIN, BASELINE, BUDGET, TIME = "eval/", "train/", "baseline/", "budget/", "time/"
EVAL_CLOCK = "time/train_s"  # logged at every eval point and only there: which eval points a run reached
