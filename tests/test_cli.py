"""`unisweep train`: clear errors before anything runs, and a smoke run that ends with the metrics JSON."""

import json
import subprocess
import sys

import pytest


def run_cli(*args, cache_dir=None):
    extra = ["--cache-dir", str(cache_dir)] if cache_dir else []
    return subprocess.run([sys.executable, "-m", "unisweep.cli", "train", *extra, *args],
                          capture_output=True, text=True, timeout=600)


def test_unknown_key_is_an_error_naming_the_nearest():
    out = run_cli("--smoke", "model.varaint=vq-vq")
    assert out.returncode == 2
    assert "unknown key 'model.varaint'" in out.stderr and "model.variant" in out.stderr


def test_bad_value_names_the_key_and_type():
    out = run_cli("--smoke", "train.eval_points=few")
    assert out.returncode == 2 and "train.eval_points expects int" in out.stderr
    out = run_cli("--smoke", "model.variant=vqvq")
    assert out.returncode == 2 and "model.variant must be one of" in out.stderr


@pytest.mark.slow
def test_smoke_training_ends_with_metrics_json(cache_dir):
    out = run_cli("--smoke", "model.variant=vq-vq", cache_dir=cache_dir)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert sum(line.startswith("[") for line in lines) == 2  # one progress line per eval point (smoke: 2)
    final = json.loads(lines[-1])
    for key in ("eval/und/total", "eval/gen/attr_acc", "eval/gen/token_acc", "eval/gen/fd", "train/loss"):
        assert key in final
    assert 0.0 <= final["eval/und/total"] <= 1.0
