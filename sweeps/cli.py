"""The `unisweep` command line.

    unisweep train [--preset NAME] [--smoke] [key=value ...]     # one training, no Ray; JSON metrics last
    unisweep plan SPEC [--smoke] [--tracking-uri URI] [--json]   # what a sweep would run; launches nothing
    unisweep run SPEC [--smoke] [--tracking-uri URI] [--address ADDR] [--storage PATH]   # Ray Tune -> MLflow
    unisweep resume NAME [--tracking-uri URI] [--experiment E]    # finish an interrupted sweep
    unisweep status NAME [--tracking-uri URI] [--experiment E]    # trials by status, best so far
    unisweep runs [--sweep NAME] [--where EXPR] [--json]          # trial runs from MLflow
    unisweep report SWEEP [--tracking-uri URI] [--out DIR]        # the findings as verdicts, figures, Markdown

Exit codes: 0 when every trial finished, 1 when a trial failed, 2 for bad input (a one-line reason), 130
when Ctrl-C stopped the sweep and 143 after SIGTERM, e.g. `ray job stop` (`unisweep resume NAME` runs what it
cut short or never started).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from sweeps.errors import NotFound
from unified import config as C


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise C.ConfigError(f"expected key=value, got {pair!r} (e.g. model.variant=vq-vq)")
        out[key.strip()] = value
    return out


def build_config(preset: str, smoke: bool, overrides: dict[str, str]) -> C.ExperimentConfig:
    cfg = C.preset(preset)
    if smoke:
        cfg = C.smoke(cfg)
    return C.resolve(C.override(cfg, overrides))


def _fmt(metrics: dict) -> str:
    keys = [k for k in metrics if k.startswith("eval/")] + ["train/loss"]
    return "  ".join(f"{k.removeprefix('eval/')}={metrics[k]:.4g}" for k in keys if k in metrics)


def cmd_train(args) -> int:
    cfg = build_config(args.preset, args.smoke, parse_overrides(args.overrides))  # errors before slow imports
    from unified.train import train  # late: torch and transformers take seconds to import

    t0 = time.perf_counter()
    print(f"training {cfg.model.variant} tasks={cfg.data.tasks} seed={cfg.seed} cell={C.cell_hash(cfg)}", flush=True)

    def report(metrics, step, state=None):
        if state is not None:
            print(f"[{step:3d}%] {time.perf_counter() - t0:6.1f}s  {_fmt(metrics)}", flush=True)

    final = train(cfg, report, cache_dir=args.cache_dir)
    final["time/total_s"] = time.perf_counter() - t0
    print(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in final.items()}))
    return 0


def cmd_plan(args) -> int:
    from sweeps import tracking
    from sweeps.plan import format_plan, make_plan
    from sweeps.spec import load_spec

    spec = load_spec(args.spec)
    uri = tracking.absolute_tracking_uri(args.tracking_uri) if args.tracking_uri else spec.tracking.uri
    plan = make_plan(spec, args.smoke, uri)
    print(json.dumps(plan.as_json()) if args.json else format_plan(plan))
    return 0


def cmd_run(args) -> int:
    from sweeps.driver import run_sweep
    from sweeps.spec import load_spec, spec_text

    spec = load_spec(args.spec)
    result = run_sweep(spec, spec_text(args.spec), args.smoke, args.tracking_uri, args.address,
                       args.cache_dir, args.storage, progress=_say)
    return _summary(result, spec.name)


def cmd_resume(args) -> int:
    from sweeps.driver import resume_sweep

    result = resume_sweep(args.name, args.tracking_uri, args.experiment, True if args.smoke else None,
                          address=args.address, cache_dir=args.cache_dir, storage=args.storage, progress=_say)
    return _summary(result, args.name)


def _say(line: str) -> None:
    print(line, flush=True)


def _summary(result, name: str) -> int:
    from sweeps.progress import format_table

    if result.rows:
        print(format_table(result.rows))
    not_run = f", {len(result.not_run)} not started" if result.not_run else ""
    print(f"{result.finished} trial(s) finished, {result.skipped} skipped (already FINISHED), "
          f"{len(result.failed)} failed{not_run}, in {result.wall_s:.0f} s")
    if result.interrupted:
        left = result.trials - result.skipped - result.finished
        print(f"unisweep: interrupted: `unisweep resume {name}` (same --tracking-uri) runs the {left} trial(s) "
              "left, in the same MLflow runs", file=sys.stderr)
        return 128 + (result.signum or 2)  # the shell's convention: 130 after Ctrl-C, 143 after SIGTERM
    if result.failed:
        print(f"unisweep: error: {len(result.failed)} trial(s) failed: {', '.join(result.failed)}", file=sys.stderr)
        return 1
    return 0


def _uri(args) -> str:
    from sweeps import tracking

    return tracking.absolute_tracking_uri(args.tracking_uri) if args.tracking_uri else tracking.default_tracking_uri()


def cmd_status(args) -> int:
    from sweeps.report_runs import sweep_status

    status = sweep_status(_uri(args), args.experiment, args.name, args.metric)
    counts = ", ".join(f"{n} {s}" for s, n in sorted(status["by_status"].items()))
    best = status["best"]
    print(f"sweep {status['sweep']}: {status['trials']} trials ({counts})")
    print(f"  best {args.metric}: " + ("none yet" if best is None else f"{best[args.metric]:.4f} ({best['name']})"))
    return 0 if set(status["by_status"]) == {"FINISHED"} else 1


def cmd_runs(args) -> int:
    from sweeps.report_runs import format_runs, list_runs

    rows = list_runs(_uri(args), args.experiment, args.sweep, args.where)
    print(json.dumps(rows) if args.json else format_runs(rows))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unisweep", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train and evaluate one model (no Ray, no MLflow)")
    p.add_argument("--preset", default="smartwatch-cpu", help=f"one of {', '.join(C.PRESETS)}")
    p.add_argument("--smoke", action="store_true", help="shrink the preset to seconds")
    p.add_argument("--cache-dir", default=None, help="stage-0 and dataset caches (default $UNISWEEP_CACHE "
                                                      "or ~/.cache/unisweep)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config keys, e.g. model.variant=vq-vq")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("plan", help="what a sweep spec would run; launches nothing")
    p.add_argument("spec", help="a sweep YAML, e.g. sweeps/quickstart.yaml")
    p.add_argument("--smoke", action="store_true", help="the spec's smoke size")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: the spec's, else "
                                                         "$MLFLOW_TRACKING_URI, else sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("run", help="run a sweep on Ray Tune; every trial logged to MLflow once")
    p.add_argument("spec", help="a sweep YAML, e.g. sweeps/quickstart.yaml")
    p.add_argument("--smoke", action="store_true", help="the spec's smoke size")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default as for plan)")
    _launch_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("resume", help="finish an interrupted sweep from the spec its MLflow parent run holds")
    p.add_argument("name", help="the sweep's name (the spec's `name`)")
    p.add_argument("--smoke", action="store_true", help="the smoke sweep of that name (default: the latest "
                                                         "unfinished one)")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else "
                                                         "sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--experiment", default="unisweep", help="MLflow experiment (the spec's tracking.experiment)")
    _launch_args(p)
    p.set_defaults(func=cmd_resume)

    for name, func, text in (("status", cmd_status, "summarise a sweep from MLflow"),
                             ("runs", cmd_runs, "list trial runs from MLflow")):
        p = sub.add_parser(name, help=text)
        if name == "status":
            p.add_argument("name", help="the sweep's name (the spec's `name`)")
            p.add_argument("--metric", default="eval/und/total", help="rank runs by this metric")
        else:
            p.add_argument("--sweep", default=None, help="only this sweep's trials")
            p.add_argument("--where", default=None, help="an MLflow filter, e.g. \"params.model.variant = 'vq-vq'\"")
            p.add_argument("--json", action="store_true", help="JSON instead of the table")
        p.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else "
                                                             "sqlite:///<cwd>/mlflow.db)")
        p.add_argument("--experiment", default="unisweep", help="MLflow experiment (the spec's tracking.experiment)")
        p.set_defaults(func=func)

    from analysis.cli import add_parser as add_report_parser

    add_report_parser(sub)
    return parser


def _launch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default=None, help="a Ray cluster address, e.g. ray://head:10001 or auto "
                                                   "(default: a local Ray)")
    p.add_argument("--storage", default=None, help="Ray results, checkpoints and Optuna studies (default: the "
                                                   "spec's `storage`); shared storage on a multi-node cluster")
    p.add_argument("--cache-dir", default=None, help="stage-0 caches (default $UNISWEEP_CACHE or ~/.cache/unisweep)")


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (C.ConfigError, NotFound) as e:
        print(f"unisweep: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `unisweep plan ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
