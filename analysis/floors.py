"""Did an arm learn anything? Each arm's score against its own chance level, measured in the same runs.

A comparison between two arms that both sit at chance says nothing about the paper's question, however large
the difference between them: such a comparison is **untestable**, not inconclusive. Chance levels are logged by
every run (unified/baselines.py, unified/evaluate.py):

| metric | its chance level | what scores it |
|---|---|---|
| `eval/und/<m>` | `baseline/und/<m>` | the best constant answer per question type, chosen on the training images |
| `eval/gen/attr_acc` | `eval/gen/attr_acc_shuffled` | the same generated images judged against another item's prompt |

An arm is a set of runs (one per seed) of one configuration; its per-seed excess is (score − chance) of the
same run, and the arm is **at chance** when the interval of the mean excess (analysis/stats.py, level 1 − α)
does not lie wholly above 0. A comparison's arms come in groups — the two arms of one gain (mixed and its
single-task control), or every ratio of a mix-ratio curve — and the comparison is untestable when every arm of
some group is at chance: a gain between two arms at chance measures nothing, and a difference of gains or a
slope built on it inherits that.

Each arm also carries what it trained on, from the `budget/*` metrics its runs logged once (unified/train.py):
optimizer updates and distinct understanding and generation samples. Every comparison prints both arms' budgets,
so a gain from more updates (data.mix_mode added) is told from a gain at equal updates (matched, replace).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import stats

CHANCE_NAMES = {"und": "the constant-answer level", "gen": "the prompt-blind level"}
BUDGET = ("budget/updates", "budget/und_samples", "budget/gen_samples")  # logged once per run (unified/train.py)


def chance_metric(metric: str) -> str | None:
    """The column holding `metric`'s chance level, or None when it has none (fd, token accuracy, ...)."""
    if metric.startswith("eval/und/"):
        return "baseline/und/" + metric.removeprefix("eval/und/")
    if metric == "eval/gen/attr_acc":
        return "eval/gen/attr_acc_shuffled"
    return None


def chance_name(metric: str) -> str:
    return CHANCE_NAMES["gen" if is_generation(metric) else "und"]


def is_generation(metric: str) -> bool:
    """A generation metric, or a comparison's label built on one ("d gain / d fraction (eval/gen/attr_acc)")."""
    return "eval/gen/" in metric


@dataclass
class Arm:
    name: str  # e.g. "mixed" or "model.variant=vq-vq, understanding"
    score: np.ndarray  # per seed (mean over the arm's runs of that seed)
    chance: np.ndarray  # per seed, NaN where the runs logged no chance level
    updates: float = np.nan  # optimizer updates of the arm's runs; NaN where they logged no budget (older runs)
    und_samples: float = np.nan  # distinct understanding samples
    gen_samples: float = np.nan  # distinct generation samples

    @property
    def measured(self) -> bool:
        return bool(np.isfinite(self.chance).any())

    @functools.cached_property
    def excess(self) -> stats.Estimate:
        """The mean over seeds of (score − chance), with its interval (computed once: the report asks often)."""
        return stats.estimate(self.score - self.chance)

    def at_chance(self) -> bool | None:
        """True when the arm is within noise of (or below) its chance level; None when no level was logged."""
        if not self.measured:
            return None
        est = self.excess
        lo, _ = est.interval(1 - stats.ALPHA)
        if not np.isfinite(lo):  # one seed, or the same excess in every seed: no noise to be within
            return bool(est.effect <= 0)
        return bool(lo <= 0)

    def budget(self) -> str:
        """'3,000 updates, 64,000 + 32,000 samples' (distinct understanding + generation samples)."""
        if not np.isfinite(self.updates):
            return "budget not logged"
        return f"{self.updates:,.0f} updates, {self.und_samples:,.0f} + {self.gen_samples:,.0f} samples"

    def describe(self) -> str:
        est = self.excess
        if not self.measured:
            return f"{self.name} {np.nanmean(self.score):.3f} ({self.budget()}; chance not logged)"
        lo, hi = est.interval(1 - stats.ALPHA)
        band = f" [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else ""
        return (f"{self.name} {np.nanmean(self.score):.3f} ({self.budget()}) vs chance {np.nanmean(self.chance):.3f}: "
                f"{est.effect:+.3f}{band}" + (" at chance" if self.at_chance() else ""))


def arms(rows: pd.DataFrame, metric: str, by: list[str], group_by: list[str] | None = None) -> list[list[Arm]]:
    """The arms among `rows` (one per distinct value of the `by` columns), grouped by `group_by` (default: every
    `by` column but data.tasks, so that each group is the pair of arms behind one gain)."""
    if metric not in rows or rows.empty:
        return []
    group_by = [k for k in by if k != "data.tasks"] if group_by is None else group_by
    chance = chance_metric(metric)
    frame = rows[[*by, "seed"]].copy()
    frame["score"] = rows[metric].astype(float)
    frame["chance"] = rows[chance].astype(float) if chance in rows else np.nan
    for key in BUDGET:
        frame[key] = rows[key].astype(float) if key in rows else np.nan
    frame = frame[frame["score"].notna()]
    out = []
    for _, group in (frame.groupby(group_by, sort=True, dropna=False) if group_by else [(None, frame)]):
        members = []
        for values, g in group.groupby(by, sort=True, dropna=False):
            values = values if isinstance(values, tuple) else (values,)
            name = ", ".join(str(v) if k == "data.tasks" else f"{k}={v}" for k, v in zip(by, values, strict=True))
            per_seed = g.groupby("seed")[["score", "chance"]].mean()
            budget = [float(g[k].mean()) if g[k].notna().any() else np.nan for k in BUDGET]  # one value per arm
            members.append(Arm(name, per_seed["score"].to_numpy(), per_seed["chance"].to_numpy(), *budget))
        out.append(members)
    return out


def untestable_reason(groups: list[list[Arm]], metric: str) -> str:
    """'' when the comparison can be tested; else why not (names the arms at chance)."""
    for group in groups:
        if group and all(a.at_chance() is True for a in group):
            names = " and ".join(a.name for a in group)
            both = "both arms" if len(group) == 2 else "every arm" if len(group) > 2 else "the arm"
            why = "generation ignores the prompt" if is_generation(metric) else f"{both} at {chance_name(metric)}"
            return f"{why} ({names})"
    return ""


def describe(groups: list[list[Arm]]) -> str:
    return "; ".join(a.describe() for group in groups for a in group)
