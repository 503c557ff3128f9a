"""The paper's eight findings (docs/DESIGN.md §2) as verdicts: one pure function per finding, DataFrames in.

    verdicts = all_findings(trials, histories)    # frames from analysis.query.load; {"1-und": Verdict, ..., "8": ...}

Inputs: `trials` (one row per FINISHED trial: dotted config keys, `seed`, latest metrics = the final eval
point, the highest step logged) and `histories` (run_id, key, step, value; finding 2 only).

Metrics. Understanding: `eval/und/total` (finding 6: `eval/und/<metric of the concept>`, e.g.
`eval/und/face_color`). Generation: `eval/gen/attr_acc`, only ever compared within one variant (mixed vs
generation-only of the same variant); across variants only gains are compared (finding 3), never raw scores.

The unit of evidence is a **gain paired by seed**: mixed − understanding-only (understanding side) or mixed −
generation-only (generation side), between two runs whose configs differ only in `data.tasks` and share the
seed. Runs are grouped by every config key that varies in the sweep (besides `data.tasks` and `seed`), so a
gain never mixes configurations. Unless a finding varies them, runs are held at the baseline:
`model.affine_strength` = 0, `model.freeze_llm` = false, `model.shared_adapter` = the variant's default
(shared when aligned). Understanding-only training never uses the output space, so a variant without an
understanding-only arm borrows the one of its input space (`share_controls`; the verdict's detail says so).

Decision rule (analysis/stats.py). A comparison's effect is the mean over seeds of one number per seed (a gain,
a difference of gains, or a per-seed slope or curvature); its interval is a percentile bootstrap over seeds,
widened to Student's t interval where that is wider (few seeds: see analysis/stats.py). The comparisons of one
finding form its Holm family (α = 0.05): each interval is drawn at its Holm step-down level (1 − α/m for the
strongest of m, ...), so "the interval excludes 0" is Holm's rejection.
Seeds until decided (a spec's `seeds: {first, step, max, precision}`): given the schedule, every interval is
instead a repeated confidence interval over its looks and each comparison says why its seeds stop or go on
(analysis/sequential.py, docs/SEQUENTIAL.md).
Before any of that, every comparison asks whether its arms learned anything (analysis/floors.py): each arm's
score minus its own run's measured chance level (constant answer; prompt-blind generation), paired by seed.
- comparison: **untestable** = both arms of one of its gains sit within noise of chance (the reason says which);
  it leaves the Holm family. Otherwise **reproduced** = its interval lies wholly on the paper's side of 0;
  **contradicted** = wholly on the other side; **inconclusive** = it straddles 0, or only one seed (interval
  unavailable). Identical values in every seed give no interval: the exact sign-flip p decides (with 5 seeds it
  cannot go below 0.0625, so such a comparison is inconclusive), never a zero-width interval.
- finding: **untestable** if every comparison is; else **split** if some are reproduced and some contradicted
  (the finding holds in some arms and is reversed in others: read the comparisons), **contradicted** if any
  is, **reproduced** if every testable one is, else **inconclusive** (the detail lists the untestable ones);
  **not run** when the sweep lacks the arms it needs (the detail names them). Its headline effect and interval
  are those of the testable comparison the verdict hinges on: the most contradicting one, else the weakest
  (lowest bound on the paper's side). Finding 1's understanding and generation sides are two verdicts
  (`1-und`, `1-gen`).

Per finding: the claim (paper's direction), the arms it needs (config keys), the per-seed number, the family.
1. Mixed beats single-task on both sides. Arms: `data.tasks` mixed + understanding and/or generation, same
   config and seeds. Number: the gain. Family: variants x sides.
2. The gain grows with data. Arms: as 1, with >= 2 eval points (`train.eval_points`; from the histories).
   Number: slope of the gain vs the fraction of data seen. Family: variants x sides.
3. Aligned variants gain more. Arms: as 1 for an aligned (`model.variant` siglip-siglip, vq-vq) and a
   misaligned variant. Number: mean aligned gain − mean misaligned gain (difference in differences). Family: sides.
4. An affine distortion shrinks the gain. Arms: as 1 at >= 2 values of `model.affine_strength`. Number: slope
   of the gain vs s, expected negative. Family: variants x sides.
5. Inverted U in the mix ratio. Arms: `data.tasks`=mixed at >= 3 ratios (`data.gen_ratio`, or
   `data.und_samples` / `data.gen_samples`). Number: curvature of the metric vs log2(gen/und), expected
   negative; a reproduced curvature whose optimum falls outside the tested ratios counts as inconclusive.
   Family: variants x sides.
6. Concept transfer. Arms: a concept a with `data.freq.vqa.a` and `data.freq.caption.a` <= 0.1 and
   `data.freq.gen.a` > 0, under `data.tasks` mixed and understanding. Number: the gain on
   `eval/und/<metric of a>`. Family: variants x concepts.
7. The transfer lives in the LLM. Arms: `model.freeze_llm` true + false, and/or `model.shared_adapter` true +
   false for one variant, each under mixed and understanding. Numbers: trained-LLM gain − frozen-LLM gain; the
   gain with separate adapters. Understanding side only. Family: all of these.
8. Model scale (the paper leaves the trend open). Arms: as 1 at >= 2 values of `backbone.size`. Number: the
   gain at each size (the claim: it holds at every size); the slope over sizes is reported in the detail, not
   tested. Family: variants x sizes x sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis import floors, sequential, stats
from unified.config import BACKBONE_SIZES

UND, GEN = "eval/und/total", "eval/gen/attr_acc"
SIDES = {"und": (UND, "understanding"), "gen": (GEN, "generation")}  # side -> (metric, single-task arm)
ALIGNED = ("siglip-siglip", "vq-vq")
RARE = 0.1  # a concept asked or mentioned at most this often in understanding data counts as rare
VERDICTS = ("reproduced", "contradicted", "split", "inconclusive", "untestable", "not run")
# Keys a variant fixes by itself (unified.config.resolve): they vary with the variant, not as axes of their own.
VARIANT_DERIVED = ("model.adapter_und", "model.adapter_gen", "model.alpha", "model.shared_adapter")
PRIMARY = ("model.variant", "data.domain")  # axes that fix other keys with them (labels name only these)
RATIO_KEYS = ("data.gen_ratio", "data.gen_samples", "data.und_samples", "data.total_samples")
FINDINGS = {
    1: "Mixed training beats understanding-only on understanding and generation-only on generation, per variant.",
    2: "The benefit of mixed training grows with data (10 %...100 % of the budget).",
    3: "Aligned variants (siglip-siglip, vq-vq) gain more from mixed training than misaligned ones.",
    4: "An affine distortion of the input space weakens the gain as its strength s grows.",
    5: "More of one task's data helps the other at first; too much imbalance hurts it.",
    6: "A concept rare in understanding data but present in generation data is still answered.",
    7: "The transfer lives in the LLM, not in the adapters.",
    8: "The mutual benefit holds as the backbone grows (the trend is measured, not claimed).",
}


CLAIMS_1 = {"und": "Mixed training beats understanding-only training on understanding, per variant.",
            "gen": "Mixed training beats generation-only training on generation, per variant."}


@dataclass
class Verdict:
    finding: int
    claim: str
    effect: float
    ci_low: float
    ci_high: float
    n: int  # seeds behind the headline comparison
    verdict: str  # one of VERDICTS
    detail: str
    comparisons: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    side: str = ""  # finding 1 only: "understanding" or "generation", each side its own verdict

    def row(self) -> dict:
        return {k: getattr(self, k) for k in ("finding", "side", "claim", "effect", "ci_low", "ci_high", "n",
                                              "verdict", "detail")}


@dataclass
class Comparison:
    label: str  # e.g. "und, model.variant=vq-vq"
    metric: str
    values: np.ndarray  # one number per seed; the effect is their mean
    direction: int  # +1: the paper expects a positive effect, −1: negative
    arms: list[list[floors.Arm]] = field(default_factory=list)  # the arms behind it vs chance (analysis/floors.py)
    cells: tuple[str, ...] = ()  # the sweep cells of its runs: those seeds until decided adds seeds to


def all_findings(trials: pd.DataFrame, histories: pd.DataFrame, schedule: sequential.Schedule | None = None,
                 precision: float = sequential.DEFAULT_PRECISION) -> dict[str, Verdict]:
    """{"1-und": ..., "1-gen": ..., "2": ..., ..., "8": ...}: finding 1's sides are separate verdicts, so no
    headline calls a side reproduced that was never tested. `schedule`: the sweep looked at its seeds in rounds
    (seeds until decided): intervals are repeated confidence intervals over its looks (docs/SEQUENTIAL.md)."""
    rule = {"schedule": schedule, "precision": precision}
    return {"1-und": mutual_benefit(trials, "und", **rule), "1-gen": mutual_benefit(trials, "gen", **rule),
            "2": data_scaling(trials, histories, **rule), "3": alignment(trials, **rule),
            "4": affine_distortion(trials, **rule), "5": mix_ratio(trials, **rule),
            "6": concept_transfer(trials, **rule), "7": llm_not_adapters(trials, **rule),
            "8": model_scale(trials, **rule)}


# ---------------------------------------------------------------- the findings


def mutual_benefit(trials: pd.DataFrame, side: str, schedule: sequential.Schedule | None = None,
                   precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    """Finding 1 on one side: "und" (mixed − understanding-only) or "gen" (mixed − generation-only)."""
    rows = baseline(trials)
    metric, control = SIDES[side]
    keys = context_keys(rows)
    comps = []
    for ctx, g in _groups(paired_gains(rows, metric, control), keys):
        comps.append(Comparison(_label(side, ctx), metric, g["gain"].to_numpy(), +1,
                                _gain_arms(_within(rows, keys, g), metric, control),
                                _cells(_within(rows, keys, g), "mixed", control)))
    verdict = decide(1, comps, f"data.tasks=mixed with data.tasks={control} (same config, seeds)",
                     note=shared_note(rows) if side == "und" else "", schedule=schedule, precision=precision)
    verdict.side = control
    verdict.claim = CLAIMS_1[side]
    return verdict


def data_scaling(trials: pd.DataFrame, histories: pd.DataFrame, schedule: sequential.Schedule | None = None,
                 precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    rows = baseline(trials)
    needs = "the arms of finding 1 with >= 2 eval points each (train.eval_points >= 2)"
    if histories.empty or rows.empty:
        return not_run(2, needs)
    keys = context_keys(rows)
    comps = []
    for side, (metric, control) in SIDES.items():
        curves = gain_curves(rows, histories, metric, control, keys)
        for ctx, g in _groups(curves, keys):
            table = g.pivot_table(index="seed", columns="step", values="gain")  # [seeds, steps]
            if table.shape[1] >= 2:
                slopes = stats.slope_by_seed(table.columns.to_numpy() / 100, table.to_numpy())
                comps.append(Comparison(_label(side, ctx), f"d gain / d fraction ({metric})", slopes, +1,
                                        _gain_arms(_within(rows, keys, g), metric, control),
                                        _cells(_within(rows, keys, g), "mixed", control)))
    return decide(2, comps, needs, schedule=schedule, precision=precision)


def alignment(trials: pd.DataFrame, schedule: sequential.Schedule | None = None,
              precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    rows = baseline(trials)
    if "model.variant" not in rows:
        return not_run(3, "model.variant")
    keys = context_keys(rows)
    outer = [k for k in keys if k != "model.variant" and k not in VARIANT_DERIVED]
    comps = []
    for side, (metric, control) in SIDES.items():
        gains = paired_gains(rows, metric, control, keys=[*outer, "model.variant"])
        if gains.empty:
            continue
        gains["aligned"] = gains["model.variant"].isin(ALIGNED)
        for ctx, g in _groups(gains, outer):
            by_seed = g.pivot_table(index="seed", columns="aligned", values="gain", aggfunc="mean")
            if {True, False} <= set(by_seed.columns):
                did = stats.diff_in_diff(by_seed[True].to_numpy(), by_seed[False].to_numpy())
                arms = _gain_arms(_within(rows, outer, g), metric, control, by=["model.variant"])
                comps.append(Comparison(_label(side, "aligned - misaligned gain", ctx), metric, did, +1, arms,
                                        _cells(_within(rows, outer, g), "mixed", control)))
    return decide(3, comps, "the arms of finding 1 for an aligned (siglip-siglip, vq-vq) and a misaligned variant",
                  note=shared_note(rows), schedule=schedule, precision=precision)


def affine_distortion(trials: pd.DataFrame, schedule: sequential.Schedule | None = None,
                      precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    return _trend(4, baseline(trials, vary="model.affine_strength"), "model.affine_strength", direction=-1,
                  needs="the arms of finding 1 at >= 2 values of model.affine_strength", schedule=schedule,
                  precision=precision)


def mix_ratio(trials: pd.DataFrame, schedule: sequential.Schedule | None = None,
              precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    needs = "data.tasks=mixed at >= 3 mix ratios (data.gen_ratio or data.und_samples/data.gen_samples)"
    rows = baseline(trials)
    if not {"data.tasks", "data.gen_samples", "data.und_samples"} <= set(rows.columns):
        return not_run(5, needs)
    rows = rows[rows["data.tasks"].eq("mixed")].copy()
    if rows.empty:
        return not_run(5, needs)
    rows["ratio"] = mix_ratios(rows)
    keys = [k for k in context_keys(rows) if k not in RATIO_KEYS]
    comps, ranges, optima = [], [], []
    for side, (metric, _) in SIDES.items():
        if metric not in rows:
            continue
        for ctx, g in _groups(rows[rows[metric].notna()], keys):
            table = g.pivot_table(index="seed", columns="ratio", values=metric, aggfunc="mean")
            if table.shape[1] < 3:
                continue
            x = ratio_axis(table.columns.to_numpy())
            fit = stats.quadratic_fit(x, table.to_numpy(), x)
            # one group: a ratio at chance is part of the curve (too much imbalance); all of them is no curve
            comps.append(Comparison(_label(side, ctx), f"curvature of {metric} in log2(gen/und)",
                                    fit["curvature_by_seed"], -1, floors.arms(g, metric, ["ratio"], group_by=[]),
                                    _cells(g)))
            ranges.append((x.min(), x.max()))
            optima.append(fit["optimum"])
    if not comps:
        return not_run(5, needs)
    table = family_table(comps, schedule, precision)
    # The claim is an interior optimum: a curvature < 0 with the peak at an edge is a monotone trend, not a U.
    inside = [lo < opt < hi for (lo, hi), opt in zip(ranges, optima, strict=True)]
    table["optimum_gen_per_und"] = [2.0 ** o if np.isfinite(o) else np.nan for o in optima]
    table.loc[table["verdict"].eq("reproduced") & ~np.array(inside), "verdict"] = "inconclusive"
    outside = [c.label for c, ok in zip(comps, inside, strict=True) if not ok]
    note = f"optimum outside the tested ratios (inconclusive): {'; '.join(outside)}" if outside else ""
    return summarise(5, table, note)


def concept_transfer(trials: pd.DataFrame, schedule: sequential.Schedule | None = None,
                     precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    needs = (f"a concept a with data.freq.vqa.a and data.freq.caption.a <= {RARE} and data.freq.gen.a > 0, "
             "under data.tasks=mixed and understanding")
    rows = baseline(trials)
    comps = []
    for attr in concepts(rows):
        rare = rows[rows[[f"data.freq.vqa.{attr}", f"data.freq.caption.{attr}"]].max(axis=1).le(RARE)
                    & rows[f"data.freq.gen.{attr}"].gt(0)]
        metric = concept_metric(rows, attr)
        if metric not in rows:
            continue
        keys = context_keys(rare)
        for ctx, g in _groups(paired_gains(rare, metric, "understanding"), keys):
            comps.append(Comparison(_label(attr, ctx), metric, g["gain"].to_numpy(), +1,
                                    _gain_arms(_within(rare, keys, g), metric, "understanding"),
                                    _cells(_within(rare, keys, g), "mixed", "understanding")))
    return decide(6, comps, needs, schedule=schedule, precision=precision)


def llm_not_adapters(trials: pd.DataFrame, schedule: sequential.Schedule | None = None,
                     precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    metric, control = SIDES["und"]
    comps = []
    frozen = baseline(trials, vary="model.freeze_llm")
    if "model.freeze_llm" in frozen and frozen["model.freeze_llm"].nunique() == 2:
        keys = context_keys(frozen)
        gains = paired_gains(frozen, metric, control)
        outer = [k for k in keys if k != "model.freeze_llm"]
        for ctx, g in _groups(gains, outer):
            by_seed = g.pivot_table(index="seed", columns="model.freeze_llm", values="gain", aggfunc="mean")
            if {True, False} <= set(by_seed.columns):
                did = stats.diff_in_diff(by_seed[False].to_numpy(), by_seed[True].to_numpy())
                arms = _gain_arms(_within(frozen, outer, g), metric, control, by=["model.freeze_llm"])
                comps.append(Comparison(_label("trained - frozen LLM gain", ctx), metric, did, +1, arms,
                                        _cells(_within(frozen, outer, g), "mixed", control)))
    adapters = baseline(trials, vary="model.shared_adapter")
    if "model.shared_adapter" in adapters:
        both = adapters.groupby("model.variant")["model.shared_adapter"].transform("nunique").eq(2)
        separate = adapters[both & adapters["model.shared_adapter"].eq(False)]
        keys = context_keys(separate)
        for ctx, g in _groups(paired_gains(separate, metric, control), keys):
            comps.append(Comparison(_label("gain with separate adapters", ctx), metric, g["gain"].to_numpy(), +1,
                                    _gain_arms(_within(separate, keys, g), metric, control),
                                    _cells(_within(separate, keys, g), "mixed", control)))
    return decide(7, comps, "model.freeze_llm true and false, and/or model.shared_adapter true and false for one "
                            "variant, each under data.tasks=mixed and understanding",
                  schedule=schedule, precision=precision)


def model_scale(trials: pd.DataFrame, schedule: sequential.Schedule | None = None,
                precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    return _trend(8, baseline(trials), "backbone.size", direction=0,
                  needs="the arms of finding 1 at >= 2 values of backbone.size", schedule=schedule,
                  precision=precision)


# ---------------------------------------------------------------- gains, grouped by configuration


def baseline(trials: pd.DataFrame, vary: str | None = None) -> pd.DataFrame:
    """FINISHED runs at the baseline of the axes other findings vary (the one named by `vary` is kept free)."""
    rows = trials[trials["status"].eq("FINISHED")] if "status" in trials else trials
    if vary != "model.affine_strength" and "model.affine_strength" in rows:
        rows = rows[rows["model.affine_strength"].fillna(0).eq(0)]
    if vary != "model.freeze_llm" and "model.freeze_llm" in rows:
        rows = rows[~rows["model.freeze_llm"].fillna(False).astype(bool)]
    if vary != "model.shared_adapter" and {"model.shared_adapter", "model.variant"} <= set(rows.columns):
        # a variant run both ways keeps its default (shared when aligned); one run one way only is its baseline
        # (sweeps/paper/alignment.yaml holds separate adapters for every variant, so layouts stay equal)
        both = rows.groupby("model.variant")["model.shared_adapter"].transform("nunique").gt(1)
        rows = rows[~both | rows["model.shared_adapter"].astype(object).eq(rows["model.variant"].isin(ALIGNED))]
    return share_controls(share_mixed(rows))


def share_controls(rows: pd.DataFrame) -> pd.DataFrame:
    """Lend understanding-only runs to the variants of the same input space that have none of their own.

    Understanding-only training never touches the output space (tests/test_train.py checks that vq-vq and
    vq-siglip train bit-identically), so a sweep may run one such control per input space (the quickstart
    does). A lent copy takes the borrower's variant keys and names its donor in `shared_control`."""
    if not {"model.variant", "data.tasks"} <= set(rows.columns):
        return rows
    und = rows[rows["data.tasks"].eq("understanding")]
    lent = []
    for variant, mixed in rows[rows["data.tasks"].eq("mixed")].groupby("model.variant"):
        donors = und[und["model.variant"].map(input_space).eq(input_space(variant))]
        if donors.empty or donors["model.variant"].eq(variant).any():
            continue
        copies = donors[donors["model.variant"].eq(donors["model.variant"].min())].copy()
        copies["shared_control"] = copies["model.variant"]
        for key in ["model.variant", *[k for k in VARIANT_DERIVED if k in rows]]:
            copies[key] = mixed[key].iloc[0]
        lent.append(copies)
    return pd.concat([rows, *lent], ignore_index=True) if lent else rows


