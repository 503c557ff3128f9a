"""The sweep commands of the `unisweep` command line: plan, run, resume, status, runs, doctor.

unisweep/cli.py gathers them with `train` and `report`; `add_parsers` registers them. The analysis a sequential
sweep needs after each round (`undecided`) and the expected seeds `plan` prints are passed in, so this package
imports nothing from analysis/.

Exit codes (run, resume, status):
  0    every trial FINISHED
  1    a trial FAILED and none is left to run (run and resume name them on stderr)
  2    bad input, e.g. no such spec, sweep or experiment: a one-line reason on stderr
  3    unfinished: a trial still RUNNING or SCHEDULED (the sweep runs, or was interrupted: `unisweep resume NAME`)
  4    busy: another live driver runs this sweep (run and resume; its host, pid and start on stderr)
  130  Ctrl-C stopped the sweep; 143: a SIGTERM did (e.g. `ray job stop`). `unisweep resume NAME` runs the
       trials it cut short or never started
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import typing

from sweeps import defaults
from sweeps.output import print_json, stdout_to_stderr
from sweeps.sequential import Sequential, Undecided

OK, FAILED, BAD_INPUT, UNFINISHED, BUSY = 0, 1, 2, 3, 4  # exit codes; 128 + the signal after an interrupt
CODES = {"finished": OK, "failed": FAILED, "unfinished": UNFINISHED}


def cmd_plan(args) -> int:
    import dataclasses

    from sweeps.plan import format_plan, make_plan
    from sweeps.spec import Tracking
    from sweeps.suite import load

    spec, _ = load(args.spec)
    where = Tracking(defaults.tracking_uri(args.tracking_uri, spec.tracking.uri),
                     defaults.experiment_name(args.experiment, spec.tracking.experiment))
    plan = make_plan(dataclasses.replace(spec, tracking=where), args.smoke, where.uri,
                     expected_seeds=args.expected_seeds)
    print(json.dumps(plan.as_json()) if args.json else format_plan(plan))
    return OK


def cmd_run(args) -> int:
    from sweeps.driver import run_sweep
    from sweeps.suite import load

    spec, text = load(args.spec)
    with _json_mode(args):
        result = run_sweep(spec, text, args.smoke, args.tracking_uri, args.address,
                           args.cache_dir, args.storage, progress=_say, experiment_name=args.experiment,
                           retry_failed=args.retry_failed, undecided=args.undecided)
        outcome, code = _summary(result, spec.name)
    if args.json:
        print_json(sweep_json(result, spec.name, outcome))
    return code


def cmd_resume(args) -> int:
    from sweeps.driver import resume_sweep

    with _json_mode(args):
        result = resume_sweep(args.name, args.tracking_uri, args.experiment, True if args.smoke else None,
                              address=args.address, cache_dir=args.cache_dir, storage=args.storage, progress=_say,
                              retry_failed=args.retry_failed, undecided=args.undecided)
        outcome, code = _summary(result, args.name)
    if args.json:
        print_json(sweep_json(result, args.name, outcome))
    return code


def _say(line: str) -> None:
    print(line, flush=True)


def _json_mode(args):
    """With --json, whatever the command prints goes to stderr; the caller prints the one JSON object after."""
    return stdout_to_stderr() if args.json else contextlib.nullcontext()


def _summary(result, name: str) -> tuple[str, int]:
    """The end of `run` and `resume`: the table and counts; the outcome and its exit code."""
    from sweeps.progress import format_table

    if result.rows:
        print(format_table(result.rows))
    not_run = f", {len(result.not_run)} not started" if result.not_run else ""
    for_good = f", {len(result.failed_for_good)} FAILED for good earlier" if result.failed_for_good else ""
    print(f"{result.finished} trial(s) finished, {result.skipped} skipped (already FINISHED), "
          f"{len(result.failed)} failed{for_good}{not_run}, in {result.wall_s:.0f} s")
    if result.interrupted:
        left = result.trials - result.skipped - result.finished
        print(f"unisweep: interrupted: `unisweep resume {name}` (same --tracking-uri) runs the {left} trial(s) "
              "left, in the same MLflow runs", file=sys.stderr)
        outcome, code = "interrupted", 128 + (result.signum or 2)  # the shell's way: 130 after Ctrl-C, 143 SIGTERM
    elif result.not_run:
        outcome, code = "unfinished", UNFINISHED
    elif result.failed or result.failed_for_good:
        if result.failed:
            print(f"unisweep: error: {len(result.failed)} trial(s) failed: {', '.join(result.failed)}",
                  file=sys.stderr)
        if result.failed_for_good:
            print(f"unisweep: error: {len(result.failed_for_good)} trial(s) FAILED for good earlier, not rerun "
                  f"(--retry-failed reruns them): {', '.join(result.failed_for_good)}", file=sys.stderr)
        outcome, code = "failed", FAILED
    else:
        outcome, code = "finished", OK
    return outcome, code


def sweep_json(result, name: str, outcome: str) -> dict:
    """`run --json` / `resume --json`: the keys RUN_JSON lists in the help."""
    return {"sweep": name, "tracking_uri": result.tracking_uri, "experiment": result.experiment,
            "trials": result.trials, "skipped": result.skipped, "finished": result.finished, "failed": result.failed,
            "failed_for_good": result.failed_for_good,
            "not_run": result.not_run, "interrupted": result.interrupted, "signal": result.signum or None,
            "outcome": outcome, "wall_s": result.wall_s, "launched": result.rows}


def cmd_status(args) -> int:
    from sweeps import tracking
    from sweeps.report_runs import sweep_status

    uri = defaults.tracking_uri(args.tracking_uri)
    status = sweep_status(uri, tracking.find_experiment(uri, [args.name], args.experiment), args.name, args.metric)
    if args.json:
        print_json(status)
    else:
        counts = ", ".join(f"{n} {s}" for s, n in sorted(status["by_status"].items()))
        best = status["best"]
        print(f"sweep {status['sweep']}: {status['trials']} trials ({counts}): {status['outcome']}")
        print(f"  best {args.metric}: " + ("none yet" if best is None else f"{best['value']:.4f} ({best['name']})"))
    return CODES[status["outcome"]]


def cmd_runs(args) -> int:
    from sweeps import tracking
    from sweeps.report_runs import format_runs, list_runs

    uri = defaults.tracking_uri(args.tracking_uri)
    experiment = (tracking.find_experiment(uri, [args.sweep], args.experiment) if args.sweep
                  else args.experiment or os.environ.get(defaults.EXPERIMENT_ENV))  # None: every experiment
    rows = list_runs(uri, experiment, args.sweep, args.where)
    print(json.dumps(rows) if args.json else format_runs(rows))
    return OK


def cmd_doctor(args) -> int:
    from sweeps.doctor import diagnose
    from sweeps.spec import load_spec

    spec = load_spec(args.spec) if args.spec else None
    with _json_mode(args):
        checks = diagnose(spec, args.address, args.tracking_uri, args.experiment, args.storage, args.cache_dir)
        for check in checks:
            print(check.line())
    if args.json:
        print_json({"ok": all(c.ok for c in checks), "checks": [c.as_json() for c in checks]})
    return OK if all(c.ok for c in checks) else FAILED


RUN_JSON = ("one JSON object on stdout, everything else on stderr: sweep, tracking_uri, experiment, trials (planned), "
            "skipped (already FINISHED), finished, failed, failed_for_good (diverged earlier, not rerun) and not_run "
            "(trial names), interrupted, signal, outcome (finished, failed, unfinished or interrupted), wall_s, "
            "launched (this launch's trials: name, status, percent, wall_s, metrics)")
STATUS_JSON = ("one JSON object: sweep, tracking_uri, experiment, trials, by_status ({MLflow status: count}), outcome "
               "(finished, failed or unfinished: exit code 0, 1 or 3), metric, best ({name, value} or null)")
CACHE_HELP = "stage-0 and dataset caches (default: $UNISWEEP_CACHE, else ~/.cache/unisweep)"
EXIT_CODES = __doc__[__doc__.index("Exit codes"):]


def add_parsers(sub, undecided: Undecided | None = None,
                expected_seeds: typing.Callable[[Sequential], float] | None = None) -> None:
    """Register the sweep commands on `sub` (unisweep/cli.py). `undecided`: the cells a sequential sweep's
    analysis still wants seeds for; `expected_seeds`: what `plan` prints as a sequential cell's expected seeds."""
    raw = argparse.RawDescriptionHelpFormatter  # keeps the epilog's table as written
    p = sub.add_parser("plan", help="what a sweep spec would run; launches nothing")
    p.add_argument("spec", help="a sweep YAML (sweeps/quickstart.yaml), or a suite: a folder with a suite.yaml "
                                "(sweeps/paper/) or that file")
    p.add_argument("--smoke", action="store_true", help="the spec's smoke size")
    p.add_argument("--tracking-uri", default=None, help=defaults.SPEC_URI_HELP)
    p.add_argument("--experiment", default=None, help=defaults.SPEC_EXPERIMENT_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    p.set_defaults(func=cmd_plan, expected_seeds=expected_seeds)

    p = sub.add_parser("run", help="run a sweep on Ray Tune; every trial logged to MLflow once", epilog=EXIT_CODES,
                       formatter_class=raw)
    p.add_argument("spec", help="a sweep YAML (sweeps/quickstart.yaml), or a suite: a folder with a suite.yaml "
                                "(sweeps/paper/) or that file")
    p.add_argument("--smoke", action="store_true", help="the spec's smoke size")
    p.add_argument("--tracking-uri", default=None, help=defaults.SPEC_URI_HELP)
    p.add_argument("--experiment", default=None, help=defaults.SPEC_EXPERIMENT_HELP)
    _launch_args(p)
    p.set_defaults(func=cmd_run, undecided=undecided)

    p = sub.add_parser("resume", help="finish an interrupted sweep from the spec its MLflow parent run holds",
                       epilog=EXIT_CODES, formatter_class=raw)
    p.add_argument("name", help="the sweep's name (the spec's `name`)")
    p.add_argument("--smoke", action="store_true", help="the smoke sweep of that name (default: the latest "
                                                         "unfinished one)")
    p.add_argument("--tracking-uri", default=None, help=defaults.URI_HELP)
    p.add_argument("--experiment", default=None, help=defaults.EXPERIMENT_HELP)
    _launch_args(p)
    p.set_defaults(func=cmd_resume, undecided=undecided)

    p = sub.add_parser("status", help="summarise a sweep from MLflow; the exit code says how it stands",
                       epilog=EXIT_CODES, formatter_class=raw)
    p.add_argument("name", help="the sweep's name (the spec's `name`)")
    p.add_argument("--metric", default="eval/und/total", help="rank runs by this metric")
    p.add_argument("--tracking-uri", default=None, help=defaults.URI_HELP)
    p.add_argument("--experiment", default=None, help=defaults.EXPERIMENT_HELP)
    p.add_argument("--json", action="store_true", help=STATUS_JSON)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("runs", help="list trial runs from MLflow")
    p.add_argument("--sweep", default=None, help="only this sweep's trials")
    p.add_argument("--where", default=None, help="an MLflow filter, e.g. \"params.model.variant = 'vq-vq'\"")
    p.add_argument("--tracking-uri", default=None, help=defaults.URI_HELP)
    p.add_argument("--experiment", default=None, help=defaults.EXPERIMENT_HELP + "; without --sweep, every one")
    p.add_argument("--json", action="store_true", help="a JSON list of runs instead of the table")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("doctor", help="check a cluster before a sweep: Ray, resources, MLflow, shared folders; "
                                      "exit 1 if a check fails")
    p.add_argument("spec", nargs="?", default=None, help="a sweep YAML: its resources, tracking and storage")
    p.add_argument("--address", default=None, help="a Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--tracking-uri", default=None, help=defaults.SPEC_URI_HELP)
    p.add_argument("--experiment", default=None, help=defaults.SPEC_EXPERIMENT_HELP)
    p.add_argument("--storage", default=None, help="the folder trials share (default: the spec's `storage`)")
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    p.add_argument("--json", action="store_true", help="one JSON object: ok, checks ([{name, ok, detail}])")
    p.set_defaults(func=cmd_doctor)


def _launch_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--address", default=None, help="a Ray cluster address, e.g. ray://head:10001 or auto "
                                                   "(default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--storage", default=None, help="Ray results, checkpoints and Optuna studies (default: the "
                                                   "spec's `storage`); shared storage on a multi-node cluster")
    p.add_argument("--cache-dir", default=None, help=CACHE_HELP)
    p.add_argument("--retry-failed", action="store_true", help="also rerun trials FAILED for good (a diverging "
                                                                "loss); other failures are always rerun")
    p.add_argument("--json", action="store_true", help=RUN_JSON)


