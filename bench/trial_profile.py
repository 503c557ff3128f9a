"""Where one trial's wall time goes: setup, training steps, each evaluation and reporting, as a table.

    python bench/trial_profile.py [--preset smartwatch-cpu] [--smoke] [--threads 1] [--mlflow] [--plain]
                                  [--cprofile N] [key=value ...]
    e.g. python bench/trial_profile.py model.variant=vq-vq data.tasks=mixed seed=100 \
             data.und_samples=16000 data.gen_samples=8000   # a quarter of the budget: 1.5-3 min on one core

Runs `unified.train.Trainer` unchanged and times it from outside: the functions it calls are wrapped with
nested timers (wrapped by name in this process only), so a row's children and its "(rest)" add up to the row.
`--mlflow` also logs every report into a throwaway SQLite store through the sweep's own `RunLogger`, as a
sweep trial does; without it "reporting" is the checkpoint snapshot (the Trainer's deep copy and a
`torch.save` of it, as sweeps/trial.py writes one per eval point). `--plain` swaps the evaluation's
shortcuts back for the plain calls they replaced (the "before" of docs/LOG.md 2026-12-08); `--compare-eval N`
then times N evaluations of the trained model each way, alternating. `--cprofile N` adds the N functions with
the most own time. Stage 0 is built into $UNISWEEP_CACHE on first use (minutes, once): run twice and read the
second table. One thread by default, as sweep trials run one per core; compare only ratios of one machine.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

T_IMPORT = time.perf_counter()

import torch  # noqa: E402  (after T_IMPORT: the table says what importing cost)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable as a script from the repository root

from unisweep.cli import build_config, parse_overrides  # noqa: E402


class Clock:
    """Nested wall-clock timers: a timer opened inside another is recorded under the outer one's path."""

    def __init__(self):
        self.seconds: dict[tuple[str, ...], float] = defaultdict(float)
        self.calls: dict[tuple[str, ...], int] = defaultdict(int)
        self.stack: list[str] = []

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.stack.append(name)
        path, t0 = tuple(self.stack), time.perf_counter()
        try:
            yield
        finally:
            self.seconds[path] += time.perf_counter() - t0
            self.calls[path] += 1
            self.stack.pop()

    def wrap(self, owner, attr: str, name: str) -> None:
        """Replace owner.attr (a function, bound method or module attribute) by a timed call of itself."""
        inner = getattr(owner, attr)

        def timed(*args, **kwargs):
            with self(name):
                return inner(*args, **kwargs)

        setattr(owner, attr, timed)

    def table(self, total: float) -> str:
        """Rows in call order of first appearance, indented by depth, with each parent's untimed rest."""
        children: dict[tuple[str, ...], list[tuple[str, ...]]] = defaultdict(list)
        for path in self.seconds:
            children[path[:-1]].append(path)
        lines = [f"{'part':<44}{'calls':>7}{'seconds':>10}{'share':>8}"]

        def walk(path, depth):
            for child in children[path]:
                s = self.seconds[child]
                lines.append(f"{'  ' * depth + child[-1]:<44}{self.calls[child]:>7}{s:>10.2f}{100 * s / total:>7.1f}%")
                walk(child, depth + 1)
            if path and children[path]:
                rest = self.seconds[path] - sum(self.seconds[c] for c in children[path])
                lines.append(f"{'  ' * depth + '(rest)':<44}{'':>7}{rest:>10.2f}{100 * rest / total:>7.1f}%")

        walk((), 0)
        lines.append(f"{'total':<44}{'':>7}{total:>10.2f}{100.0:>7.1f}%")
        return "\n".join(lines)

    def summary(self, total: float) -> str:
        """The four shares the table breaks down: setup, training steps, evaluation, reporting."""
        top = {path[-1]: s for path, s in self.seconds.items() if len(path) == 2}
        parts = {"setup": self.seconds[("setup",)],
                 "evaluation (all points)": top.get("evaluation", 0.0),
                 "reporting (snapshot, checkpoint, log)": top.get("reporting", 0.0)
                 + top.get("checkpoint snapshot (deep copy)", 0.0),
                 "chance levels (once)": top.get("chance levels (once)", 0.0)}
        parts["training steps"] = self.seconds[("run",)] - sum(v for k, v in parts.items() if k != "setup")
        return "\n".join(f"{k:<44}{v:>17.2f}{100 * v / total:>7.1f}%" for k, v in parts.items())