def share_mixed(rows: pd.DataFrame) -> pd.DataFrame:
    """Lend the mixed runs to every other design (`data.mix_mode` replace, matched) whose single-task runs have none.

    A mixed arm trains the same under every design, so `unified.config.resolve` logs it as `added` and a sweep
    trains it once (unified/data/tasks.py). A design's single-task arms then pair with lent copies of it: each
    copy takes the borrower's mix_mode and names its donor's in `shared_mixed`. Runs logged before that
    normalisation carry their own mixed arm per design and borrow none."""
    if not {"data.mix_mode", "data.tasks"} <= set(rows.columns):
        return rows
    mixed = rows["data.tasks"].eq("mixed")
    donors = rows[mixed & rows["data.mix_mode"].eq("added")]
    lent = []
    for mode in sorted(set(rows.loc[~mixed, "data.mix_mode"].dropna()) - {"added"}):
        if donors.empty or rows.loc[mixed, "data.mix_mode"].eq(mode).any():
            continue
        lent.append(donors.assign(**{"data.mix_mode": mode, "shared_mixed": "added"}))
    return pd.concat([rows, *lent], ignore_index=True) if lent else rows


def input_space(variant: str) -> str:
    return variant.split("-")[0]


def shared_note(rows: pd.DataFrame) -> str:
    """'understanding-only control shared: vq-siglip <- vq-vq' for the copies `share_controls` lent, and
    'mixed arm shared across designs: matched <- added' for those `share_mixed` lent."""
    notes = []
    if "shared_control" in rows:
        pairs = rows.loc[rows["shared_control"].notna(), ["model.variant", "shared_control"]].drop_duplicates()
        notes.append("understanding-only control shared (same input space): " + ", ".join(
            f"{a} <- {b}" for a, b in sorted(pairs.itertuples(index=False))))
    if "shared_mixed" in rows:
        pairs = rows.loc[rows["shared_mixed"].notna(), ["data.mix_mode", "shared_mixed"]].drop_duplicates()
        notes.append("mixed arm shared across designs (it trains the same in each): " + ", ".join(
            f"{a} <- {b}" for a, b in sorted(pairs.itertuples(index=False))))
    return "; ".join(notes)


