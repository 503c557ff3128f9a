"""`--json`: exactly one JSON object on stdout, whatever else the command, or a library it calls, prints.

`stdout_to_stderr()` sends everything else to stderr for the command's duration, at the file-descriptor level
too, so output from C extensions and child processes (Ray's) cannot land between a script and its JSON.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys


@contextlib.contextmanager
def stdout_to_stderr():
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def print_json(obj) -> None:
    """One line of strict JSON: NaN and infinities become null, numpy numbers plain numbers, URIs without
    their passwords."""
    from sweeps.defaults import redact

    print(redact(json.dumps(plain(obj), allow_nan=False)), flush=True)


def plain(obj):
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # a numpy scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)
