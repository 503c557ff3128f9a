"""Sweeps with planted effects: logged into real MLflow stores by the sweeper's own code, or built in memory.

Each sweep below is a real spec expanded into trials. `fill` gives every trial a run from
`tracking.trial_run`, its eval metrics through `tracking.RunLogger` at the eval points, and `tracking.finish`
(a SQLite commit costs milliseconds here, so the store holds the sweeps the report and query tests need).
`memory_runs` builds the same runs as `mlflow.entities.Run` objects, params stringified as MLflow stores them,
for `analysis.query.trials_frame` to read without a database. Metric values are planted: a per-seed base level
(only pairing by seed makes the effect sharp) plus the effect, growing with the data seen, plus noise. The noise
of a config is a config-specific factor times draws centred over the seeds, so any per-seed number that is
linear in the metrics (a gain, a difference of gains, a slope, a curvature) has noise averaging exactly 0: the
planted size is the mean over seeds, and the spread over seeds is what the intervals must cover. (How often
intervals miss under noise is tested with simulations in test_analysis_stats.py.)
"""

from __future__ import annotations

import zlib

import numpy as np
from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag

from sweeps import spec as S
from sweeps import tracking as T

STEPS = (50, 100)  # two eval points: enough for finding 2, and each logged step is a SQLite commit
NOISE = 0.004  # scale of the per-run noise; planted effects are 10-60x larger
CHANCE = 0.2  # the planted chance levels (constant answer, prompt-blind generation): every planted arm is above

# name -> (grid YAML, seeds, extra overrides YAML)
SWEEPS = {
    # Findings 1-3: aligned gains 0.15 (und) / 0.12 (gen), misaligned 0.05 / 0.04, all growing with data.
    "planted": ("  model.variant: [siglip-siglip, siglip-vq]\n  data.tasks: [mixed, understanding, generation]",
                [0, 1, 2, 3], ""),
    # No effect anywhere: mixed = single-task up to noise.
    "nulleffect": ("  data.tasks: [mixed, understanding, generation]", [0, 1, 2, 3], ""),
    # Finding 4: the und gain falls with the affine strength s: 0.1 - 0.12 s (conflict at s = 1).
    "affine": ("  model.affine_strength: [0.0, 0.5, 1.0]\n  data.tasks: [mixed, understanding]", [0, 1, 2], ""),
    # Finding 5: und peaks at gen/und = 1, gen at gen/und = 2 (quadratic in log2 of the ratio).
    "ratio": ("  data.gen_ratio: [0.25, 1.0, 2.0, 4.0]\n  data.tasks: [mixed]", [0, 1, 2], ""),
    # Finding 6: the face colour is never asked or captioned, always drawn in generation prompts.
    "concept": ("  data.tasks: [mixed, understanding]", [0, 1, 2],
                "overrides: {data.freq.vqa.face_color: 0.0, data.freq.caption.face_color: 0.0, "
                "data.freq.gen.face_color: 1.0}\n"),
    # Finding 7: a 0.1 und gain with the LLM trained, none with it frozen.
    "frozen": ("  model.freeze_llm: [false, true]\n  data.tasks: [mixed, understanding]", [0, 1, 2], ""),
    # Finding 8: und gain 0.05 at tiny, 0.1 at small.
    "scale": ("  backbone.size: [tiny, small]\n  data.tasks: [mixed, understanding]", [0, 1, 2], ""),
    # Both arms at chance: mixed at the constant-answer level, understanding-only far below it (a 0.35 "gain");
    # generation at the prompt-blind level in both arms. Nothing was learned: untestable, however large the gap.
    "atchance": ("  data.tasks: [mixed, understanding, generation]", [0, 1, 2, 3], ""),
    # A small sweep for the store behind an `mlflow server` (every call is an HTTP request).
    "served": ("  data.tasks: [mixed, understanding]", [0, 1, 2], ""),
}
STORED = ("planted", "nulleffect")  # in the session's SQLite store; the others are built in memory