def config_keys(frame: pd.DataFrame) -> list[str]:
    """Config columns: dotted keys (metrics have slashes; identity and tag columns have no dots)."""
    return [c for c in frame.columns if "." in c and "/" not in c]


def context_keys(rows: pd.DataFrame) -> list[str]:
    """Config keys that vary among `rows`, besides data.tasks and seed: what a gain must be held within.

    data.seed that follows the seed (a spec's `seed_scope: data`: one stage-0 build per seed) varies with the
    seed, not with the configuration, so seeds still pair across arms."""
    keys = [k for k in config_keys(rows) if k not in ("data.tasks", "seed")]
    if "data.seed" in keys and "seed" in rows and rows["data.seed"].eq(rows["seed"]).all():
        keys.remove("data.seed")
    return [k for k in keys if rows[k].nunique(dropna=False) > 1]


def paired_gains(rows: pd.DataFrame, metric: str, control: str, treat: str = "mixed",
                 keys: list[str] | None = None) -> pd.DataFrame:
    """treat − control per (config, seed): columns = `keys` (default: the context keys), seed, gain.

    Runs without a partner of the same config and seed drop out."""
    keys = context_keys(rows) if keys is None else keys
    if metric not in rows or "data.tasks" not in rows:
        return pd.DataFrame(columns=[*keys, "seed", "gain"])
    sub = _keyed(rows[rows["data.tasks"].isin([treat, control]) & rows[metric].notna()], keys)
    if sub.empty:
        return pd.DataFrame(columns=[*keys, "seed", "gain"])
    table = sub.pivot_table(index=[*keys, "seed"], columns="data.tasks", values=metric, aggfunc="mean")
    if treat not in table or control not in table:
        return pd.DataFrame(columns=[*keys, "seed", "gain"])
    gain = (table[treat] - table[control]).dropna().rename("gain")
    return gain.reset_index()


