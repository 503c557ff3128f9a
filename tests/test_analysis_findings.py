"""Verdicts from planted effects: a real SQLite store filled by sweeps.tracking, and the same runs in memory.

The planted sizes (tests/analysis_stores.py) must be reproduced with the right sign and lie inside their
intervals; no effect must stay inconclusive; one seed has no interval; missing arms are "not run".
"""

import functools
import math

import numpy as np
import pandas as pd
import pytest
from analysis_stores import memory_runs
from mlflow import MlflowClient

from analysis import findings as F
from analysis import floors, query

NO_HISTORIES = pd.DataFrame(columns=["run_id", "key", "step", "value"])
# planted gain at 100 % of the data (and slope per unit fraction, since gains grow linearly from 0)
PLANTED = {("und", "siglip-siglip"): 0.15, ("und", "siglip-vq"): 0.05,
           ("gen", "siglip-siglip"): 0.12, ("gen", "siglip-vq"): 0.04}


@pytest.fixture(scope="module")
def planted(analysis_store):
    uri, _ = analysis_store
    return query.load(uri, ["planted"])


@pytest.fixture(scope="module", autouse=True)
def boot_server_early(server_process):
    """Start the session's `mlflow server` (tests/conftest.py) now: test_analysis_report.py needs it later."""


def memory(name: str) -> pd.DataFrame:
    return _memory(name).copy()


@functools.cache
def _memory(name: str) -> pd.DataFrame:
    return query.trials_frame(memory_runs(name))


def assert_inside(table: pd.DataFrame, expected: dict[str, float]):
    for label, size in expected.items():
        row = table.set_index("comparison").loc[label]
        assert row["ci_low"] < size < row["ci_high"], (label, size, row.to_dict())
        assert row["verdict"] == "reproduced", (label, row.to_dict())


def test_query_gives_one_typed_row_per_trial_and_the_eval_histories(planted, analysis_store):
    trials, histories = planted.trials, planted.histories
    assert len(trials) == 2 * 3 * 4 and trials["run_id"].is_unique
    assert set(trials["seed"]) == {0, 1, 2, 3} and set(trials["variant"]) == {"siglip-siglip", "siglip-vq"}
    assert trials["model.freeze_llm"].dtype == "boolean" and not trials["model.freeze_llm"].any()
    assert trials["data.und_samples"].dtype == "int64" and trials["model.affine_strength"].dtype == "float64"
    assert trials["data.gen_ratio"].isna().all()  # "None" in MLflow
    assert (trials["status"] == "FINISHED").all() and not trials["smoke"].any()
    # the latest value of a metric is the final eval point's
    final = histories[histories["step"].eq(100) & histories["key"].eq(F.UND)].set_index("run_id")["value"]
    assert trials.set_index("run_id")[F.UND].to_dict() == pytest.approx(final.to_dict())
    assert set(histories["step"]) == {50, 100} and set(histories["key"]) == set(query.HISTORY_KEYS)
    assert len(histories) == len(trials) * 2 * 2
    # the tracking-API way in (search_runs pages, histories in threads; the only way over HTTP) reads the same
    api = query.load(analysis_store[0], ["planted"], bulk=False)
    pd.testing.assert_frame_equal(api.trials, trials)
    pd.testing.assert_frame_equal(api.histories, histories)
    assert api.parents == planted.parents


def test_cache_is_reused_until_a_run_changes(analysis_store, tmp_path):
    uri, _ = analysis_store
    for bulk in (True, False):  # both ways in have a cache key of their own
        first = query.load(uri, ["nulleffect"], cache_dir=tmp_path, bulk=bulk)
        again = query.load(uri, ["nulleffect"], cache_dir=tmp_path, bulk=bulk)
        assert not first.cached and again.cached
        pd.testing.assert_frame_equal(first.trials, again.trials)
        pd.testing.assert_frame_equal(first.histories, again.histories)
    client, run_id = MlflowClient(uri), first.trials["run_id"].iloc[0]
    client.set_tag(run_id, "note", "x")  # tags are not part of the key
    assert query.load(uri, ["nulleffect"], cache_dir=tmp_path).cached
    client.log_metric(run_id, "time/extra_s", 1.0, step=100)  # a new metric (one analysis ignores: shared store)
    assert not query.load(uri, ["nulleffect"], cache_dir=tmp_path).cached
    assert not query.load(uri, ["nulleffect"], cache_dir=tmp_path, bulk=False).cached


