"""End-to-end smoke trainings without Ray: every variant, reporting steps, determinism, resume, divergence."""

import math

import pytest

from unified import config as C
from unified.train import DivergenceError, Trainer, train


def smoke(**overrides):
    return C.resolve(C.override(C.smoke(C.preset("smartwatch-cpu")), overrides))


def science(metrics):
    """Metrics without wall-clock times, which differ between identical runs."""
    return {k: v for k, v in metrics.items() if not k.startswith("time/")}


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, metrics, step, state=None):
        self.calls.append((step, dict(metrics), state))

    def evals(self):
        return [(step, m) for step, m, state in self.calls if state is not None]


@pytest.mark.parametrize("variant", C.VARIANTS)
def test_smoke_training_of_each_variant(variant, cache_dir):
    rec = Recorder()
    final = train(smoke(**{"model.variant": variant}), rec, cache_dir=cache_dir)
    out_kind = variant.split("-")[1]
    assert {"eval/und/total", "eval/und/weather", "eval/und/position", "eval/und/time", "eval/und/battery",
            "eval/und/face_color", "eval/gen/attr_acc", "eval/gen/fd", "train/loss", "train/loss/und",
            "train/loss/gen"} <= set(final)
    assert ("eval/gen/token_acc" in final) == (out_kind == "vq")
    assert ("eval/gen/feat_cos" in final) == (out_kind == "siglip")
    assert all(math.isfinite(v) for v in final.values())
    assert [step for step, _ in rec.evals()] == [50, 100]  # smoke: two eval points
    assert rec.calls[0][0] == 0 and any(k.startswith("stage0/judge/") for k in rec.calls[0][1])
    # chance levels: the constant answer once at step 0, the prompt-blind judge score at every eval point
    start = rec.calls[0][1]
    assert {k.replace("eval/", "baseline/") for k in final if k.startswith("eval/und/")} <= set(start)
    assert 0 < start["baseline/und/total"] < 1 and start["baseline/gen/fd_one_image"] > 0
    # the budget, once: updates and distinct samples per task (smoke: one epoch of 256 + 256 at batch 32)
    assert [start[k] for k in ("budget/updates", "budget/und_samples", "budget/gen_samples")] == [16, 256, 256]
    assert all("eval/gen/attr_acc_shuffled" in m for _, m in rec.evals())
    from sweeps.spec import reported_metrics  # what a search may optimise is what a trial reports
    assert {k for k in final if k.startswith("eval/")} <= set(reported_metrics())
    generated = rec.calls[-1][2]["images"]
    assert len(generated["prompts"]) == len(generated["generated"]) == len(generated["real"])
    assert all("=" in p for p in generated["prompts"])  # what each prompt asked for, e.g. "hour=3, ..."
    steps = [step for step, _, _ in rec.calls]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)  # every step logged once, increasing


def test_single_task_runs_score_only_their_side(cache_dir):
    und = train(smoke(**{"data.tasks": "understanding"}), cache_dir=cache_dir)
    assert "eval/und/total" in und and not any(k.startswith("eval/gen/") for k in und)
    assert "train/loss/gen" not in und or und["train/loss/gen"] == 0.0
    gen = train(smoke(**{"data.tasks": "generation"}), cache_dir=cache_dir)
    assert "eval/gen/attr_acc" in gen and not any(k.startswith("eval/und/") for k in gen)


def test_same_seed_same_metrics_and_resume_is_bit_for_bit(cache_dir):
    cfg = smoke(**{"model.variant": "siglip-vq", "seed": 3})
    full = Recorder()
    first = science(train(cfg, full, cache_dir=cache_dir))
    assert science(train(cfg, cache_dir=cache_dir)) == first

    mid = next(state for step, _, state in full.calls if state is not None)  # the 50 % checkpoint
    resumed = Recorder()
    assert science(train(cfg, resumed, resume=mid, cache_dir=cache_dir)) == first
    assert resumed.calls[0][0] > 50  # nothing before the checkpoint is reported again
    assert [step for step, _ in resumed.evals()] == [100]
    same = [(step, science(m)) for step, m, _ in full.calls if step > 50]
    assert [(step, science(m)) for step, m, _ in resumed.calls] == same  # the same reports, none twice

    other = science(train(C.override(cfg, {"seed": 4}), cache_dir=cache_dir))
    assert other != first


def test_resume_refuses_another_config(cache_dir):
    rec = Recorder()
    train(smoke(), rec, cache_dir=cache_dir)
    state = rec.evals()[0]
    with pytest.raises(ValueError, match="different config"):
        Trainer(smoke(**{"model.alpha": 0.5}), cache_dir).run(resume=rec.calls[-1][2])
    assert state


def test_diverging_loss_stops_with_a_clear_error(cache_dir):
    with pytest.raises(DivergenceError, match="train.lr"):
        train(smoke(**{"train.lr": 1e30, "train.grad_clip": 1e30, "train.warmup": 0.0}), cache_dir=cache_dir)


def test_a_saved_tokenizer_directory_trains_identically(tmp_path, cache_dir):
    from unified.data.tokenizer import build_tokenizer, save_tokenizer

    save_tokenizer(build_tokenizer("smartwatch"), tmp_path / "tok")
    built = science(train(smoke(), cache_dir=cache_dir))
    loaded = science(train(smoke(**{"data.tokenizer_path": str(tmp_path / "tok")}), cache_dir=cache_dir))
    assert loaded == built


@pytest.mark.parametrize("space", ["vq", "siglip"])
def test_understanding_only_training_never_touches_the_output_space(space, cache_dir):
    """What lets analysis.findings.share_controls lend one variant's understanding-only runs to the other
    variant of its input space: the two train bit for bit alike."""
    runs = [Recorder() for _ in range(2)]
    finals = [science(train(smoke(**{"model.variant": f"{space}-{out}", "data.tasks": "understanding"}), rec,
                            cache_dir=cache_dir)) for out, rec in zip(("vq", "siglip"), runs, strict=True)]
    assert finals[0] == finals[1] and "eval/und/total" in finals[0]
    losses = [[m["train/loss"] for _, m, _ in rec.calls if "train/loss" in m] for rec in runs]
    assert losses[0] == losses[1] and len(losses[0]) > 2