def gain_curves(rows, histories, metric, control, keys, treat="mixed") -> pd.DataFrame:
    """Paired gain at every eval step: columns = keys, seed, step, gain."""
    h = histories[histories["key"].eq(metric)]
    sub = _keyed(rows[rows["data.tasks"].isin([treat, control])], keys)[[*keys, "seed", "data.tasks", "run_id"]]
    long = sub.merge(h[["run_id", "step", "value"]], on="run_id")
    if long.empty:
        return pd.DataFrame(columns=[*keys, "seed", "step", "gain"])
    table = long.pivot_table(index=[*keys, "seed", "step"], columns="data.tasks", values="value", aggfunc="mean")
    if treat not in table or control not in table:
        return pd.DataFrame(columns=[*keys, "seed", "step", "gain"])
    return (table[treat] - table[control]).dropna().rename("gain").reset_index()


def mix_ratios(rows: pd.DataFrame) -> pd.Series:
    """gen / und samples of each run, from the resolved budgets (data.gen_ratio resolves into them)."""
    return rows["data.gen_samples"].astype(float) / rows["data.und_samples"].astype(float)


def ratio_axis(ratios) -> np.ndarray:
    """log2(gen/und): imbalance is symmetric on a log scale; plain ratios when one is 0 (no log)."""
    r = np.asarray(ratios, dtype=float)
    return np.log2(r) if np.all(r > 0) else r


