"""Operating characteristics of seeds until decided (analysis/sequential.py), as the table in docs/SEQUENTIAL.md.

    .venv/bin/python bench/sequential_oc.py              # 4,000 sweeps per row: about 15 s on 2 cores
    .venv/bin/python bench/sequential_oc.py --sweeps 20000

Each row simulates whole sequential sweeps of one comparison (normal per-seed values, schedule 5/5/30, level
0.95, precision 0.04) through the project's own `decision`, corrected (repeated intervals) and naive (the
fixed-n t interval at every look). Monte Carlo standard error of a rate p over N sweeps: sqrt(p (1 − p) / N).
"""

from __future__ import annotations

import argparse
import math
import time

from analysis.sequential import Schedule, simulate

ROWS = [(0.0, 0.08), (0.05, 0.06), (0.05, 0.08), (0.05, 0.11)]  # (effect, per-seed sd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweeps", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    schedule, started = Schedule(5, 5, 30), time.perf_counter()
    print(f"schedule {schedule.looks}, level 0.95, precision 0.04, {args.sweeps} sweeps per row, seed {args.seed}")
    print("| effect | sd | rule | decided (false when effect 0) | reproduced | contradicted | mean seeds "
          "| stopped decided / precise / max |")
    print("|---|---|---|---|---|---|---|---|")
    for effect, sd in ROWS:
        for naive in (False, True):
            oc = simulate(args.sweeps, effect, sd, schedule, naive=naive, seed=args.seed)
            se = math.sqrt(oc.false_decision * (1 - oc.false_decision) / oc.sweeps)
            stops = " / ".join(f"{oc.stops[s]:.3f}" for s in ("decided", "precise", "max"))
            print(f"| {effect:.2f} | {sd:.2f} | {'naive' if naive else 'repeated CI'} | {oc.false_decision:.3f} "
                  f"± {se:.3f} | {oc.power:.3f} | {oc.contradicted:.3f} | {oc.mean_seeds:.1f} | {stops} |")
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
