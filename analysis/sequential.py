"""Seeds until decided, the statistics: repeated confidence intervals over a schedule of looks (numpy/scipy only).

    look = decision(values, direction=+1, schedule=Schedule(5, 5, 30), level=0.95, precision=0.04)
    look.verdict, look.stop, look.seeds_needed    # "inconclusive", "continue", 41

A sequential sweep looks at a comparison's per-seed values after `first` seeds, then after every `step` more, up
to `max` (docs/SEQUENTIAL.md). Judging every look with the fixed-n t interval would call a null effect decided
far more often than 5 % (each look is another chance; `simulate(..., naive=True)` measures how much). The
repeated confidence interval (Jennison & Turnbull, "Group Sequential Methods", ch. 9) widens the t interval to
mean ± c · sd / sqrt(n) with one constant c for all looks (a Pocock-type boundary), chosen so that under no
effect P(max over looks k of |T_k| > c) = 1 − level, T_k the one-sample t statistic of the first n_k values. The
intervals then cover the true mean at every look at once, so they hold at whatever look the sweep stops —
including a stop decided by the data, which is what makes "precise" (narrow enough, even across 0) a valid stop.

T_k's joint law does not depend on the per-seed sd, only on the looks, so c is a quantile of max |T_k| over
simulated normal paths: simulated once per look tuple with a fixed seed, every level read off the same sample.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

N_PATHS = 200_000  # Monte Carlo paths behind a boundary: the 0.95 quantile's standard error is about 0.01
BOUNDARY_SEED = 20_250_523  # fixed: the same store gives the same report; apart from simulate()'s seeds
CHUNK = 25_000  # paths simulated at once (keeps the draw near 6 MB for 30 looks)
DEFAULT_PRECISION = 0.04  # the same default as the spec's seeds.precision (sweeps/sequential.py)
STOPS = ("decided", "precise", "max", "continue")


@dataclass(frozen=True)
class Schedule:
    """The seed counts a sequential sweep looks at: first, first + step, ..., max (max always included)."""

    first: int  # seeds of every cell before the first look
    step: int  # seeds added to the undecided cells per round
    max: int  # seeds per cell at most

    def __post_init__(self):
        if self.first < 2:
            raise ValueError(f"schedule first must be >= 2 (an interval needs two seeds), got {self.first}")
        if self.step < 1:
            raise ValueError(f"schedule step must be >= 1, got {self.step}")
        if self.max < self.first:
            raise ValueError(f"schedule max must be >= first ({self.first}), got {self.max}")

    @property
    def looks(self) -> tuple[int, ...]:
        return (*range(self.first, self.max, self.step), self.max)


@dataclass(frozen=True)
class Look:
    """The sequential rule's answer for one comparison at its current number of seeds."""

    n: int
    effect: float  # mean of the per-seed values
    ci_low: float  # repeated confidence interval; NaN with fewer than 2 seeds or zero spread
    ci_high: float
    verdict: str  # reproduced / contradicted / inconclusive
    stop: str  # one of STOPS
    seeds_needed: float  # smallest n with half-width <= precision at the spread seen; NaN without a spread
    boundary: float = field(default=float("nan"))  # c: the interval is effect ± c · sd / sqrt(n)


# ---------------------------------------------------------------- the boundary


@functools.lru_cache(maxsize=64)
def max_abs_t(looks: tuple[int, ...]) -> np.ndarray:
    """Sorted sample of max over `looks` of |T_k| under no effect (N_PATHS normal paths, fixed seed)."""
    looks = tuple(sorted(set(looks)))
    if not looks or looks[0] < 2:
        raise ValueError(f"looks must be seed counts >= 2, got {looks}")
    rng = np.random.default_rng(BOUNDARY_SEED)
    idx = np.asarray(looks) - 1
    n = np.asarray(looks, dtype=float)
    out = []
    for start in range(0, N_PATHS, CHUNK):
        x = rng.standard_normal((min(CHUNK, N_PATHS - start), looks[-1]))  # [paths, max seeds]
        s, q = np.cumsum(x, axis=1)[:, idx], np.cumsum(x * x, axis=1)[:, idx]  # [paths, looks]
        var = (q - s * s / n) / (n - 1)
        out.append(np.max(np.abs(s / n) / np.sqrt(var / n), axis=1))
    return np.sort(np.concatenate(out))


@functools.lru_cache(maxsize=1024)
def boundary(looks: tuple[int, ...], level: float) -> float:
    """c with P(max_k |T_k| > c) = 1 − level under no effect; with one look, Student's t quantile."""
    return float(np.quantile(max_abs_t(tuple(looks)), level))


def sequential_p(t: float, looks: tuple[int, ...]) -> float:
    """Smallest 1 − level at which the repeated interval excludes 0, for an observed |t| (Holm orders by it)."""
    sample = max_abs_t(tuple(looks))
    above = sample.size - np.searchsorted(sample, abs(t), side="left")
    return float((above + 1) / (sample.size + 1))  # +1: never 0 from a finite sample