def concepts(rows: pd.DataFrame) -> list[str]:
    """Attributes rare in understanding data (vqa and caption frequencies <= RARE) and present in generation."""
    out = []
    for col in [c for c in rows.columns if c.startswith("data.freq.gen.")]:
        attr = col.removeprefix("data.freq.gen.")
        und = [f"data.freq.vqa.{attr}", f"data.freq.caption.{attr}"]
        if set(und) <= set(rows.columns):
            rare = rows[und].max(axis=1).le(RARE) & rows[col].gt(0)
            if rare.any():
                out.append(attr)
    return out


def concept_metric(rows: pd.DataFrame, attr: str) -> str:
    """`eval/und/<metric>` an attribute is scored under (the domain's METRICS; e.g. weather_pos -> position)."""
    from unified.data.domains import get_domain

    domains = rows["data.domain"].dropna().unique() if "data.domain" in rows else []
    mapping = getattr(get_domain(domains[0]), "METRICS", {}) if len(domains) == 1 else {}
    return f"eval/und/{mapping.get(attr, attr)}"


def _trend(finding: int, rows: pd.DataFrame, axis: str, direction: int, needs: str,
           schedule: sequential.Schedule | None = None,
           precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    """Findings 4 and 8: the paired gain along one axis. direction −1: a per-seed slope, expected negative;
    direction 0 (finding 8): the gain at each axis value, expected positive, with the slope reported."""
    if axis not in rows or rows[axis].nunique() < 2:
        return not_run(finding, needs)
    keys = context_keys(rows)
    outer = [k for k in keys if k != axis]
    comps, slopes = [], []
    for side, (metric, control) in SIDES.items():
        gains = paired_gains(rows, metric, control)
        for ctx, g in _groups(gains, outer):
            table = g.pivot_table(index="seed", columns=axis, values="gain", aggfunc="mean")
            if table.shape[1] < 2:
                continue
            x = axis_positions(axis, table.columns)
            by_seed = stats.slope_by_seed(x, table.to_numpy())
            within = _within(rows, outer, g)
            if direction:
                comps.append(Comparison(_label(side, ctx), f"d gain / d {axis} ({metric})", by_seed, direction,
                                        _gain_arms(within, metric, control, by=[axis]),
                                        _cells(within, "mixed", control)))
                continue
            est = stats.estimate(by_seed)
            lo, hi = est.interval(1 - stats.ALPHA)
            slopes.append(f"{_label(side, ctx)}: {est.effect:+.3g} per size step [{lo:+.3g}, {hi:+.3g}]")
            for value in table.columns:
                at = within[within[axis].eq(value)]
                comps.append(Comparison(_label(side, ctx, f"{axis}={value}"), metric, table[value].to_numpy(), +1,
                                        _gain_arms(at, metric, control), _cells(at, "mixed", control)))
    verdict = decide(finding, comps, needs, schedule=schedule, precision=precision)
    if slopes:
        verdict.detail += "; slope of the gain over sizes: " + "; ".join(slopes)
    return verdict


def axis_positions(axis: str, values) -> np.ndarray:
    """Numeric positions along an axis; backbone sizes are ranked tiny < small < base."""
    if axis == "backbone.size":
        return np.array([BACKBONE_SIZES.index(v) if v in BACKBONE_SIZES else np.nan for v in values], dtype=float)
    return np.asarray(values, dtype=float)


def _keyed(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Grouping keys as hashable, NaN-free values (pivot_table drops NaN keys)."""
    rows = rows.copy()
    for k in keys:
        rows[k] = rows[k].astype(object).where(rows[k].notna(), "none")
    return rows


def _within(rows: pd.DataFrame, keys: list[str], group: pd.DataFrame) -> pd.DataFrame:
    """The runs of `rows` in the configuration of `group` (a frame of gains, keyed by `_keyed` on `keys`)."""
    rows = _keyed(rows, keys)
    if not keys or group.empty:
        return rows
    first = group.iloc[0]
    return rows[np.logical_and.reduce([rows[k].eq(first[k]).to_numpy() for k in keys])]


def _gain_arms(rows: pd.DataFrame, metric: str, control: str, treat: str = "mixed",
               by: tuple[str, ...] | list[str] = ()) -> list[list[floors.Arm]]:
    """The treat and control arms behind a gain, one pair per value of the `by` columns, against chance."""
    rows = rows[rows["data.tasks"].isin([treat, control])] if "data.tasks" in rows else rows.iloc[:0]
    return floors.arms(rows, metric, [*by, "data.tasks"])


def _cells(rows: pd.DataFrame, *tasks: str) -> tuple[str, ...]:
    """The sweep cells (`cell` tag) of `rows` under the given `data.tasks` (all when none): the cells a comparison
    still undecided asks more seeds of (analysis/undecided.py). A lent control keeps its donor's cell."""
    if "cell" not in rows:
        return ()
    if tasks and "data.tasks" in rows:
        rows = rows[rows["data.tasks"].isin(tasks)]
    return tuple(sorted({str(c) for c in rows["cell"].dropna()}))


def _groups(frame: pd.DataFrame, keys: list[str]):
    """(label, sub-frame) per distinct value of `keys` among the rows; label 'key=value, ...' ('all' when none)."""
    if frame.empty:
        return
    if not keys:
        yield "all", frame
        return
    shown = shown_keys(frame, keys)
    for values, g in frame.groupby(keys, sort=True, dropna=False):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True) if k in shown)
        yield label or "all", g


