"""The CPU pin (unified/determinism.py): the same numbers on two kernel paths, and stage-0 keys that record it.

Two kernel paths of this machine stand in for two machines: "older" is ATen's plain C++ loops, oneDNN's SSE4.1
code and MKL's own dispatch; "newer" is AVX2 everywhere and MKL's COMPATIBLE branch. Unpinned, a smoke training
differs between them in its last bits (measured: train/loss/und by 1e-6, eval/gen/fd by 7e-4, eval/gen/feat_cos
by 1e-7); pinned, every final metric is the same to the bit. ATEN_CPU_CAPABILITY, MKL_CBWR and
ONEDNN_MAX_CPU_ISA each differ between the two paths, so dropping any of them from the pin fails the test.
Threads stay at one on both: two threads on two shared cores made a run five times slower, and `pin()` sets
one thread on its own anyway.
Costs: the training test about 60 s of CPU (4 subprocesses of about 8 s of imports and 6 s of stage 0 at a
thirtieth of the smoke steps and training); the others about 3 s together.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from unified import determinism
from unified.vision import ready

OLDER = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "AUTO", "ONEDNN_MAX_CPU_ISA": "SSE41",
         "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
NEWER = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2",
         "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# smoke, with stage 0's parts trained for a thirtieth of their smoke steps: the kernels differ from the first op
SMALL = ["vision.siglip_steps=5", "vision.vq_steps=20", "vision.decoder_steps=5", "vision.judge_steps=20"]


def _train(path: dict, pinned: bool, cache: Path) -> dict:
    """`unisweep train --smoke` in a fresh process on kernel path `path`: its final metrics but timings."""
    env = {k: v for k, v in os.environ.items() if k not in determinism.CPU_PIN and k != determinism.SWITCH}
    env.update(path, **{determinism.SWITCH: "1" if pinned else "0"})
    out = subprocess.run([sys.executable, "-m", "unisweep.cli", "train", "--smoke", "--cache-dir", str(cache), *SMALL],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    final = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: v for k, v in final.items() if not k.startswith("time/")}


def _stage0_folders(cache: Path) -> set[str]:
    return {p.name for p in (cache / "stage0").iterdir() if not p.name.startswith(".")}


@pytest.mark.slow
def test_pinned_training_is_the_same_on_two_kernel_paths_and_unpinned_is_not(tmp_path):
    runs = {(name, pinned): _train(path, pinned, tmp_path / f"{name}-{pinned}")
            for name, path in (("older", OLDER), ("newer", NEWER)) for pinned in (True, False)}
    assert runs[("older", True)] == runs[("newer", True)]
    differ = {k for k, v in runs[("older", False)].items() if v != runs[("newer", False)][k]}
    assert differ, "unpinned, the two kernel paths gave the same metrics: the test no longer tells pinned apart"
    # the stage-0 caches say which kernels built them: pinned ones agree, unpinned ones each have their own keys
    folders = {run: _stage0_folders(tmp_path / f"{run[0]}-{run[1]}") for run in runs}
    assert folders[("older", True)] == folders[("newer", True)]
    assert folders[("older", False)].isdisjoint(folders[("newer", False)])
    assert folders[("older", False)].isdisjoint(folders[("older", True)])


def _env(monkeypatch, values: dict) -> None:
    for k in determinism.CPU_PIN:
        monkeypatch.delenv(k, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)


def test_a_stage0_built_under_another_pin_is_not_ready(monkeypatch, tmp_path, smoke_cfg):
    _env(monkeypatch, determinism.CPU_PIN)
    pinned_key = ready.key_base()
    (tmp_path / "stage0").mkdir()  # build_spaces has made it by the time it marks a stage 0 ready
    ready.mark_ready(smoke_cfg, tmp_path, [])
    assert ready.is_ready(smoke_cfg, tmp_path)
    _env(monkeypatch, OLDER)
    assert ready.key_base() != pinned_key and ready.key_base()["torch"] == pinned_key["torch"]
    assert not ready.is_ready(smoke_cfg, tmp_path)
    _env(monkeypatch, {})  # unpinned: nothing set, each library's own choice
    assert not ready.is_ready(smoke_cfg, tmp_path)
    _env(monkeypatch, determinism.CPU_PIN)
    assert ready.is_ready(smoke_cfg, tmp_path)


def test_the_switch_decides_what_children_get(monkeypatch):
    from sweeps.driver import trial_env_vars

    monkeypatch.delenv(determinism.SWITCH, raising=False)
    assert determinism.enabled()
    assert {k: trial_env_vars()[k] for k in determinism.CPU_PIN} == determinism.CPU_PIN
    monkeypatch.setenv(determinism.SWITCH, "0")
    assert not determinism.enabled()
    env = trial_env_vars()
    assert env[determinism.SWITCH] == "0" and not set(determinism.CPU_PIN) & set(env)


def test_a_pin_after_torch_is_refused_and_keyed_as_unpinned():
    """torch imported first: its kernels may be chosen already, so the process keeps them and keys them so."""
    env = {k: v for k, v in os.environ.items() if k not in determinism.CPU_PIN and k != determinism.SWITCH}
    code = ("import torch; from unified import determinism as d; import json; "
            "print(json.dumps([d.apply_env(), d.active(), d.cache_key()]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    applied, active, key = json.loads(out.stdout)
    assert (applied, active) == (False, False)
    assert "after torch was imported" in out.stderr
    pinned = {**env, **determinism.CPU_PIN}
    code = "from unified import determinism as d; import json; print(json.dumps(d.cache_key()))"
    assert key != json.loads(subprocess.run([sys.executable, "-c", code], env=pinned, capture_output=True,
                                            text=True, timeout=60).stdout)


def test_threads_are_one_when_pinned_unless_on_a_gpu(monkeypatch):
    _env(monkeypatch, determinism.CPU_PIN)
    assert determinism.threads(4) == 1 and determinism.threads(4, gpu=True) == 4
    _env(monkeypatch, {})
    assert determinism.threads(4) == 4 and determinism.threads(0.5) == 1
