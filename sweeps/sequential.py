"""Seeds until decided: the schedule a spec's `seeds: {start, first, step, max, precision}` asks for, and the
rounds it runs (docs/SEQUENTIAL.md has the decision rule; analysis/sequential.py computes it).

A sequential spec runs `first` seeds of every cell, then asks `undecided` which cells still feed a comparison
that is neither decided (its repeated confidence interval excludes 0) nor precise (half-width <= `precision`),
and gives only those cells the next `step` seeds, until `max`. The seeds are `start`, `start + 1`, ...: a cell
at round k holds the first n_k of them, so every arm of a comparison holds the same seeds and pairs by seed.

The rounds are a pure function of what MLflow holds FINISHED: `resume` recomputes them from the store and
runs only what is missing, whatever round the driver was stopped in.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass

if typing.TYPE_CHECKING:
    from sweeps.spec import Trial

DEFAULT_PRECISION = 0.04  # a comparison whose interval is this narrow stops even if it straddles 0


@dataclass(frozen=True)
class Sequential:
    start: int  # the first seed; a round's seeds continue from it
    first: int  # seeds of every cell in the first round
    step: int  # seeds added per round to the cells still undecided
    max: int  # seeds per cell at most
    precision: float = DEFAULT_PRECISION

    @property
    def looks(self) -> tuple[int, ...]:
        """The seed counts at which the analysis looks: first, first + step, ..., max (always included)."""
        counts = list(range(self.first, self.max, self.step))
        return tuple([*counts, self.max])

    def seeds(self, n: int) -> list[int]:
        return list(range(self.start, self.start + n))

    def next_count(self, n: int) -> int | None:
        """The seed count of the look after one at n seeds; None at max."""
        later = [k for k in self.looks if k > n]
        return later[0] if later else None


@dataclass(frozen=True)
class Look:
    """What the driver asks after a round: which of this sweep's cells still feed an undecided comparison."""

    tracking_uri: str
    experiment: str  # its name
    sweep: str
    smoke: bool
    first: int  # the schedule (Sequential's, as plain numbers: analysis/ imports nothing from sweeps/)
    step: int
    max: int
    precision: float
    members: dict[str, frozenset[str]]  # a suite: member spec -> its cells (analysed apart); else {sweep: cells}


Undecided = typing.Callable[[Look], set[str]]  # the analysis's answer: cell hashes that need more seeds


def next_round(plan: Sequential, trials: list[Trial], undecided: set[str], reseed) -> list[Trial]:
    """The trials a round adds: the next look's seeds for each undecided cell (`reseed(trial, seed)` makes one)."""
    by_cell: dict[str, list[Trial]] = {}
    for t in trials:
        by_cell.setdefault(t.cell, []).append(t)
    added = []
    for cell in sorted(undecided & by_cell.keys()):
        have = by_cell[cell]
        n = plan.next_count(len(have))
        if n is not None:
            added += [reseed(have[0], s) for s in plan.seeds(n)[len(have):]]
    return added