def shown_keys(frame: pd.DataFrame, keys: list[str]) -> list[str]:
    """The keys a label names: those the variant or the domain does not fix."""
    return [k for k in keys if not _derived(frame, k, keys)]


def _derived(frame: pd.DataFrame, key: str, keys: list[str]) -> bool:
    """A key the variant or the domain fixes (an adapter, a domain's attribute frequencies): labels leave it out."""
    return key not in PRIMARY and any(p in keys and not frame.groupby(p)[key].nunique(dropna=False).gt(1).any()
                                      for p in PRIMARY)


def _label(*parts: str) -> str:
    return ", ".join(p for p in parts if p and p != "all") or "all"


# ---------------------------------------------------------------- decisions

COLUMNS = ["comparison", "metric", "effect", "ci_low", "ci_high", "level", "p", "p_sign_flip", "n", "direction",
           "verdict", "arms_vs_chance", "why_untestable", "stop", "seeds_needed", "cells"]


def family_table(comps: list[Comparison], schedule: sequential.Schedule | None = None,
                 precision: float = sequential.DEFAULT_PRECISION) -> pd.DataFrame:
    """One row per comparison: effect, Holm-level interval, p-values, n, verdict, and its arms against chance.

    An untestable comparison (analysis/floors.py) keeps its effect and interval for the record but takes no
    part in the Holm family: it tests nothing, so it must not make the others' bar higher.

    With a `schedule` (seeds until decided) the interval is the repeated confidence interval over its looks
    and p the matching sequential p (analysis/sequential.py), and the row says why its seeds may stop (`stop`)
    and how many seeds its spread asks for (`seeds_needed`). Holm stays valid: it needs only a valid p per
    comparison, whatever their dependence, and a repeated interval's test keeps its level at any look the
    sweep stops at, however the data chose it; its p is read from the same boundary, so "the interval at the
    Holm level excludes 0" is still Holm's rejection."""
    comps = [c for c in comps if np.isfinite(np.asarray(c.values, dtype=float)).any()]
    estimates = [stats.estimate(c.values) for c in comps]
    why = [floors.untestable_reason(c.arms, c.metric) for c in comps]
    ps = [e.p for e in estimates] if schedule is None else [sequential.decision_p(c.values, schedule) for c in comps]
    levels = stats.holm_levels([np.nan if w else p for p, w in zip(ps, why, strict=True)])
    rows = []
    for c, e, p, level, w in zip(comps, estimates, ps, levels, why, strict=True):
        lo, hi = e.interval(level)
        row = {"comparison": c.label, "metric": c.metric, "effect": e.effect, "ci_low": lo, "ci_high": hi,
               "level": level if e.n > 1 else np.nan, "p": p, "p_sign_flip": e.p_sign_flip,
               "n": e.n, "direction": c.direction, "verdict": _one(e, level, c.direction),
               "arms_vs_chance": floors.describe(c.arms), "why_untestable": w, "stop": "", "seeds_needed": np.nan,
               "cells": ",".join(c.cells)}
        if schedule is not None:
            look = sequential.decision(c.values, c.direction, schedule, level, precision)
            row |= {"effect": look.effect, "ci_low": look.ci_low, "ci_high": look.ci_high, "verdict": look.verdict,
                    "stop": look.stop, "seeds_needed": look.seeds_needed}
        if w:  # untestable: more seeds cannot make its arms learn, so it never holds the sweep open
            row |= {"verdict": "untestable", "stop": "untestable" if schedule is not None else ""}
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def _one(e: stats.Estimate, level: float, direction: int) -> str:
    if e.n < 2:
        return "inconclusive"
    if e.zero_spread:  # no interval: the exact sign-flip test decides (it cannot reject with 5 seeds or fewer)
        sign = np.sign(e.effect) * direction
        return "inconclusive" if sign == 0 or e.p >= 1 - level else ("reproduced" if sign > 0 else "contradicted")
    lo, hi = e.interval(level)
    if direction * lo > 0 and direction * hi > 0:
        return "reproduced"
    if direction * lo < 0 and direction * hi < 0:
        return "contradicted"
    return "inconclusive"