class TimedModule:
    """Stands in for `Trainer.ddp` (the model itself when one process trains): times each forward."""

    def __init__(self, module, clock: Clock):
        self.module, self.clock = module, clock

    def __call__(self, *args, **kwargs):
        with self.clock("forward"):
            return self.module(*args, **kwargs)

    def train(self, mode: bool = True):
        return self.module.train(mode)


def instrument_setup(clock: Clock) -> None:
    """The builders `Trainer.__init__` calls, by the names unified.train imported them under."""
    import unified.train as T

    for attr, name in [("load_pool", "image pool"), ("build_tokenizer", "tokenizer"),
                       ("build_spaces", "stage 0 (load or build)"), ("build_samples", "samples"),
                       ("build_text_prior", "text prior"), ("build_model", "model build")]:
        clock.wrap(T, attr, name)


def instrument_run(trainer, clock: Clock) -> None:
    import unified.evaluate as E
    from unified import metrics

    trainer.ddp = TimedModule(trainer.ddp, clock)
    clock.wrap(trainer, "step_batches", "batches (collate, gather)")
    clock.wrap(torch.Tensor, "backward", "backward")
    clock.wrap(torch.nn.utils, "clip_grad_norm_", "grad clip")
    opened = []
    trainer.optimizer.register_step_pre_hook(lambda *a: opened.append(clock("optimizer")) or opened[-1].__enter__())
    trainer.optimizer.register_step_post_hook(lambda *a: opened.pop().__exit__(None, None, None))
    clock.wrap(type(trainer.scheduler), "step", "lr schedule")  # on the class: the instance's dict is its state
    clock.wrap(trainer, "chance_levels", "chance levels (once)")
    clock.wrap(trainer, "evaluate", "evaluation")
    clock.wrap(trainer, "state", "checkpoint snapshot (deep copy)")
    clock.wrap(E, "evaluate_understanding", "understanding")
    clock.wrap(E, "evaluate_generation", "generation")
    clock.wrap(trainer.model, "generate_answers", "greedy decoding")
    clock.wrap(E, "detokenize", "detokenize")
    clock.wrap(metrics, "und_scores", "scoring")
    clock.wrap(trainer.model, "generate_images", "image-token decoding")
    clock.wrap(trainer.spaces, "decode", "pixel decoding")
    judge = trainer.spaces.judge
    for attr in ("predict", "features", "predict_and_features"):
        if hasattr(judge, attr):
            clock.wrap(judge, attr, f"judge {attr}")
    clock.wrap(metrics, "frechet_distance", "frechet distance")


@contextlib.contextmanager
def plain_evaluation():
    """The evaluation without its shortcuts (docs/LOG.md 2026-12-08): two judge passes over the generated
    images, the real images' features at every eval point, one detokenize per answer. For before/after
    tables from one commit; tests/test_speed_invariance.py checks that both give the same metrics."""
    from unittest import mock

    import unified.evaluate as E
    from unified.data.tokenizer import detokenize
    from unified.vision.judge import Judge

    with (mock.patch.object(Judge, "predict_and_features", lambda self, images, batch=512: (
              self.predict(images, batch), self.features(images, batch))),
          mock.patch.object(E, "_REAL_FEATURES", lambda judge, images: judge.features(images)),
          mock.patch.object(E, "_detokenizer", lambda tok: lambda ids: detokenize(tok, ids))):
        yield


