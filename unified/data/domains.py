"""The image domains by name: each is a module with a renderer, templates and scorers (docs/INTERFACES.md)."""

from __future__ import annotations

import importlib
import types

# name -> module path; modules are imported on first use so that config.py stays import-light
DOMAINS: dict[str, str] = {
    "smartwatch": "unified.data.smartwatch",
    "faces": "unified.data.faces",
}


def get_domain(name: str) -> types.ModuleType:
    if name not in DOMAINS:
        raise KeyError(f"unknown domain {name!r}; valid: {', '.join(DOMAINS)}")
    return importlib.import_module(DOMAINS[name])
