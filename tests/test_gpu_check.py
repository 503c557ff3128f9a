"""bench/gpu_check.sh on a machine without a GPU: every line of it that does not need one (the GPU check).

The script parses; every python3/torchrun command it runs is read out of its text, its arguments resolve through
bench/train_throughput.py's own parser and unified.config, and it runs here at smoke size with `train.device=auto`
(which falls back to the CPU; the DDP line over gloo, 2 ranks). `train.device=cuda` without a GPU fails at once
with a clear error. The script's own control flow (GPU count, the DDP branch, failed and late steps) runs against
stand-ins for python3, torchrun and nvidia-smi.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unified import config as C

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_check.sh"
BIN = Path(sys.executable).parent  # python3 and torchrun of this environment
PROGRAMS = ("python3", "torchrun", "unisweep")
ENDS = (")", "||", "&&", ";", "|", "&")


def _throughput_module():
    spec = importlib.util.spec_from_file_location("train_throughput", ROOT / "bench" / "train_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TT = _throughput_module()


def script_commands() -> list[list[str]]:
    """Every python3/torchrun/unisweep command in the script, as written (shell variables unexpanded): the words
    from the program to the end of its command (`)` of a `$(...)`, `||`, ...), continuation lines joined."""
    out = []
    for line in SCRIPT.read_text().replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words = list(lexer)
        starts = [i for i, w in enumerate(words) if w in PROGRAMS]
        if starts:
            rest = words[starts[0]:]
            out.append(rest[:next((i for i, w in enumerate(rest) if w in ENDS), len(rest))])
    return out


def throughput_runs() -> list[tuple[int, list[str]]]:
    """(ranks, bench/train_throughput.py's arguments) of each training command in the script."""
    runs = []
    for cmd in script_commands():
        if "bench/train_throughput.py" not in cmd:
            continue
        at = cmd.index("bench/train_throughput.py")
        nproc = [w.split("=", 1)[1] for w in cmd[:at] if w.startswith("--nproc_per_node=")]
        runs.append((int(nproc[0]) if cmd[0] == "torchrun" else 1, cmd[at + 1:]))
    return runs


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1", "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def _local(cmd: list[str], args: list[str]) -> list[str]:
    """A script command with this environment's python3/torchrun and bench/train_throughput.py's arguments."""
    program = {"python3": [sys.executable], "torchrun": [str(BIN / "torchrun")]}[cmd[0]]
    at = cmd.index("bench/train_throughput.py")
    return program + cmd[1:at] + ["bench/train_throughput.py"] + args


def _with(args: list[str], cache_dir, *extra: str, device: str | None = None) -> list[str]:
    """`args` with the cache at `cache_dir`, train.device swapped if given, `extra` flags put first and `extra`
    overrides (key=value) last (argparse takes no positional after a flag that follows the positionals)."""
    args = list(args)
    args[args.index("--cache-dir") + 1] = str(cache_dir)
    if device is not None:
        args = [f"train.device={device}" if a == "train.device=cuda" else a for a in args]
    if "--steps" in extra and "--steps" in args:  # the later one wins: drop the script's
        at = args.index("--steps")
        del args[at:at + 2]
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    return [a for a in extra if a not in overrides] + args + overrides


def test_script_parses():
    result = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_script_commands_are_the_expected_ones():
    cmds = script_commands()
    assert [c[0] for c in cmds] == ["python3", "python3", "python3", "torchrun"], cmds  # new lines: test them too
    assert cmds[0][:2] == ["python3", "-c"] and "torch.cuda.device_count()" in cmds[0][2]
    runs = throughput_runs()
    assert [ranks for ranks, _ in runs] == [1, 1, 2]
    torchrun = cmds[3]
    assert "--standalone" in torchrun  # a free rendezvous port, no fixed 29500


def test_every_run_resolves_to_the_presets_on_cuda():
    """Each training line resolves (keys, values, preset); all train on CUDA; the cpu preset and a larger one."""
    sizes = []
    for _, args in throughput_runs():
        ns = TT.parse_args(args)
        cfg = TT.config(ns)
        assert cfg == C.resolve(C.override(C.preset(ns.preset), dict(a.split("=", 1) for a in ns.overrides)))
        assert ns.preset == "smartwatch-cpu" and not ns.smoke and ns.steps >= 20
        assert ns.cache_dir == "$cache"
        assert cfg.train.device == "cuda"
        sizes.append(cfg.backbone.size)
    assert sizes[0] == C.preset("smartwatch-cpu").backbone.size == "tiny"  # the cpu preset as it is
    assert max(C.BACKBONE_SIZES.index(s) for s in sizes[1:]) > C.BACKBONE_SIZES.index("tiny")


def test_gpu_probe_line_counts_no_gpu_here():
    probe = script_commands()[0]
    result = subprocess.run([sys.executable, *probe[1:]], capture_output=True, text=True, env=_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(torch.cuda.device_count()) == "0"


def test_whole_script_refuses_without_a_gpu():
    """No GPU: one JSON line naming why, exit 2, and no training started."""
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["status"] == "failed" and "no CUDA device" in last["reason"]
    assert "stage0" not in result.stdout + result.stderr


def test_trainer_fallback_and_autocast(smoke_cfg, cache_dir):
    """train.device=auto falls back to the CPU here; the Trainer's autocast is bf16 on CUDA (off on the CPU)."""
    from unified.train import Trainer

    trainer = Trainer(C.override(smoke_cfg, {"train.device": "auto"}), cache_dir)
    assert trainer.device == torch.device("cpu")
    assert next(trainer.model.parameters()).device.type == "cpu"
    assert (trainer.autocast.device, trainer.autocast.fast_dtype) == ("cuda", torch.bfloat16)
    assert not trainer.autocast._enabled
    assert TT.matmul_gflops(trainer.device, n=256, reps=2) > 0


def test_cuda_without_gpu_fails_at_once(tmp_path):
    """The script's own line, `train.device=cuda` kept: a one-line ConfigError before any data or stage 0."""
    cmd = script_commands()[1]
    args = _with(cmd[cmd.index("bench/train_throughput.py") + 1:], tmp_path / "cache", "--smoke", "--steps", "1")
    result = subprocess.run(_local(cmd, args), capture_output=True, text=True, env=_env(), timeout=120, cwd=ROOT)
    assert result.returncode != 0
    assert "ConfigError: train.device=cuda, but torch sees no CUDA device" in result.stderr, result.stderr[-2000:]
    assert "train.device=auto" in result.stderr
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # no pool, no stage 0


# The torchrun line is parsed and resolved above but not run here: on a loaded 2-core machine its standalone
# rendezvous hung once in four tries, past 180 s (a CI run and a rerun beside a Ray test; docs/LOG.md). DDP over
# gloo itself runs in every Ray Train test (tests/test_train_path.py).
@pytest.mark.slow
@pytest.mark.parametrize("index", [0, 1], ids=["cpu-preset", "base"])
def test_script_runs_on_cpu_at_smoke_size(index, cache_dir):
    """The script's single-process training lines with train.device=auto, --smoke and one timed step (the larger
    backbone at a smaller batch): each prints its one JSON line."""
    cmds = [c for c in script_commands() if "bench/train_throughput.py" in c]
    cmd, (ranks, args) = cmds[index], throughput_runs()[index]
    want = TT.config(TT.parse_args(args))
    extra = ["--smoke", "--steps", "1"] + (["train.batch_size=16"] if want.backbone.size != "tiny" else [])
    result = subprocess.run(_local(cmd, _with(args, cache_dir, *extra, device="auto")), capture_output=True,
                            text=True, env=_env(), timeout=180, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    assert len(lines) == 1, result.stdout  # rank 0 alone prints
    out = lines[0]
    assert out["device"] == "cpu" and out["autocast"] is None  # auto fell back to the CPU
    assert out["backbone"] == want.backbone.size and out["variant"] == want.model.variant
    assert (out["world"], out["backend"]) == ((2, "gloo") if ranks == 2 else (1, None))
    assert out["steps"] == 1 and out["samples_per_s"] > 0 and out["gflop_per_step"] > 0
    assert 0 < out["share_of_matmul"] < 10


# ---------------------------------------------------------------- the script's control flow, with stand-ins


FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = "-c" ]; then echo "$FAKE_GPUS"; exit 0; fi
echo "{\\"ran\\": \\"python3 $*\\"}"
case "$*" in *"$FAKE_FAIL"*) exit 3;; esac
"""
FAKE_TORCHRUN = """#!/usr/bin/env bash
echo "{\\"ran\\": \\"torchrun $*\\"}"
"""


def _run_faked(tmp_path, gpus: int, fail: str = "no-such-words", budget: int = 280):
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    for name, text in (("python3", FAKE_PYTHON), ("torchrun", FAKE_TORCHRUN),
                       ("nvidia-smi", "#!/usr/bin/env bash\necho 'Fake GPU, 81559 MiB'\n")):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", "FAKE_GPUS": str(gpus),
           "FAKE_FAIL": fail, "GPU_CHECK_BUDGET_S": str(budget), "UNISWEEP_CACHE": str(tmp_path / "c")}
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    lines = [json.loads(x) for x in result.stdout.splitlines() if x.startswith("{")]
    return result.returncode, lines


def test_script_flow_one_gpu(tmp_path):
    rc, lines = _run_faked(tmp_path, gpus=1)
    assert rc == 0
    ran = [x["ran"] for x in lines if "ran" in x]
    assert len(ran) == 2 and all(r.startswith("python3 bench/train_throughput.py") for r in ran)
    assert all(f"--cache-dir {tmp_path / 'c'}" in r and "train.device=cuda" in r for r in ran)
    assert "backbone.size=base" not in ran[0] and "backbone.size=base" in ran[1]
    assert lines[-1] == {"step": "base-ddp", "status": "skipped", "reason": "one GPU visible; DDP over NCCL needs two"}


def test_script_flow_two_gpus_runs_ddp(tmp_path):
    rc, lines = _run_faked(tmp_path, gpus=2)
    assert rc == 0
    ran = [x["ran"] for x in lines if "ran" in x]
    assert len(ran) == 3 and ran[2].startswith("torchrun --standalone --nproc_per_node=2 bench/train_throughput.py")
    assert not [x for x in lines if "status" in x]


def test_script_flow_no_gpu_and_failures(tmp_path):
    rc, lines = _run_faked(tmp_path, gpus=0)
    assert rc == 2 and not [x for x in lines if "ran" in x]
    rc, lines = _run_faked(tmp_path, gpus=1, fail="backbone.size=base")  # a failing step: the rest still run
    assert rc == 1
    assert {"step": "base", "status": "failed", "rc": 3} in lines
    assert lines[-1]["step"] == "base-ddp"
    rc, lines = _run_faked(tmp_path, gpus=2, budget=5)  # no time left: every step skipped, none started
    assert rc == 1 and not [x for x in lines if "ran" in x]
    assert [x["step"] for x in lines] == ["cpu-preset", "base", "base-ddp"]
    assert all(x["status"] == "skipped" for x in lines)
