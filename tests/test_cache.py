"""Shared cache folders (unified/cache.py): built once under a lock, checked against their manifest, cleaned up
after killed builds. Real processes race on one folder; real files are truncated."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from unified.cache import MANIFEST, cached_dir, damage


def _write(payload: bytes):
    def build(tmp: Path) -> None:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "weights.bin").write_bytes(payload)
        (tmp / "meta.json").write_text("{}")
    return build


def test_built_once_then_loaded(tmp_path):
    folder, built = cached_dir(tmp_path, "part-1", _write(b"x" * 1000))
    assert built and (folder / MANIFEST).is_file() and damage(folder) is None
    again, built = cached_dir(tmp_path, "part-1", _write(b"other"))
    assert (again, built) == (folder, False)
    assert (folder / "sub" / "weights.bin").read_bytes() == b"x" * 1000


@pytest.mark.parametrize("harm", ["truncate", "flip", "delete"])
def test_a_damaged_folder_is_found_and_rebuilt(tmp_path, harm):
    folder, _ = cached_dir(tmp_path, "part", _write(b"abc" * 500))
    weights = folder / "sub" / "weights.bin"
    if harm == "truncate":
        weights.write_bytes(weights.read_bytes()[:-10])
    elif harm == "flip":
        weights.write_bytes(b"abd" + weights.read_bytes()[3:])  # same size, other content
    else:
        weights.unlink()
    assert "sub/weights.bin" in damage(folder)
    folder, built = cached_dir(tmp_path, "part", _write(b"abc" * 500))
    assert built and damage(folder) is None and weights.read_bytes() == b"abc" * 500


def test_a_folder_without_manifest_is_trusted(tmp_path):
    """Caches written before manifests existed stay valid: nothing to check them against."""
    (tmp_path / "old" / "sub").mkdir(parents=True)
    (tmp_path / "old" / "sub" / "weights.bin").write_bytes(b"legacy")
    folder, built = cached_dir(tmp_path, "old", _write(b"new"))
    assert not built and (folder / "sub" / "weights.bin").read_bytes() == b"legacy"


def test_a_failed_build_leaves_nothing_and_a_killed_ones_leftovers_are_removed(tmp_path):
    def broken(tmp: Path) -> None:
        (tmp / "half.bin").write_bytes(b"half")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cached_dir(tmp_path, "part", broken)
    assert not (tmp_path / "part").exists() and not list(tmp_path.glob(".tmp-*"))
    # a SIGKILLed builder leaves its temporary folder; the next call (build or load) removes it
    (tmp_path / ".tmp-part-deadbeef").mkdir()
    (tmp_path / ".tmp-part-deadbeef" / "half.bin").write_bytes(b"half")
    cached_dir(tmp_path, "part", _write(b"ok"))
    assert not list(tmp_path.glob(".tmp-part-*"))
    (tmp_path / ".tmp-part-cafe").mkdir()
    assert cached_dir(tmp_path, "part", _write(b"ok"))[1] is False
    assert not list(tmp_path.glob(".tmp-part-*"))


def _race(root: str, log: str, start: float) -> None:
    def slow_build(tmp: Path) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(1.0)  # long enough that every racer arrives while the first one builds
        (tmp / "weights.bin").write_bytes(b"w" * 4096)

    time.sleep(max(0.0, start - time.time()))
    folder, _ = cached_dir(Path(root), "shared-part", slow_build)
    assert (folder / "weights.bin").read_bytes() == b"w" * 4096


def test_racing_processes_build_once_and_all_load(tmp_path):
    log = tmp_path / "builds.log"
    ctx = mp.get_context("spawn")
    start = time.time() + 3.0  # after every process has imported
    procs = [ctx.Process(target=_race, args=(str(tmp_path / "cache"), str(log), start)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert len(log.read_text().split()) == 1  # one builder; the other three waited and loaded
    assert damage(tmp_path / "cache" / "shared-part") is None
