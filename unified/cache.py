"""Cache folders built once and shared: by concurrent trials on one machine, or by nodes on shared storage.

`cached_dir(root, name, build)` returns `root/name`, building it first when it is missing or damaged:
- one builder at a time: a file lock `root/.name.lock` (filelock; fcntl locks, so a shared file system must
  support them, as NFSv4 and Lustre do). Builders that wait then load what the first one built.
- the build writes into a temporary sibling that is renamed into place, so a reader never sees half a folder;
  the leftovers of a killed build (`.tmp-<name>-*`) are removed by the next builder that holds the lock.
- the folder's `MANIFEST.json` lists every file's size and SHA-256; `damage(folder)` compares them, so a
  truncated or altered file is found before it fails a trial, and the folder is rebuilt. A folder written
  before manifests existed has none and is trusted as it is.
Imports only the standard library and filelock: the sweep driver checks caches without loading torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock, Timeout

MANIFEST = "MANIFEST.json"
log = logging.getLogger(__name__)


def cached_dir(root: Path | str, name: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """Return (folder, built_now); `build(tmp)` fills an empty temporary folder with the part's files."""
    root = Path(root)
    final = root / name
    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(root / f".{name}.lock"))
    if final.is_dir() and damage(final) is None:
        _sweep_leftovers(root, name, lock)
        return final, False
    with lock:
        problem = damage(final) if final.is_dir() else "missing"
        if problem is None:  # another builder finished it while this one waited
            return final, False
        if problem != "missing":
            log.warning("cache folder %s is damaged (%s): rebuilding it", final, problem)
            shutil.rmtree(final)
        _remove_leftovers(root, name)
        tmp = root / f".tmp-{name}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            build(tmp)
            write_manifest(tmp)
            os.replace(tmp, final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def write_manifest(folder: Path) -> None:
    entries = {p.relative_to(folder).as_posix(): [p.stat().st_size, _sha256(p)]
               for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps(entries, indent=1))


def damage(folder: Path) -> str | None:
    """None when every file the manifest lists is there with its size and hash (or there is no manifest);
    otherwise what is wrong, naming the first bad file."""
    try:
        entries = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return None if folder.is_dir() else "missing"
    except ValueError:
        return f"unreadable {MANIFEST}"
    for rel, (size, digest) in entries.items():
        path = folder / rel
        if not path.is_file():
            return f"{rel} is missing"
        if path.stat().st_size != size:
            return f"{rel} has {path.stat().st_size} bytes, the manifest says {size}"
        if _sha256(path) != digest:
            return f"{rel} does not match its SHA-256 in the manifest"
    return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sweep_leftovers(root: Path, name: str, lock: FileLock) -> None:
    """Remove a killed build's leftovers, but only when no builder is at work (the lock is free)."""
    if not any(root.glob(f".tmp-{name}-*")):
        return
    try:
        with lock.acquire(timeout=0):
            _remove_leftovers(root, name)
    except Timeout:
        pass  # a build is running; its own temporary folder is not a leftover


def _remove_leftovers(root: Path, name: str) -> None:
    for stale in root.glob(f".tmp-{name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