def decide(finding: int, comps: list[Comparison], needs: str, note: str = "",
           schedule: sequential.Schedule | None = None, precision: float = sequential.DEFAULT_PRECISION) -> Verdict:
    table = family_table(comps, schedule, precision)
    return not_run(finding, needs) if table.empty else summarise(finding, table, note)


def summarise(finding: int, table: pd.DataFrame, note: str = "") -> Verdict:
    """A finding's verdict from its family table (rule in the module docstring)."""
    counts = table["verdict"].value_counts()
    tested = table[~table["verdict"].eq("untestable")]
    if tested.empty:
        verdict, pool = "untestable", table
    elif counts.get("contradicted", 0):
        verdict, pool = ("split" if counts.get("reproduced", 0) else "contradicted"), tested
    else:
        verdict = "reproduced" if counts.get("reproduced", 0) == len(tested) else "inconclusive"
        pool = tested
    # the headline: the most contradicting comparison (the bound on the paper's side furthest on the wrong
    # side), else the weakest (lowest bound on the paper's side); no interval counts as the weakest
    if verdict in ("contradicted", "split"):
        key = np.where(pool["direction"] > 0, pool["ci_high"], -pool["ci_low"])
    else:
        key = np.where(pool["direction"] > 0, pool["ci_low"], -pool["ci_high"])
    key = np.where(np.isfinite(key), key, -np.inf)
    head = pool.iloc[int(np.argmin(key))]
    parts = [f"{len(table)} comparison(s), Holm family (alpha={stats.ALPHA}): "
             + ", ".join(f"{n} {v}" for v, n in counts.items())]
    if table["n"].max() < 2:
        parts.append("one seed: interval unavailable")
    flat = table[table["ci_low"].isna() & table["n"].ge(2)]
    sequential_rule = "stop" in table and table["stop"].fillna("").ne("").any()
    if len(flat) and sequential_rule:
        parts.append(f"zero spread over seeds ({', '.join(flat['comparison'])}): no interval, inconclusive")
    elif len(flat):
        n = int(flat["n"].max())
        parts.append(f"zero spread over seeds ({', '.join(flat['comparison'])}): no interval; decided by the exact "
                     f"sign-flip test, whose smallest p with {n} seeds is 2/2^{n} = {2 / 2 ** n:.3g}")
    if sequential_rule:
        stops = table["stop"].value_counts()
        parts.append("seeds until decided, repeated intervals: " + ", ".join(f"{n} {s}" for s, n in stops.items()))
    parts.append(f"headline: {head['comparison']} ({head['metric']})")
    untestable = table[table["verdict"].eq("untestable")]
    if len(untestable):
        parts.append("untestable: " + "; ".join(f"{r.comparison}: {r.why_untestable}"
                                                for r in untestable.itertuples()))
    if table["arms_vs_chance"].str.contains("chance not logged").any():
        parts.append("some runs logged no chance level (they predate it): their arms could not be checked")
    if note:
        parts.append(note)
    return Verdict(finding, FINDINGS[finding], float(head["effect"]), float(head["ci_low"]), float(head["ci_high"]),
                   int(head["n"]), verdict, "; ".join(parts), table)


def not_run(finding: int, needs: str) -> Verdict:
    return Verdict(finding, FINDINGS[finding], np.nan, np.nan, np.nan, 0, "not run", f"needs {needs}")
