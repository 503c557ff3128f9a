"""Live progress of a sweep on the console, and the table it ends with.

A Tune callback in the driver process: one line when a trial starts reporting, finishes or fails, and at most
every `every_s` seconds in between — done / running / failed, an ETA from the trials finished so far, and the
best value of the sweep's metric. Tune's own table is off (`verbose=0`): it shows Tune's view of resources,
which misses what Ray Train's workers hold (docs/PLATFORM.md §4).
"""

from __future__ import annotations

import math
import time

from ray import tune


class Progress(tune.Callback):
    def __init__(self, total: int, concurrency: int, metric: str = "eval/und/total", mode: str = "max",
                 out=print, every_s: float = 30.0):
        self.total, self.concurrency, self.metric, self.mode = total, concurrency, metric, mode
        self.out, self.every_s = out, every_s
        self.started: dict[str, float] = {}
        self.rows: dict[str, dict] = {}  # trial name -> its latest state; the final table
        self.durations: list[float] = []
        self.t0 = self.last_line = time.monotonic()

    # ---------------------------------------------------------------- Tune's hooks

    def on_trial_start(self, iteration, trials, trial, **info):
        self.started[trial.trial_id] = time.monotonic()
        self.rows[str(trial)] = {"name": str(trial), "status": "RUNNING", "percent": 0, "metrics": {}, "wall_s": 0.0}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        row = self._row(trial)
        row["percent"] = int(result.get("percent", row["percent"]))
        row["metrics"] = {k: v for k, v in result.items() if k.startswith("eval/")}
        if time.monotonic() - self.last_line >= self.every_s:
            self._line()

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._end(trial, "FINISHED" if self._row(trial)["percent"] >= 100 else "STOPPED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._end(trial, "FAILED")

    # ---------------------------------------------------------------- output

    def _row(self, trial) -> dict:
        return self.rows.setdefault(str(trial), {"name": str(trial), "status": "RUNNING", "percent": 0,
                                                 "metrics": {}, "wall_s": 0.0})

    def _end(self, trial, status: str) -> None:
        row = self._row(trial)
        row["status"] = status
        row["wall_s"] = time.monotonic() - self.started.get(trial.trial_id, self.t0)
        if status != "FAILED":
            self.durations.append(row["wall_s"])
        self._line(f"{status:<8} {row['name']}")

    def counts(self) -> dict[str, int]:
        done = sum(r["status"] in ("FINISHED", "STOPPED") for r in self.rows.values())
        failed = sum(r["status"] == "FAILED" for r in self.rows.values())
        running = sum(r["status"] == "RUNNING" for r in self.rows.values())
        return {"done": done, "failed": failed, "running": running}

    def eta_s(self) -> float | None:
        c = self.counts()
        left = self.total - c["done"] - c["failed"]
        if not self.durations:
            return None
        return math.ceil(left / max(1, self.concurrency)) * sum(self.durations) / len(self.durations)

    def best(self) -> tuple[float, str] | None:
        scored = [(r["metrics"][self.metric], r["name"]) for r in self.rows.values() if self.metric in r["metrics"]]
        if not scored:
            return None
        return max(scored) if self.mode == "max" else min(scored)

    def _line(self, event: str = "") -> None:
        self.last_line = time.monotonic()
        c, eta, best = self.counts(), self.eta_s(), self.best()
        parts = [f"[{_clock(self.last_line - self.t0)}] {c['done']}/{self.total} done, {c['running']} running, "
                 f"{c['failed']} failed",
                 "ETA " + ("?" if eta is None else _clock(eta)),
                 f"best {self.metric} " + ("-" if best is None else f"{best[0]:.4f} ({best[1]})")]
        self.out(" | ".join(parts) + (f" | {event}" if event else ""))


def format_table(rows: list[dict], metrics: tuple[str, ...] = ("eval/und/total", "eval/gen/attr_acc")) -> str:
    """The end-of-sweep table: one line per trial that ran in this launch."""
    header = f"{'trial':<40} {'status':<9} {'%':>4} {'wall':>7} " + " ".join(f"{m:>18}" for m in metrics)
    lines = [header]
    for r in sorted(rows, key=lambda r: r["name"]):
        values = " ".join(f"{r['metrics'][m]:>18.4f}" if m in r["metrics"] else f"{'-':>18}" for m in metrics)
        lines.append(f"{r['name']:<40} {r['status']:<9} {r['percent']:>4} {_clock(r['wall_s']):>7} {values}")
    return "\n".join(lines)


def _clock(seconds: float) -> str:
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes}:{s:02d}"
