"""The matched design (`data.mix_mode: matched`): a single-task arm takes the mixed arm's updates on its own
samples only; the mixed arm is one cell for every design and the analysis lends it to each; every arm states
its budget. No Ray, no training: the samples of a tiny budget, resolved configs and frames (a few seconds)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from analysis_stores import memory_runs, planted
from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag

from analysis import findings as F
from analysis import floors, query
from sweeps import spec as S
from unified import config
from unified.data.dataset import load_pool
from unified.data.tasks import build_samples

# 96 + 48 = 144 samples: the mixed arm's one epoch is 5 updates at batch 32, the last one short (16)
BUDGET = {"data.und_samples": 96, "data.gen_samples": 48, "train.batch_size": 32}


@pytest.fixture(scope="module")
def pool(smoke_cfg, tmp_path_factory):
    """The smoke image pool alone (about a second), not the session's stage 0, which these tests never use."""
    return load_pool(smoke_cfg.data, tmp_path_factory.mktemp("pool"))


def arm(smoke_cfg, tasks: str, mode: str = "added", **overrides):
    return config.resolve(config.override(smoke_cfg, {**BUDGET, "data.tasks": tasks, "data.mix_mode": mode,
                                                      **overrides}))


def samples(smoke_cfg, pool, tokenizer, tasks, mode="added", **overrides):
    return build_samples(arm(smoke_cfg, tasks, mode, **overrides), pool, tokenizer, 16, 16)


