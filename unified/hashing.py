"""`stable_hash`: the short content hash behind every cache key and cell identity.

Its own module, importing only the standard library, so that config.py and the data package can both use it
without importing each other (dataset.py once took it from config.py, which imports the data domains).
"""

from __future__ import annotations

import hashlib
import json


def stable_hash(obj, length: int = 12) -> str:
    """A hash of plain data that ignores dict key order."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]