def test_planted_mutual_benefit_alignment_and_scaling_are_reproduced(planted):
    verdicts = F.all_findings(planted.trials, planted.histories)
    und, gen, v2, v3 = verdicts["1-und"], verdicts["1-gen"], verdicts["2"], verdicts["3"]
    for side, v in (("und", und), ("gen", gen)):  # two verdicts: one per side
        assert v.verdict == "reproduced" and v.n == 4 and v.side in v.claim
        assert_inside(v.comparisons, {f"{side}, model.variant={variant}": size
                                      for (s, variant), size in PLANTED.items() if s == side})
        # every arm was checked against its measured chance level, and is above it
        assert v.comparisons["arms_vs_chance"].str.contains("vs chance 0.200").all()
        assert not v.comparisons["arms_vs_chance"].str.contains("at chance").any()
    # headline = the weakest comparison: the misaligned gain, 0.05 (und) and 0.04 (gen)
    assert gen.ci_low < 0.04 < gen.ci_high and gen.effect == pytest.approx(0.04, abs=0.01)
    assert und.effect == pytest.approx(0.05, abs=0.01)
    assert v2.verdict == "reproduced"  # slope of the gain per unit of data fraction = the planted size
    assert_inside(v2.comparisons, {f"{side}, model.variant={variant}": size
                                   for (side, variant), size in PLANTED.items()})
    assert v3.verdict == "reproduced"
    assert_inside(v3.comparisons, {"und, aligned - misaligned gain": 0.10, "gen, aligned - misaligned gain": 0.08})
    # Holm step-down within a side: the stronger of 2 at 1 - 0.05/2, then 0.05/1
    assert sorted(und.comparisons["level"]) == pytest.approx([0.95, 0.975])
    for k in ("4", "5", "6", "7", "8"):
        assert verdicts[k].verdict == "not run" and verdicts[k].detail.startswith("needs ")
        assert math.isnan(verdicts[k].effect) and verdicts[k].n == 0


def test_no_effect_is_inconclusive(analysis_store):
    uri, _ = analysis_store
    data = query.load(uri, ["nulleffect"])
    for side in ("und", "gen"):
        v = F.mutual_benefit(data.trials, side)
        assert v.verdict == "inconclusive"
        assert set(v.comparisons["verdict"]) == {"inconclusive"}
        assert ((v.comparisons["ci_low"] < 0) & (v.comparisons["ci_high"] > 0)).all()
    assert F.data_scaling(data.trials, data.histories).verdict == "inconclusive"
    assert F.alignment(data.trials).verdict == "not run"  # one variant: nothing to compare it with


def test_one_seed_is_inconclusive_without_an_interval(planted):
    one = planted.trials[planted.trials["seed"].eq(0)]
    v = F.mutual_benefit(one, "und")
    assert v.verdict == "inconclusive" and v.n == 1
    assert math.isnan(v.ci_low) and math.isnan(v.ci_high)
    assert "one seed: interval unavailable" in v.detail
    assert v.comparisons["effect"].notna().all()  # the effect itself is still shown


def test_missing_arms_are_not_run_and_say_what_they_need(planted):
    only_mixed = planted.trials[planted.trials["data.tasks"].eq("mixed")]
    v = F.mutual_benefit(only_mixed, "und")
    assert v.verdict == "not run" and "data.tasks=mixed with data.tasks=understanding" in v.detail
    assert F.affine_distortion(planted.trials).detail == "needs the arms of finding 1 at >= 2 values of " \
                                                          "model.affine_strength"
    und_only = planted.trials[planted.trials["data.tasks"].ne("generation")]  # und side alone still counts
    assert F.mutual_benefit(und_only, "und").verdict == "reproduced"
    assert F.mutual_benefit(und_only, "gen").verdict == "not run"  # never "reproduced" for a side not run



