"""The `unisweep` command line: the composition root that gathers each package's commands.

    unisweep train [--preset NAME] [--smoke] [key=value ...]     # one training, no Ray; JSON metrics last
    unisweep plan SPEC [--smoke] [--tracking-uri URI] [--experiment E] [--json]   # what a sweep would run
    unisweep run SPEC [--smoke] [--tracking-uri URI] [--experiment E] [--address ADDR] [--storage PATH] [--json]
    unisweep resume NAME [--tracking-uri URI] [--experiment E] [--json]   # finish an interrupted sweep
    unisweep status NAME [--tracking-uri URI] [--experiment E] [--json]   # trials by status, best so far
    unisweep runs [--sweep NAME] [--where EXPR] [--json]                  # trial runs from MLflow
    unisweep report SWEEP [--tracking-uri URI] [--out DIR] [--json]       # the findings as verdicts, Markdown
    unisweep doctor [SPEC] [--address ADDR] [--tracking-uri URI] [--storage PATH] [--json]  # before a cluster sweep

Where (each a flag, else an environment variable, else a default):
  store       --tracking-uri, else $MLFLOW_TRACKING_URI, else the spec's tracking.uri, else sqlite:///<cwd>/mlflow.db
  experiment  --experiment, else $MLFLOW_EXPERIMENT_NAME, else for plan/run the spec's tracking.experiment (else
              unisweep); for a sweep's name (resume, status, runs --sweep, report) the experiment holding its
              parent run (one in several experiments: name it)
  Ray         --address, else $RAY_ADDRESS, else a local Ray
  caches      --cache-dir, else $UNISWEEP_CACHE, else ~/.cache/unisweep
--json prints one JSON object on stdout (its keys in each command's --help; `runs --json` a list); everything
else goes to stderr.

Exit codes (run, resume, status): sweeps/cli.py (printed at the end of `unisweep --help`).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import re
import sys
import time
from pathlib import Path

from analysis.cli import add_parser as add_report_parser
from sweeps import cli as sweep_commands
from sweeps import defaults
from sweeps.errors import Ambiguous, NotFound, SweepBusy
from unified import config as C
from unified import determinism

CACHE_HELP = sweep_commands.CACHE_HELP


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

    determinism.pin()  # one thread, deterministic algorithms; the kernels were pinned in `main`

    t0 = time.perf_counter()
    print(f"training {cfg.model.variant} tasks={cfg.data.tasks} seed={cfg.seed} cell={C.cell_hash(cfg)}", flush=True)

    def report(metrics, step, state=None):
        if state is not None:
            print(f"[{step:3d}%] {time.perf_counter() - t0:6.1f}s  {_fmt(metrics)}", flush=True)

    final = train(cfg, report, cache_dir=args.cache_dir)
    final["time/total_s"] = time.perf_counter() - t0
    print(json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in final.items()}))
    return 0


def _expected_seeds(plan) -> float:
    """Seeds a cell of a sequential spec is expected to take: the rule simulated at the quickstart's per-seed
    spread of a finding-1 gain (sd 0.08) and a true effect of 0.05 (docs/SEQUENTIAL.md)."""
    from analysis.sequential import Schedule, simulate  # late: scipy

    return simulate(1000, 0.05, 0.08, Schedule(plan.first, plan.step, plan.max), precision=plan.precision).mean_seeds


def _undecided(look) -> set[str]:
    """Seeds until decided: the analysis tells the driver which cells still need seeds (sweeps/sequential.py)."""
    from analysis.undecided import undecided_cells  # late: pandas and scipy

    return undecided_cells(look)


def version() -> str:
    """The installed distribution's version; in a checkout that was never installed, pyproject.toml's."""
    try:
        return importlib.metadata.version("unisweep")
    except importlib.metadata.PackageNotFoundError:
        text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
        return re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)[1]


def make_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter  # keeps the epilog's table as written
    parser = argparse.ArgumentParser(prog="unisweep", description=__doc__.split("\n")[0], formatter_class=raw,
                                     epilog=__doc__[__doc__.index("Where"):__doc__.index("Exit codes")]
                                     + sweep_commands.EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train and evaluate one model (no Ray, no MLflow)")
    p.add_argument("--preset", default="smartwatch-cpu", help=f"one of {', '.join(C.PRESETS)}")
    p.add_argument("--smoke", action="store_true", help="shrink the preset to seconds")
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config keys, e.g. model.variant=vq-vq")
    p.set_defaults(func=cmd_train)
    sweep_commands.add_parsers(sub, undecided=_undecided, expected_seeds=_expected_seeds)
    add_report_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Before any command imports torch: ATen, MKL and oneDNN choose their kernels once (unified/determinism.py)
    determinism.apply_env()
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except (C.ConfigError, NotFound, Ambiguous) as e:
        print(f"unisweep: error: {defaults.redact(str(e))}", file=sys.stderr)
        return sweep_commands.BAD_INPUT
    except SweepBusy as e:
        print(f"unisweep: error: {e}", file=sys.stderr)
        return sweep_commands.BUSY
    except Exception as e:
        if not type(e).__module__.startswith("mlflow"):
            raise
        # an unreachable or refusing store: one line, without the password a URI may hold
        print(f"unisweep: error: the MLflow store: {defaults.redact(' '.join(str(e).split()))}", file=sys.stderr)
        return sweep_commands.BAD_INPUT
    except BrokenPipeError:  # `unisweep plan ... | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
