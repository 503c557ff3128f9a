"""`unisweep status NAME` and `unisweep runs --sweep NAME`: what MLflow holds about a sweep, read-only.

`status` counts trials by MLflow status and shows the best run so far by a metric, and says whether the sweep
finished, failed or is unfinished (its exit code); `runs` lists trial runs with their grid values and final
metrics, filtered by an MLflow expression over dotted keys (`--where "params.model.variant = 'vq-vq'"`;
backticks are added for you). `experiment=None` reads every experiment.
"""

from __future__ import annotations

from collections import Counter

from sweeps import tracking
from sweeps.errors import NotFound

SHOWN_METRICS = ("eval/und/total", "eval/gen/attr_acc")
UNFINISHED = ("RUNNING", "SCHEDULED")  # running now, or left by an interrupted or dead driver: `resume` runs them


def list_runs(uri: str, experiment: str | None, sweep: str | None, where: str | None = None) -> list[dict]:
    client, experiment_id = tracking.connect(uri, experiment)
    rows = []
    for r in tracking.search_trials(client, experiment_id, sweep, where):
        rows.append({"run_id": r.info.run_id, "name": r.info.run_name, "status": r.info.status,
                     "sweep": r.data.tags.get(tracking.SWEEP), "cell": r.data.tags.get(tracking.CELL),
                     "seed": int(r.data.tags.get(tracking.SEED, -1)), "variant": r.data.tags.get(tracking.VARIANT),
                     "tasks": r.data.params.get("data.tasks"), "metrics": dict(r.data.metrics)})
    return sorted(rows, key=lambda row: row["name"] or "")


def sweep_status(uri: str, experiment: str, sweep: str, metric: str = "eval/und/total") -> dict:
    """What `status --json` prints: sweep, tracking_uri, experiment, trials, by_status, outcome, metric, best."""
    rows = list_runs(uri, experiment, sweep)
    if not rows:
        raise NotFound(f"sweep {sweep!r} has no trial runs in {uri} (experiment {experiment!r})")
    scored = [r for r in rows if r["status"] == "FINISHED" and metric in r["metrics"]]
    best = max(scored, key=lambda r: r["metrics"][metric], default=None)
    by_status = dict(Counter(r["status"] for r in rows))
    return {"sweep": sweep, "tracking_uri": uri, "experiment": experiment, "trials": len(rows),
            "by_status": by_status, "outcome": outcome(by_status), "metric": metric,
            "best": None if best is None else {"name": best["name"], "value": best["metrics"][metric]}}


def outcome(by_status: dict[str, int]) -> str:
    """unfinished while a trial is still to run (it decides the rest), else failed if any did, else finished."""
    if any(by_status.get(s) for s in UNFINISHED):
        return "unfinished"
    return "finished" if set(by_status) <= {"FINISHED"} else "failed"


def format_runs(rows: list[dict]) -> str:
    header = f"{'run':<34} {'status':<9} {'variant':<14} {'tasks':<13} " + " ".join(f"{m:>18}" for m in SHOWN_METRICS)
    lines = [header]
    for r in rows:
        values = " ".join(f"{r['metrics'][m]:>18.4f}" if m in r["metrics"] else f"{'-':>18}" for m in SHOWN_METRICS)
        lines.append(f"{r['name']:<34} {r['status']:<9} {r['variant'] or '-':<14} {r['tasks'] or '-':<13} {values}")
    return "\n".join(lines)