@pytest.mark.parametrize("task", ["understanding", "generation"])
def test_a_matched_arm_takes_the_mixed_updates_on_its_own_samples_only(task, smoke_cfg, pool, tokenizer):
    mixed = samples(smoke_cfg, pool, tokenizer, "mixed")
    matched = samples(smoke_cfg, pool, tokenizer, task, "matched")
    added = samples(smoke_cfg, pool, tokenizer, task, "added")
    replace = samples(smoke_cfg, pool, tokenizer, task, "replace")
    own, other = ("und", "gen") if task == "understanding" else ("gen", "und")
    n_own = BUDGET[f"data.{own}_samples"]
    assert len(mixed.steps) == 5 and len(added.steps) == -(-n_own // 32) < 5  # the paper's design: fewer updates
    assert len(matched.steps) == len(mixed.steps) == len(replace.steps)  # equal updates
    # distinct samples: exactly the arm's own, the same Sample objects as the added arm's and the mixed arm's
    assert len(getattr(matched, own)) == n_own and not getattr(matched, other)
    assert [s.ids for s in getattr(matched, own)] == [s.ids for s in getattr(added, own)] \
        == [s.ids for s in getattr(mixed, own)]
    assert len(getattr(replace, own)) == 144  # replace draws 1.5-3x the distinct samples instead
    # full batches from reshuffled epochs: every own sample visited, some more than once, nothing else
    col = 0 if own == "und" else 1
    visits = np.bincount([i for step in matched.steps for i in step[col]], minlength=n_own)
    assert all(len(u) + len(g) == 32 for u, g in matched.steps) and not any(step[1 - col] for step in matched.steps)
    assert len(visits) == n_own and visits.sum() == 5 * 32
    assert set(visits) <= {5 * 32 // n_own, -(-5 * 32 // n_own)}  # whole epochs: each sample once per epoch


def test_an_explicit_train_steps_wins_for_every_arm_alike(smoke_cfg, pool, tokenizer):
    for tasks, mode in (("mixed", "added"), ("understanding", "matched"), ("generation", "matched")):
        assert len(samples(smoke_cfg, pool, tokenizer, tasks, mode, **{"train.steps": 7}).steps) == 7


def test_the_mixed_arm_is_one_cell_under_every_design(smoke_cfg):
    mixed = [arm(smoke_cfg, "mixed", m) for m in config.MIX_MODES]
    assert [c.data.mix_mode for c in mixed] == ["added"] * len(config.MIX_MODES)
    assert len({config.cell_hash(c) for c in mixed}) == 1  # trained once, lent to every design by the analysis
    assert config.flatten(config.resolve(mixed[0])) == config.flatten(mixed[0])  # resolving again changes nothing
    single = {config.cell_hash(arm(smoke_cfg, "understanding", m)) for m in config.MIX_MODES}
    assert len(single) == len(config.MIX_MODES)  # the designs differ in their single-task arms only
    assert arm(smoke_cfg, "understanding", "matched").train.steps == 0  # the budget itself lives in tasks.py
    with pytest.raises(config.ConfigError, match="no samples to train on"):
        arm(smoke_cfg, "generation", "matched", **{"data.gen_samples": 0})  # nothing of its own to cycle
    with pytest.raises(config.ConfigError, match="data.mix_mode must be one of added, replace, matched"):
        arm(smoke_cfg, "understanding", "equal")


def designs() -> pd.DataFrame:
    """The planted sweep (mixed, understanding-only, generation-only for two variants) with a matched design
    beside it, as a grid {data.mix_mode: [added, matched]} logs it: the mixed runs once, as `added`. The matched
    controls score 0.05 (und) and 0.03 (gen) above the added ones, so the matched gains are that much smaller."""
    trials = query.trials_frame(memory_runs("planted"))
    matched = trials[trials["data.tasks"].ne("mixed")].assign(**{"data.mix_mode": "matched"})
    matched[F.UND] += 0.05
    matched[F.GEN] += 0.03
    return pd.concat([trials, matched], ignore_index=True)


def test_the_mixed_arm_is_lent_to_the_matched_design_and_both_are_compared():
    trials = designs()
    assert set(trials.loc[trials["data.tasks"].eq("mixed"), "data.mix_mode"]) == {"added"}
    rows = F.baseline(trials)
    lent = rows[rows["shared_mixed"].notna()]
    assert len(lent) == 8 and set(lent["data.mix_mode"]) == {"matched"} and set(lent["shared_mixed"]) == {"added"}
    assert set(lent["run_id"]) == set(trials.loc[trials["data.tasks"].eq("mixed"), "run_id"])  # the same runs
    und = F.mutual_benefit(trials, "und").comparisons.set_index("comparison")["effect"]
    gen = F.mutual_benefit(trials, "gen").comparisons.set_index("comparison")["effect"]
    planted = {"siglip-siglip": (0.15, 0.12), "siglip-vq": (0.05, 0.04)}
    for variant, (u, g) in planted.items():
        assert und[f"und, data.mix_mode=added, model.variant={variant}"] == pytest.approx(u, abs=0.01)
        assert und[f"und, data.mix_mode=matched, model.variant={variant}"] == pytest.approx(u - 0.05, abs=0.01)
        assert gen[f"gen, data.mix_mode=added, model.variant={variant}"] == pytest.approx(g, abs=0.01)
        assert gen[f"gen, data.mix_mode=matched, model.variant={variant}"] == pytest.approx(g - 0.03, abs=0.01)
    assert "mixed arm shared across designs (it trains the same in each): matched <- added" \
        in F.mutual_benefit(trials, "und").detail
    # runs logged before the normalisation carry a mixed arm per design: they borrow none
    own = pd.concat([trials, trials[trials["data.tasks"].eq("mixed")].assign(**{"data.mix_mode": "matched"})],
                    ignore_index=True)
    assert "shared_mixed" not in F.baseline(own)
    # a sweep of one design lends nothing
    assert "shared_mixed" not in F.baseline(query.trials_frame(memory_runs("planted")))


def test_every_arm_states_its_updates_and_distinct_samples():
    trials = designs().assign(**{"budget/updates": np.nan, "budget/und_samples": np.nan,
                                 "budget/gen_samples": np.nan})
    budgets = {("mixed", "added"): (3000, 64000, 32000), ("understanding", "added"): (2000, 64000, 0),
               ("understanding", "matched"): (3000, 64000, 0), ("generation", "added"): (1000, 0, 32000),
               ("generation", "matched"): (3000, 0, 32000)}
    for (tasks, mode), values in budgets.items():
        at = trials["data.tasks"].eq(tasks) & trials["data.mix_mode"].eq(mode)
        trials.loc[at, ["budget/updates", "budget/und_samples", "budget/gen_samples"]] = values
    table = F.mutual_benefit(trials, "und").comparisons.set_index("comparison")["arms_vs_chance"]
    matched = table["und, data.mix_mode=matched, model.variant=siglip-vq"]
    assert "mixed 0.6" in matched and "(3,000 updates, 64,000 + 32,000 samples) vs chance 0.200" in matched
    assert "understanding 0.6" in matched and "(3,000 updates, 64,000 + 0 samples) vs chance" in matched
    assert "understanding 0.5" in table["und, data.mix_mode=added, model.variant=siglip-vq"] \
        and "(2,000 updates, 64,000 + 0 samples)" in table["und, data.mix_mode=added, model.variant=siglip-vq"]
    # runs that logged no budget (they predate it) say so instead of inventing one
    old = floors.Arm("mixed", np.array([0.7, 0.8]), np.array([0.2, 0.2]))
    assert np.isnan(old.updates) and "mixed 0.750 (budget not logged) vs chance 0.200" in old.describe()
    blind = floors.Arm("mixed", np.array([0.7]), np.array([np.nan]), 3000, 64000, 32000)
    assert blind.describe() == "mixed 0.700 (3,000 updates, 64,000 + 32,000 samples; chance not logged)"


def test_the_alignment_spec_compares_variants_with_equal_adapter_layouts():
    """sweeps/paper/alignment.yaml: understanding contrasts siglip-siglip and siglip-vq (one lent control),
    generation vq-vq and siglip-vq, all with separate adapters, under both designs (runs planted as in
    tests/analysis_stores.py: aligned gains 0.15 / 0.12, misaligned 0.05 / 0.04)."""
    spec = S.load_spec(Path(__file__).parent.parent / "sweeps" / "paper" / "alignment.yaml")
    trials = S.expand(spec)
    runs = []
    for i, t in enumerate(trials):
        metrics = planted("planted", t, 100, spec.seeds)
        params = {k: str(v) for k, v in config.flatten(t.config).items()}
        info = RunInfo(f"a-{i:03d}", "0", "", "FINISHED", 0, 1, "active", run_name=t.name)
        runs.append(Run(info, RunData([Metric(k, v, 0, 100) for k, v in metrics.items()],
                                      [Param(k, v) for k, v in params.items()],
                                      [RunTag("unisweep.seed", str(t.seed)), RunTag("unisweep.cell", t.cell)])))
    frame = query.trials_frame(runs)
    assert not frame["model.shared_adapter"].any() and set(frame["model.adapter_gen"]) == {"linear"}
    v = F.alignment(frame)
    effects = v.comparisons.set_index("comparison")["effect"]
    for mode in ("added", "matched"):
        assert effects[f"und, aligned - misaligned gain, data.mix_mode={mode}"] == pytest.approx(0.10, abs=0.01)
        assert effects[f"gen, aligned - misaligned gain, data.mix_mode={mode}"] == pytest.approx(0.08, abs=0.01)
    assert "siglip-vq <- siglip-siglip" in v.detail and "matched <- added" in v.detail