def test_one_understanding_only_arm_serves_each_input_space(planted):
    # the quickstart's shape: siglip-vq trains no understanding-only arm of its own and borrows siglip-siglip's
    trials = planted.trials
    shared = trials[~(trials["data.tasks"].eq("understanding") & trials["model.variant"].eq("siglip-vq"))]
    v1, v3 = F.mutual_benefit(shared, "und"), F.alignment(shared)
    table = v1.comparisons.set_index("comparison")
    assert table.loc["und, model.variant=siglip-vq", "n"] == 4  # paired with siglip-siglip's control, by seed
    assert "understanding-only control shared (same input space): siglip-vq <- siglip-siglip" in v1.detail
    # aligned - misaligned gain = mixed(siglip-siglip) - mixed(siglip-vq) against the one control: planted 0.10
    assert_inside(v3.comparisons, {"und, aligned - misaligned gain": 0.10})
    assert "siglip-vq <- siglip-siglip" in v3.detail
    rows = F.baseline(shared)
    assert len(rows) == len(shared) + 4 and rows["shared_control"].eq("siglip-siglip").sum() == 4
    assert "shared_control" not in F.baseline(trials)  # a variant with its own control borrows none
    no_donor = shared[~(shared["data.tasks"].eq("understanding"))]
    assert len(F.baseline(no_donor)) == len(no_donor)


def test_labels_name_the_domain_not_the_keys_it_fixes(planted):
    # a domain axis brings the domain's attribute frequencies with it; a label names the domain alone
    both = pd.concat([planted.trials.assign(**{"data.domain": d, "data.freq.vqa.hat": f})
                      for d, f in (("smartwatch", None), ("faces", 0.5))], ignore_index=True)
    labels = [c for side in ("und", "gen") for c in F.mutual_benefit(both, side).comparisons["comparison"]]
    assert len(labels) == len(set(labels)) == 2 * 2 * 2  # sides x domains x variants
    assert "und, data.domain=faces, model.variant=siglip-vq" in labels and not any("freq" in s for s in labels)

def test_affine_distortion_weakens_the_gain():
    v = F.affine_distortion(memory("affine"))
    assert v.verdict == "reproduced" and v.effect < 0
    assert_inside(v.comparisons, {"und": -0.12})


def test_mix_ratio_has_an_interior_optimum_per_side():
    v = F.mix_ratio(memory("ratio"))
    assert v.verdict == "reproduced"
    table = v.comparisons.set_index("comparison")
    assert (table["effect"] < 0).all()  # negative curvature: an inverted U
    assert table.loc["und", "optimum_gen_per_und"] == pytest.approx(1.0, rel=0.1)  # planted peaks: 1 and 2
    assert table.loc["gen", "optimum_gen_per_und"] == pytest.approx(2.0, rel=0.1)


def test_mix_ratio_with_the_peak_outside_the_range_is_inconclusive():
    trials = memory("ratio")
    x = np.log2(trials["data.gen_samples"] / trials["data.und_samples"])
    noise = np.random.default_rng(0).normal(0, 0.004, len(trials))
    trials[F.UND] = 0.5 - 0.02 * (x - 5) ** 2 + noise  # concave, but rising over all tested ratios: peak at 2**5
    v = F.mix_ratio(trials)
    table = v.comparisons.set_index("comparison")
    assert table.loc["und", "effect"] < 0 and table.loc["und", "optimum_gen_per_und"] > 4
    assert table.loc["und", "verdict"] == "inconclusive" and "optimum outside the tested ratios" in v.detail
    assert v.verdict == "inconclusive"


def test_concept_transfer_llm_and_scale():
    v6 = F.concept_transfer(memory("concept"))
    assert v6.verdict == "reproduced" and list(v6.comparisons["metric"]) == ["eval/und/face_color"]
    assert_inside(v6.comparisons, {"face_color": 0.25})
    v7 = F.llm_not_adapters(memory("frozen"))
    assert v7.verdict == "reproduced"
    assert_inside(v7.comparisons, {"trained - frozen LLM gain": 0.10})
    v8 = F.model_scale(memory("scale"))
    assert v8.verdict == "reproduced" and "slope of the gain over sizes" in v8.detail
    assert_inside(v8.comparisons, {"und, backbone.size=tiny": 0.05, "und, backbone.size=small": 0.10})
    never = memory("concept").assign(**{"eval/und/face_color": 0.0})  # a question no arm ever answers
    v6 = F.concept_transfer(never)
    assert v6.verdict == "untestable" and "both arms at the constant-answer level (mixed and understanding)" \
        in v6.detail
    # a frozen LLM that learned nothing (0.0, below the constant answer) makes "trained - frozen gain" untestable
    frozen = memory("frozen")
    frozen.loc[frozen["model.freeze_llm"], F.UND] = 0.0
    v7 = F.llm_not_adapters(frozen)
    assert v7.verdict == "untestable" and "model.freeze_llm=True" in v7.detail
    without = F.all_findings(memory("planted"), NO_HISTORIES)
    assert [without[k].verdict for k in ("6", "7", "8")] == ["not run"] * 3


