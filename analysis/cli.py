"""`unisweep report`: registered by sweeps/cli.py; light to import, so the rest of the CLI stays fast.

    unisweep report SWEEP [SWEEP ...] [--tracking-uri URI] [--experiment NAME] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    """Register `report` on the `unisweep` command line (sweeps/cli.py calls this with its subparsers)."""
    p = subparsers.add_parser("report", help="the paper's findings as verdicts with intervals, figures, Markdown")
    p.add_argument("sweeps", nargs="+", metavar="SWEEP", help="sweep name(s), e.g. quickstart")
    p.add_argument("--tracking-uri", default=None, help="MLflow store (default: $MLFLOW_TRACKING_URI, else "
                                                         "sqlite:///<cwd>/mlflow.db)")
    p.add_argument("--experiment", default="unisweep", help="MLflow experiment (the spec's tracking.experiment)")
    p.add_argument("--out", default=None, help="output directory (default reports/<sweep>)")
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from analysis.report import verdict_table, write_report  # late: pandas, scipy and matplotlib
    from sweeps import tracking

    uri = tracking.absolute_tracking_uri(args.tracking_uri) if args.tracking_uri else tracking.default_tracking_uri()
    out = Path(args.out or Path("reports") / "+".join(args.sweeps))
    verdicts = write_report(uri, args.sweeps, out, args.experiment)
    print(verdict_table(verdicts))
    print(f"report: {out / 'report.md'}")
    return 0