def looks_for(n: int, schedule: Schedule) -> tuple[int, ...]:
    """The looks whose boundary covers n seeds: the schedule's, plus n itself when a failed trial left a count
    the schedule did not plan. Adding a look can only raise c (the max runs over more |T_k| of the same paths),
    so the interval stays at least as wide as the schedule's and covers the true mean jointly over the planned
    looks and this one. (Reusing the schedule's c alone would not cover an n below `first`: c can sit under
    the single-look t quantile there.) Beyond max, no boundary was planned: an error."""
    if n > schedule.max:
        raise ValueError(f"{n} seeds exceed the schedule's max of {schedule.max}: no boundary covers them")
    return schedule.looks if n in schedule.looks else tuple(sorted({*schedule.looks, n}))


# ---------------------------------------------------------------- one look


def decision(values, direction: int, schedule: Schedule, level: float = 0.95, precision: float = DEFAULT_PRECISION,
             naive: bool = False) -> Look:
    """Verdict and stopping reason for one comparison's per-seed `values` (NaNs dropped) at its Holm `level`.

    naive=True draws the fixed-n t interval instead (what ignoring the repeated looks would do; tests only)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n, nan = int(x.size), float("nan")
    if n > schedule.max:
        raise ValueError(f"{n} seeds exceed the schedule's max of {schedule.max}: no boundary covers them")
    last = "max" if n >= schedule.max else "continue"
    if n < 2 or np.all(x == x[0]):
        # no spread, no interval: identical seeds cannot give certainty (as findings._one); more seeds can
        return Look(n, float(x.mean()) if n else nan, nan, nan, "inconclusive", last, nan)
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    c = _t_quantile(level, n - 1) if naive else boundary(looks_for(n, schedule), level)
    half = c * sd / math.sqrt(n)
    lo, hi = mean - half, mean + half
    verdict = _verdict(lo, hi, direction)
    stop = "decided" if verdict != "inconclusive" else "precise" if half <= precision else last
    needed = _seeds_needed(sd, precision, level) if naive else math.ceil((c * sd / precision) ** 2)
    return Look(n, mean, lo, hi, verdict, stop, float(max(needed, 2)), c)


def decision_p(values, schedule: Schedule) -> float:
    """The sequential p of `values` (see sequential_p); 1 without a spread (nothing to reject), NaN below 2 seeds."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        return float("nan")
    if np.all(x == x[0]):
        return 1.0
    t = x.mean() / (x.std(ddof=1) / math.sqrt(x.size))
    return sequential_p(t, looks_for(int(x.size), schedule))


def _verdict(lo: float, hi: float, direction: int) -> str:
    if direction * lo > 0 and direction * hi > 0:
        return "reproduced"
    if direction * lo < 0 and direction * hi < 0:
        return "contradicted"
    return "inconclusive"


@functools.lru_cache(maxsize=4096)
def _t_quantile(level: float, df: int) -> float:
    return float(sps.t.ppf(1 - (1 - level) / 2, df))


def _seeds_needed(sd: float, precision: float, level: float) -> int:
    """Fixed-n: the smallest n with t(level, n − 1) · sd / sqrt(n) <= precision (t shrinks with n: search up
    from the normal approximation, which is always below it)."""
    n = max(2, math.ceil((sps.norm.ppf(1 - (1 - level) / 2) * sd / precision) ** 2))
    while _t_quantile(level, n - 1) * sd / math.sqrt(n) > precision:
        n += 1
    return n


# ---------------------------------------------------------------- operating characteristics


@dataclass(frozen=True)
class OperatingCharacteristics:
    sweeps: int
    false_decision: float  # share reproduced or contradicted (meaningful when effect == 0)
    power: float  # share reproduced (meaningful when effect > 0)
    contradicted: float
    mean_seeds: float
    stops: dict[str, float]  # stop reason -> share of sweeps


def simulate(n_sweeps: int, effect: float, sd: float, schedule: Schedule, level: float = 0.95,
             precision: float = DEFAULT_PRECISION, naive: bool = False, seed: int = 0) -> OperatingCharacteristics:
    """Run `n_sweeps` sequential sweeps of one comparison (normal per-seed values) through `decision`.

    Each sweep adds the schedule's seeds look by look and stops at the first look whose stop is not
    "continue". All values are drawn up front ([sweeps, max]); only the still-running sweeps are judged at
    each look."""
    x = np.random.default_rng(seed).normal(effect, sd, size=(n_sweeps, schedule.max))
    final: list[Look | None] = [None] * n_sweeps
    running = list(range(n_sweeps))
    for n in schedule.looks:
        still = []
        for i in running:
            look = decision(x[i, :n], +1, schedule, level, precision, naive)
            if look.stop == "continue":
                still.append(i)
            else:
                final[i] = look
        running = still
    looks = [f for f in final if f is not None]  # every sweep stops by max
    verdicts = np.array([f.verdict for f in looks])
    return OperatingCharacteristics(
        n_sweeps, float(np.mean(verdicts != "inconclusive")), float(np.mean(verdicts == "reproduced")),
        float(np.mean(verdicts == "contradicted")), float(np.mean([f.n for f in looks])),
        {s: float(np.mean([f.stop == s for f in looks])) for s in STOPS})
