"""`unisweep report`: registered by unisweep/cli.py; light to import, so the rest of the CLI stays fast.

    unisweep report SWEEP [SWEEP ...] [--tracking-uri URI] [--experiment NAME] [--out DIR] [--storage DIR] [--json]
"""

from __future__ import annotations

from pathlib import Path

from sweeps import defaults

REPORT_JSON = ("one JSON object on stdout, everything else on stderr: sweeps, tracking_uri, experiment, report "
               "(report.md's path), report_html (report.html's), verdicts (one per finding: key, finding, side, "
               "claim, effect, ci_low, ci_high, n, verdict, detail)")


def add_parser(subparsers) -> None:
    """Register `report` on the `unisweep` command line (unisweep/cli.py calls this with its subparsers)."""
    p = subparsers.add_parser("report", help="the paper's findings as verdicts with intervals, figures, Markdown")
    p.add_argument("sweeps", nargs="+", metavar="SWEEP", help="sweep name(s), e.g. quickstart")
    p.add_argument("--tracking-uri", default=None, help=defaults.URI_HELP)
    p.add_argument("--experiment", default=None, help=defaults.EXPERIMENT_HELP + " (all the sweeps' one)")
    p.add_argument("--out", default=None, help="output directory (default reports/<sweep>)")
    p.add_argument("--storage", default=None, help="where a search's Optuna studies live (<DIR>/optuna.db), when "
                                                   "the sweep ran with `run --storage DIR` (default: the spec's)")
    p.add_argument("--json", action="store_true", help=REPORT_JSON)
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    import contextlib

    from analysis.report import verdict_table, write_report  # late: pandas, scipy and matplotlib
    from sweeps import tracking
    from sweeps.output import print_json, stdout_to_stderr

    uri = defaults.tracking_uri(args.tracking_uri)
    experiment = tracking.find_experiment(uri, args.sweeps, args.experiment)
    out = Path(args.out or Path("reports") / "+".join(args.sweeps))
    with stdout_to_stderr() if args.json else contextlib.nullcontext():
        verdicts = write_report(uri, args.sweeps, out, experiment, storage=args.storage)
    if args.json:
        print_json({"sweeps": args.sweeps, "tracking_uri": uri, "experiment": experiment,
                    "report": str((out / "report.md").resolve()), "report_html": str((out / "report.html").resolve()),
                    "verdicts": [{"key": k, **v.row()} for k, v in verdicts.items()]})
        return 0
    print(verdict_table(verdicts))
    print(f"report: {out / 'report.md'} and {out / 'report.html'}")
    return 0
