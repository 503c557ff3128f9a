"""`unisweep plan` of a huge grid: wall time and peak memory of the command, as a user runs it.

    python bench/plan_scale.py                     # 100 x 100 grid cells x 10 seeds = 100,000 trials
    python bench/plan_scale.py --cells 10 --seeds 10

Writes the spec into a temporary folder (`train.lr` x `data.und_samples`, every value a distinct cell), then
times `unisweep plan SPEC` in a fresh process (imports included), its store absent (a sweep not launched yet):
loading and validating the spec resolves every cell once, the plan expands every trial. Prints one JSON line;
targets (planning a huge grid): <= 10 s and <= 300 MB peak RSS for 100,000 trials.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spec_text(cells_per_axis: int, seeds: int, db: Path) -> str:
    lrs = [round(1e-4 * 1.05**i, 10) for i in range(cells_per_axis)]
    und = [1000 + 10 * i for i in range(cells_per_axis)]
    return (f"name: plan_scale\nbase: smartwatch-cpu\nseeds: {list(range(seeds))}\n"
            f"grid:\n  train.lr: {lrs}\n  data.und_samples: {und}\ntracking: {{uri: \"sqlite:///{db}\"}}\n")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--cells", type=int, default=100, help="values per grid axis (two axes)")
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "plan_scale.yaml"
        spec.write_text(spec_text(args.cells, args.seeds, Path(tmp) / "absent.db"))
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "unisweep.cli", "plan", str(spec), "--json"], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
    trials = json.loads(out.stdout)["trials"]
    print(json.dumps({"trials": trials, "wall_s": round(wall, 2), "peak_rss_mb": round(peak_mb),
                      "targets": {"wall_s": 10, "peak_rss_mb": 300},
                      "met": wall <= 10 and peak_mb <= 300}))


if __name__ == "__main__":
    main()