def test_arms_at_chance_are_untestable_however_large_the_difference():
    trials = memory("atchance")
    und, gen = F.mutual_benefit(trials, "und"), F.mutual_benefit(trials, "gen")
    assert und.effect == pytest.approx(0.18, abs=0.01) and und.ci_low > 0  # a large, sharp difference...
    assert und.verdict == "untestable"  # ...between two arms that learned nothing
    assert "both arms at the constant-answer level (mixed and understanding)" in und.detail
    assert gen.verdict == "untestable" and "generation ignores the prompt" in gen.detail
    # a slope's label names the metric inside it (finding 2): still a generation comparison
    arms = floors.arms(trials[trials["data.tasks"].ne("understanding")], F.GEN, ["data.tasks"])
    slope = F.Comparison("gen", "d gain / d fraction (eval/gen/attr_acc)", np.zeros(4), +1, arms)
    assert "generation ignores the prompt" in F.family_table([slope])["why_untestable"].iloc[0]
    assert und.comparisons["level"].isna().all() or (und.comparisons["verdict"] == "untestable").all()
    # the same runs with the understanding-only arm lifted above chance: a real, testable comparison
    lifted = trials.copy()
    lifted.loc[lifted["data.tasks"].eq("understanding"), F.UND] += 0.3
    lifted.loc[lifted["data.tasks"].eq("mixed"), F.UND] += 0.4
    assert F.mutual_benefit(lifted, "und").verdict == "reproduced"


def test_zero_spread_is_decided_by_the_sign_flip_test_not_a_zero_width_interval():
    trials = memory("planted")
    mixed = trials["data.tasks"].eq("mixed")
    trials.loc[mixed, F.UND] = 0.7  # every seed: mixed 0.7, understanding-only 0.6 -> the same gain, 0.1
    trials.loc[trials["data.tasks"].eq("understanding"), F.UND] = 0.6
    v = F.mutual_benefit(trials, "und")
    table = v.comparisons
    assert table["effect"].to_numpy() == pytest.approx([0.1, 0.1])
    assert table["ci_low"].isna().all() and table["ci_high"].isna().all()  # no zero-width interval
    assert table["p"].to_numpy() == pytest.approx([2 / 2**4] * 2)  # exact sign-flip p, 4 seeds: 0.125, not 0
    assert set(table["verdict"]) == {"inconclusive"} and "sign-flip" in v.detail


def test_a_finding_reproduced_in_one_arm_and_reversed_in_another_is_split():
    up = F.Comparison("und, model.variant=vq-vq", F.UND, np.array([0.10, 0.12, 0.09, 0.11, 0.13]), +1)
    down = F.Comparison("und, model.variant=vq-siglip", F.UND, np.array([-0.10, -0.12, -0.09, -0.11, -0.13]), +1)
    flat = F.Comparison("und, model.variant=siglip-vq", F.UND, np.array([0.05, -0.04, 0.01, -0.02, 0.0]), +1)
    v = F.decide(3, [up, down, flat], "arms")
    assert list(v.comparisons["verdict"]) == ["reproduced", "contradicted", "inconclusive"]
    assert v.verdict == "split" and v.effect == pytest.approx(-0.11)  # the headline: the reversed arm
    assert F.decide(3, [down, flat], "arms").verdict == "contradicted"
    assert F.decide(3, [up, flat], "arms").verdict == "inconclusive"


def test_verdict_values_are_the_five_words():
    verdicts = F.all_findings(memory("planted"), NO_HISTORIES)
    assert {v.verdict for v in verdicts.values()} <= set(F.VERDICTS)
    assert list(verdicts["1-und"].row()) == ["finding", "side", "claim", "effect", "ci_low", "ci_high", "n",
                                             "verdict", "detail"]
    assert np.isfinite(verdicts["1-und"].effect)


def test_a_stage0_build_per_seed_still_pairs_arms_by_seed():
    # seed_scope: data logs data.seed = seed in every run: it varies with the seed, not with the configuration
    trials = memory("planted")
    trials["data.seed"] = trials["seed"]
    v = F.mutual_benefit(trials, "und")
    assert v.verdict == "reproduced" and set(v.comparisons["n"]) == {4}
    assert not v.comparisons["comparison"].str.contains("data.seed").any()
