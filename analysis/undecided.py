"""Which cells of a sequential sweep still need seeds: the analysis side of seeds until decided.

    cells = undecided_cells(look)     # look: sweeps.sequential.Look (read by attribute; no import of sweeps/)

After each round the driver asks this function (the CLI composes it in). It reads the sweep's FINISHED trial
runs, computes every finding with the sequential rule (analysis/sequential.py: repeated confidence intervals
over the schedule's looks) and returns the cells behind each comparison whose `stop` is "continue": neither
decided (its interval excludes 0), nor precise (half-width <= the schedule's precision), nor at its last look.
A suite's members are analysed apart, each on its own cells, as its report does.
"""

from __future__ import annotations

import pandas as pd

from analysis import findings as F
from analysis import query
from analysis.sequential import Schedule


def undecided_cells(look) -> set[str]:
    data = query.load(look.tracking_uri, [look.sweep], look.experiment)
    trials = data.trials
    trials = trials[trials["status"].eq("FINISHED") & trials["smoke"].eq(look.smoke)]
    schedule = Schedule(look.first, look.step, look.max)
    cells: set[str] = set()
    for member_cells in look.members.values():
        rows = trials[trials["cell"].isin(member_cells)]
        if rows.empty:
            continue
        verdicts = F.all_findings(rows, data.histories, schedule=schedule, precision=look.precision)
        cells |= continuing(verdicts.values())
    return cells


def continuing(verdicts) -> set[str]:
    """The cells behind every comparison of `verdicts` whose sequential rule says to go on."""
    cells: set[str] = set()
    for v in verdicts:
        table: pd.DataFrame = v.comparisons
        if table.empty or "stop" not in table:
            continue
        for listed in table.loc[table["stop"].eq("continue"), "cells"]:
            cells |= set(str(listed).split(",")) - {""}
    return cells
