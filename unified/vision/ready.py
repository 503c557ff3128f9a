"""Whether a config's stage 0 is complete in a cache, answered without importing torch or transformers.

`stage0.build_spaces` ends by writing `<cache_dir>/stage0/ready-<key>.json`, the key covering the config's
`data` and `vision` sections (everything stage 0 depends on, and more) and `STAGE0_VERSION`; the file lists
the folders the config's stage 0 reads. The sweep driver asks `is_ready` before every launch: importing the
vision stack costs about 7 s, which a warm cache need not pay. A config not seen before, or a folder deleted
since, or one whose files no longer match their manifest (unified/cache.py: truncated, altered), reads as not
ready, and the driver builds (or loads, rebuilding what is damaged) as before.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

from unified import determinism
from unified.cache import damage
from unified.config import flatten
from unified.hashing import stable_hash

STAGE0_VERSION = 1  # bump when a change to unified/vision changes what a cached part would contain


def key_base() -> dict:
    """What every stage-0 key starts with: the code's version and the kernels this process computes with (the
    CPU pin and torch's version, unified/determinism.py), so a cache built on another kernel path is not reused."""
    return {"version": STAGE0_VERSION, **determinism.cache_key()}


def _marker(cfg, cache_dir) -> Path:
    key = stable_hash({**key_base(), "data": flatten(cfg.data), "vision": flatten(cfg.vision)})
    return Path(cache_dir) / "stage0" / f"ready-{key}.json"


def mark_ready(cfg, cache_dir, folders: list[str]) -> None:
    """Record that `folders` (relative to `cache_dir`) hold `cfg`'s complete stage 0."""
    marker, text = _marker(cfg, cache_dir), json.dumps(sorted(folders))
    if marker.is_file() and marker.read_text() == text:
        return  # every trial's load ends here: leave the cache untouched
    tmp = marker.with_name(f".tmp-{marker.name}-{uuid.uuid4().hex}")
    tmp.write_text(text)
    os.replace(tmp, marker)


def is_ready(cfg, cache_dir) -> bool:
    marker = _marker(cfg, cache_dir)
    try:
        folders = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return all((Path(cache_dir) / f).is_dir() and damage(Path(cache_dir) / f) is None for f in folders)