# Searches (Optuna), as sweeps/paper/mix_ratio_search.yaml: und peaks at gen/und = 1, gen at gen/und = 2, so the
# two objectives trade off between those ratios; train.lr changes nothing (a key the importance must rank last).
SEARCH = """name: {name}
base: smartwatch-cpu
seeds: [0]
overrides: {{data.total_samples: 96000, data.gen_ratio: 1.0, model.variant: vq-vq}}
search:
  space:
    data.gen_ratio: {{loguniform: [0.1, 10.0]}}
    train.lr: {{loguniform: [0.0003, 0.003]}}
  metric: {metric}
  mode: {mode}
  num_samples: {samples}
  seed: 0
storage: {storage}
"""


def spec_text(name: str) -> str:
    grid, seeds, extra = SWEEPS[name]
    return f"name: {name}\nbase: smartwatch-cpu\n{extra}seeds: {seeds}\ngrid:\n{grid}\n"


def planted(name: str, trial, step: int, seeds: list[int]) -> dict[str, float]:
    """The eval metrics of one trial at one step: base(seed) + planted effect x (step / 100) + noise."""
    cfg, frac = trial.config, step / 100
    mixed = cfg.data.tasks == "mixed"
    aligned = cfg.model.variant in ("siglip-siglip", "vq-vq")
    base = np.random.default_rng(1000 + trial.seed).uniform(0.3, 0.5, size=2)  # shared by the seed's arms
    und, gen = base[0] + 0.2 * frac, base[1] + 0.1 * frac
    extra = {}
    if name == "planted" and mixed:
        und += (0.15 if aligned else 0.05) * frac
        gen += (0.12 if aligned else 0.04) * frac
    elif name == "affine" and mixed:
        und += (0.1 - 0.12 * cfg.model.affine_strength) * frac
    elif name == "ratio":
        x = np.log2(cfg.data.gen_samples / cfg.data.und_samples)
        und += -0.05 * x**2 * frac
        gen += -0.02 * (x - 1) ** 2 * frac
    elif name == "concept":
        extra["eval/und/face_color"] = base[0] + (0.25 if mixed else 0.0) * frac
    elif name == "frozen" and mixed and not cfg.model.freeze_llm:
        und += 0.1 * frac
    elif name == "scale" and mixed:
        und += (0.05 if cfg.backbone.size == "tiny" else 0.1) * frac
    elif name == "served" and mixed:
        und += 0.1 * frac
    elif name == "atchance":
        und, gen = (CHANCE if mixed else 0.02), CHANCE
    chance = {"baseline/und/total": CHANCE, "eval/gen/attr_acc_shuffled": CHANCE}
    if name == "concept":
        chance["baseline/und/face_color"] = CHANCE
    metrics = {"eval/und/total": und, "eval/gen/attr_acc": gen, **extra}
    metrics = {k: v + noise(name, trial, step, k, seeds) for k, v in metrics.items()}
    return {**metrics, **chance, "train/loss": 2.0 - frac}


def noise(name: str, trial, step: int, key: str, seeds: list[int]) -> float:
    """NOISE x a factor of the config x a draw centred over the sweep's seeds (mean exactly 0 per config)."""
    w = np.random.default_rng(zlib.crc32(f"{name}/{key}/{step}".encode())).normal(size=len(seeds))
    # keyed by the grid point, not the cell hash: a new config key with a default must not redraw the noise
    point = ",".join(f"{k}={v}" for k, v in sorted(trial.overrides.items()))
    factor = np.random.default_rng(zlib.crc32(f"{point}/{key}/{step}".encode())).normal()
    return float(NOISE * factor * (w - w.mean())[seeds.index(trial.seed)])