def compare_evaluation(trainer, repeats: int) -> str:
    """The trained model evaluated `repeats` times each way, alternating (plain, fast, plain, ...) so that a
    change in the machine's load hits both alike: the ratio of the medians, and whether every metric agrees."""
    times: dict[str, list[float]] = {"plain": [], "fast": []}
    scores = {}
    for _ in range(repeats):
        for name in ("plain", "fast"):
            with plain_evaluation() if name == "plain" else contextlib.nullcontext():
                t0 = time.perf_counter()
                scores[name], _ = trainer.evaluate()
                times[name].append(time.perf_counter() - t0)
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    same = scores["plain"] == scores["fast"]
    return (f"# evaluation, median of {repeats}: plain {med['plain']:.2f} s, fast {med['fast']:.2f} s, "
            f"plain/fast {med['plain'] / med['fast']:.3f}; every metric identical: {same}")


def make_report(clock: Clock, cfg, use_mlflow: bool):
    """The callback a sweep trial passes: a checkpoint written per eval point, and optionally MLflow logging."""
    logger = None
    if use_mlflow:
        from mlflow import MlflowClient

        from sweeps import tracking

        store = tempfile.mkdtemp(prefix="trial-profile-")
        client = MlflowClient(f"sqlite:///{store}/mlflow.db")
        run = client.create_run(client.create_experiment("profile"))
        logger = tracking.RunLogger(client, run.info.run_id)

    def report(metrics, step, state=None):
        with clock("reporting"):
            images = state.pop("images", None) if state is not None else None
            if logger is not None:
                with clock("mlflow log"):
                    logger(metrics, step)
                    if images and step == 100:
                        logger.images(images)
            if state is not None:
                with clock("checkpoint torch.save"):
                    torch.save(state, io.BytesIO())

    return report, logger


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="smartwatch-cpu")
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mlflow", action="store_true", help="log reports into a throwaway SQLite MLflow store")
    p.add_argument("--plain", action="store_true", help="the evaluation without its shortcuts (a 'before')")
    p.add_argument("--compare-eval", type=int, default=0, metavar="N",
                   help="then evaluate the trained model N times each way, plain and fast, alternating")
    p.add_argument("--cprofile", type=int, default=0, metavar="N", help="also print the N top functions")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = build_config(args.preset, args.smoke, parse_overrides(args.overrides))

    from unified.train import Trainer

    stack = contextlib.ExitStack()
    if args.plain:
        stack.enter_context(plain_evaluation())
    clock = Clock()
    report, logger = make_report(clock, cfg, args.mlflow)  # the store's creation is the sweep's, not timed
    profiler = cProfile.Profile() if args.cprofile else None
    instrument_setup(clock)
    t0 = time.perf_counter()
    if profiler:
        profiler.enable()
    with clock("setup"):
        trainer = Trainer(cfg)
    instrument_run(trainer, clock)
    with clock("run"):
        final = trainer.run(report)
        if logger is not None:
            with clock("reporting"), clock("mlflow log"):
                logger.flush()
    if profiler:
        profiler.disable()
    total = time.perf_counter() - t0
    print(f"# not in the table: {t0 - T_IMPORT:.1f} s of imports and store creation before setup")
    print(f"# {args.preset}{' (smoke)' if args.smoke else ''} {' '.join(args.overrides)}"
          f"{' --plain' if args.plain else ''}; {trainer.n_steps} steps, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    print(clock.table(total))
    print("# summary")
    print(clock.summary(total))
    shown = {k: v for k, v in final.items() if k.startswith("eval/") and "/head" not in k}
    print("# final: " + "  ".join(f"{k}={v:.4g}" for k, v in shown.items()))
    stack.close()
    if args.compare_eval:
        print(compare_evaluation(trainer, args.compare_eval))
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.cprofile)
        print(out.getvalue())


if __name__ == "__main__":
    main()
