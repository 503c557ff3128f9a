"""The CPU pin: one kernel path and one thread, so a CPU training gives the same numbers on every x86-64 machine.

Unpinned, torch picks its kernels from the CPU it runs on (ATen's AVX2 or AVX-512 loops, MKL's and oneDNN's
own dispatch) and splits reductions over as many threads as it has: the same smoke training then differs in
its last bits between two machines, and a cpu-preset trial by several points of `eval/und/total` (0.865 on one
machine, 0.915 on another; docs/REPRODUCIBILITY.md). Pinned, every CPU process of a run (the driver building
stage 0, each trial, `unisweep train`) uses the kernels below, measured on torch 2.13 (docs/LOG.md 2026-12-08):

- `ATEN_CPU_CAPABILITY=avx2`: ATen's vectorised loops (every elementwise op, softmax, norms, reductions).
  ATen honours only `default`, `avx2` and `avx512` on x86; AVX2 is the newest that every supported CPU has.
- `MKL_CBWR=AVX2`: MKL's matrix products on its AVX2 branch: reproducible across Intel CPUs with AVX2 or newer,
  and free (a cpu-preset step 62 ms against 66 ms unpinned, one thread, AMD EPYC; BENCHMARKS.md). Only
  `COMPATIBLE` promises the same bits on Intel and AMD alike, at 1.8x the step time; `UNISWEEP_MKL_CBWR=COMPATIBLE`
  asks for it (its caches are keyed apart).
- `ONEDNN_MAX_CPU_ISA=AVX2`: oneDNN's convolutions and GELU (the judges' and VQ-VAE's convs).
- `OMP_NUM_THREADS=1`, `MKL_NUM_THREADS=1`: a sum split over two threads rounds differently from one.

ATen, MKL and oneDNN read these once, at their first call, so the variables must be in the environment before
the process runs its first tensor op: `apply_env()` sets them in `unisweep/cli.py` before anything imports torch,
child processes get them from `pinned_env()` (Ray workers through `sweeps/driver.py::trial_env_vars`), and a
process that imported torch unpinned stays unpinned, and says so in its cache keys (`cache_key`).

`UNISWEEP_CPU_PIN=0` turns the pin off (faster with several threads, numbers machine-dependent). GPU kernels
are not pinned: a `train.device: cuda` run stays machine-dependent whatever this module does.
Imports only the standard library: the sweep driver asks `cache_key` without loading torch.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import platform
import sys

from unified.hashing import stable_hash

SWITCH = "UNISWEEP_CPU_PIN"  # "0" turns the pin off; anything else, or unset, leaves it on
MKL_SWITCH = "UNISWEEP_MKL_CBWR"  # MKL's branch: AVX2 (default, free) or COMPATIBLE (Intel = AMD, 1.8x slower)
CPU_PIN = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "MKL_CBWR": os.environ.get(MKL_SWITCH, "AVX2"),
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
log = logging.getLogger(__name__)


def enabled() -> bool:
    """Whether the user wants the pin (the default)."""
    return os.environ.get(SWITCH, "1").strip() != "0"


def active() -> bool:
    """Whether this process's environment holds the pin. True only where it was set before torch ran (see
    `apply_env`), so it is also whether this process's CPU kernels are the pinned ones."""
    return all(os.environ.get(k) == v for k, v in CPU_PIN.items())


def pinned_env() -> dict[str, str]:
    """The variables a child process needs to run as this one was asked to: the pin, or the switch off."""
    return {SWITCH: "1", MKL_SWITCH: CPU_PIN["MKL_CBWR"], **CPU_PIN} if enabled() else {SWITCH: "0"}


def apply_env() -> bool:
    """Put the pin in this process's environment, unless it is off or comes too late; True when it holds.

    Too late: torch is imported and the environment does not hold the pin already (inherited from a parent).
    Its kernels may have been chosen by then, so setting the variables would only make `cache_key` lie."""
    if not enabled() or active():
        return active()
    if not _has_avx2():
        log.info("this CPU is not x86-64 with AVX2: the CPU pin is left off and its numbers are its own")
        return False
    if "torch" in sys.modules:
        log.warning("the CPU pin comes after torch was imported: this process runs its CPU's own kernels and "
                    "keys its stage-0 caches as unpinned (set %s=0 to silence this)", SWITCH)
        return False
    os.environ.update(CPU_PIN)
    return True


def pin() -> bool:
    """`apply_env`, then torch's own settings: one thread, and deterministic algorithms where torch has a
    choice (warnings, not errors, for an op without one). Call at the start of a process that trains."""
    if not apply_env():
        return False
    import torch

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    return True


def threads(cpus: float, gpu: bool = False) -> int:
    """The compute threads of a trial given `cpus` by Ray: one when pinned, all of them on a GPU trial (its
    numbers are machine-dependent anyway) or when the pin is off."""
    return 1 if active() and not gpu else max(1, int(cpus))


def cache_key() -> dict:
    """What a cache computed in this process depends on beyond its config: the kernel settings in force (the
    pin's variables as this process has them) and torch's version. Part of every stage-0 key
    (unified/vision/ready.py), so a cache built on another kernel path is rebuilt rather than reused."""
    return {"cpu_pin": stable_hash({k: os.environ.get(k) for k in CPU_PIN}), "torch": _torch_version()}


@functools.cache
def _has_avx2() -> bool:
    """ATen takes `avx2` on trust: on a CPU without it the first vectorised op dies of an illegal instruction."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        with open("/proc/cpuinfo") as info:
            return any(line.startswith("flags") and " avx2" in line for line in info)
    except OSError:
        return True  # not Linux: x86-64 machines without AVX2 (before 2013) are not supported


@functools.cache
def _torch_version() -> str:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