def fill(client, experiment_id: str, name: str, steps=STEPS, images: bool = False) -> str:
    """Log sweep `name` into the store; return its parent run id. Runs end FINISHED."""
    text = spec_text(name)
    spec = S.parse_spec(text)
    parent = T.start_sweep(client, experiment_id, spec, text)
    for trial in S.expand(spec):
        run_id = T.trial_run(client, experiment_id, parent, trial)
        client.set_tag(run_id, T.CPU, "Planted CPU; torch AVX2" if trial.seed else "Other CPU; torch AVX512")
        log = T.RunLogger(client, run_id)
        for step in steps:
            log(planted(name, trial, step, spec.seeds), step)
        if images and trial.config.data.tasks == "mixed":
            pixels = (40 * trial.seed + 10 * np.arange(4, dtype=np.uint8)[:, None, None, None]).repeat(8, 1)
            pixels = np.broadcast_to(pixels, (4, 8, 8, 3)).astype(np.uint8)  # a distinct shade per image
            log.images({"generated": pixels, "real": 255 - pixels,
                        "prompts": np.array([f"hour={h}, weather=sunny" for h in range(4)])})
        T.finish(client, run_id)
    T.finish(client, parent)
    return parent


def memory_runs(name: str, step: int = 100) -> list[Run]:
    """The FINISHED runs `fill` would log for sweep `name`, as in-memory MLflow entities with the final metrics."""
    spec = S.parse_spec(spec_text(name))
    runs = []
    for i, trial in enumerate(S.expand(spec)):
        tags = {T.ROLE: "trial", T.SWEEP: name, T.CELL: trial.cell, T.SEED: str(trial.seed), T.SMOKE: "false",
                "unisweep.variant": trial.config.model.variant}
        params = {k: str(v) for k, v in S.C.flatten(trial.config).items()}
        metrics = planted(name, trial, step, spec.seeds)
        info = RunInfo(f"{name}-{i:04d}", "0", "", "FINISHED", 0, 1, "active", run_name=trial.name)
        data = RunData([Metric(k, v, 0, step) for k, v in metrics.items()], [Param(k, v) for k, v in params.items()],
                       [RunTag(k, v) for k, v in tags.items()])
        runs.append(Run(info, data))
    return runs


def without_fsync(client) -> None:
    """Skip SQLite's fsync per commit in a throwaway test store (the tracking calls themselves are unchanged)."""
    from sqlalchemy import event

    engine = client._tracking_client.store.engine
    event.listen(engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=OFF"))
    engine.dispose()  # pooled connections predate the listener


def fill_search(client, experiment_id: str, name: str, storage, samples: int = 12, objectives: int = 2) -> str:
    """Log search sweep `name` as the driver would: its study persisted by the project's own `OptunaSearch`
    (sweeps/search.py, in `<storage>/optuna.db`), each sample a run tagged with its study. Returns the parent id."""
    from sweeps.search import optuna_search

    metric, mode = (("[eval/und/total, eval/gen/attr_acc]", "[max, max]") if objectives == 2
                    else ("eval/und/total", "max"))
    text = SEARCH.format(name=name, metric=metric, mode=mode, samples=samples, storage=storage)
    spec = S.parse_spec(text)
    parent = T.start_sweep(client, experiment_id, spec, text)
    common = S.common_config(spec, False)
    for cell in S.expand(spec):  # one study per grid cell, as the driver runs them
        searcher = optuna_search(spec.search, spec.storage, f"{name}-{cell.cell}")
        for i in range(samples):
            sample = searcher.suggest(f"t{i}")
            trial = S.sampled_trial(name, common, {**cell.overrides, **sample}, cell.seed)
            run_id = T.trial_run(client, experiment_id, parent, trial, extra_tags={T.STUDY: cell.cell})
            log = T.RunLogger(client, run_id)
            for step in STEPS:
                final = searched(trial, step)
                log(final, step)
            T.finish(client, run_id)
            searcher.on_trial_complete(f"t{i}", final)
    T.finish(client, parent)
    return parent


def searched(trial, step: int) -> dict[str, float]:
    """A search sample's eval metrics: quadratic in log2(gen/und), peaking at 1 (und) and 2 (gen); lr inert."""
    cfg, frac = trial.config, step / 100
    x = np.log2(cfg.data.gen_samples / cfg.data.und_samples)
    return {"eval/und/total": 0.5 + (0.3 - 0.05 * x**2) * frac, "eval/gen/attr_acc": 0.4 + (0.2 - 0.03 * (x - 1) ** 2)
            * frac, "baseline/und/total": CHANCE, "eval/gen/attr_acc_shuffled": CHANCE, "train/loss": 2.0 - frac}
