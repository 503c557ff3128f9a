"""What one trial occupies, and how many fit at once: the resource arithmetic of docs/PLATFORM.md §4.

On 2 CPUs a sweep whose trials ask for more than the machine has does not fail, it hangs (Train's worker
group waits forever), so concurrency is derived here from the spec and the cluster, never guessed.
"""

from __future__ import annotations

import math

from sweeps.spec import SpecError, SweepSpec

TRAIN_DRIVER_CPU = 0.1  # the Tune trial that only drives a TorchTrainer (docs/PLATFORM.md §4: must be > 0)


def uses_ray_train(spec: SweepSpec) -> bool:
    """docs/DESIGN.md §8: several workers, or `execution: train`, go through a TorchTrainer."""
    return spec.resources.workers_per_trial > 1 or spec.resources.execution == "train"


def bundles(spec: SweepSpec) -> list[dict[str, float]]:
    """What one trial occupies, as Ray resource bundles: the trial process, then each Train worker."""
    r = spec.resources
    worker = {"CPU": r.cpus_per_worker, "GPU": r.gpus_per_worker}
    if not uses_ray_train(spec):
        return [worker]  # the trial process trains itself
    return [{"CPU": TRAIN_DRIVER_CPU, "GPU": 0.0}] + [dict(worker) for _ in range(r.workers_per_trial)]


def trial_resources(spec: SweepSpec) -> dict[str, float]:
    return {k: sum(b[k] for b in bundles(spec)) for k in ("CPU", "GPU")}


def max_concurrent(spec: SweepSpec, total_cpus: float, total_gpus: float = 0.0) -> int:
    """docs/PLATFORM.md §4: concurrent trials x per-trial resources <= the cluster's, or Train deadlocks."""
    need = trial_resources(spec)
    fits = [math.floor(total_cpus / need["CPU"] + 1e-9)]
    if need["GPU"] > 0:
        fits.append(math.floor(total_gpus / need["GPU"] + 1e-9))
    n = min(fits)
    if n < 1:
        raise SpecError("resources", f"a trial needs {_fmt_res(need)}; the cluster has "
                                     f"{_fmt_res({'CPU': total_cpus, 'GPU': total_gpus})}")
    return n


def check_fits(spec: SweepSpec, nodes: dict | list[dict]) -> None:
    """Raise if one trial can never be placed: its bundles, packed first-fit onto the nodes, don't fit.

    `nodes` is one resource dict (`ray.cluster_resources()`, a single machine) or one per node. A
    multi-worker Ray Train trial may span nodes (Train's default placement is a soft PACK).
    """
    nodes = [nodes] if isinstance(nodes, dict) else list(nodes)
    if not nodes:
        raise SpecError("resources", "the cluster has no nodes")
    free = [{k: float(n.get(k, 0.0)) for k in ("CPU", "GPU")} for n in nodes]
    for b in sorted(bundles(spec), key=lambda b: (b["GPU"], b["CPU"]), reverse=True):
        node = next((n for n in free if all(n[k] + 1e-9 >= b[k] for k in b)), None)
        if node is None:
            largest = max(nodes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)))
            raise SpecError("resources", f"a trial needs {_fmt_res(trial_resources(spec))} "
                                         f"({_fmt_res(bundles(spec)[-1])} per worker); it cannot be placed on "
                                         f"{len(nodes)} node(s), the largest with {_fmt_res(largest)}")
        for k in b:
            node[k] -= b[k]


def _fmt_res(r: dict) -> str:
    return ", ".join(f"{r.get(k, 0):g} {k}" for k in ("CPU", "GPU"))
