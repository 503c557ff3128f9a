"""The checkpoint-directory format of our non-transformers stage-0 models (VQ-VAE, pixel decoder, judge).

A directory holds `config.json` — `{"kind": <"vq" | "decoder" | "judge">, "format": 1, ...constructor
arguments}` — and `model.safetensors`, the module's `state_dict` (tensors only). `load_module` checks the kind,
rebuilds the module from the constructor arguments and loads the weights strictly, so a directory written by
the matching `save_*` function (or converted from another codebase into the same names) is all a paper-scale
run needs. SigLIP uses transformers' own `save_pretrained` format instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

FORMAT = 1


def save_module(module: torch.nn.Module, kind: str, init_args: dict, path) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps({"kind": kind, "format": FORMAT, **init_args}, indent=2))
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(path / "model.safetensors"))


def load_module(path, kind: str, build: Callable[..., torch.nn.Module]) -> torch.nn.Module:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a {kind} checkpoint directory: no config.json")
    meta = json.loads((path / "config.json").read_text())
    if meta.pop("kind", None) != kind:
        raise ValueError(f"{path} holds a {meta.get('kind')!r} checkpoint, expected {kind!r}")
    meta.pop("format", None)
    module = build(**meta)
    module.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    return module.eval()
