"""Pixels <-> model tensors, and batched encoding of a whole image set with a frozen encoder."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def to_pixels(images, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 [B, H, W, 3] (numpy or torch) -> float [B, 3, H, W] in [-1, 1], SigLIP's own normalisation
    (mean 0.5, std 0.5), so one convention serves our models and a pretrained SigLIP checkpoint."""
    # torch.tensor copies: the pool's arrays are read-only views of Arrow memory
    x = images if isinstance(images, torch.Tensor) else torch.tensor(np.asarray(images))
    x = x.to(device) if device is not None else x
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)  # [B, 3, H, W]


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3]."""
    return x.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@torch.no_grad()
def encode_all(encode: Callable[[torch.Tensor], torch.Tensor | tuple], images, device, batch: int = 256):
    """Run `encode(pixels)` over uint8 images in batches; concatenates each output on the CPU."""
    outs = []
    for i in range(0, len(images), batch):
        out = encode(to_pixels(images[i:i + batch], device))
        outs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else (out.cpu(),))
    cat = tuple(torch.cat(parts) for parts in zip(*outs, strict=True))
    return cat if len(cat) > 1 else cat[0]


def pick_device(name: str = "auto") -> torch.device:
    """`train.device`: auto is cuda when torch sees a GPU, else the CPU. An explicit cuda without a GPU is a
    one-line error at once, not a failure minutes into stage 0 or training."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from unified.config import ConfigError

        raise ConfigError(f"train.device={name}, but torch sees no CUDA device; use train.device=auto to fall back "
                          "to the CPU, or train.device=cpu")
    return device


class Whitening:
    """A fixed PCA whitening of a feature space, fitted on the train features: x -> (x - mean) W.

    Our small caption-trained SigLIP gives ill-conditioned patch features (the top direction carries about a
    quarter of the variance): a linear probe reads the weather at the icon's token perfectly, yet a small LLM
    behind an adapter did not learn to in 750 steps; whitened, it reads it at 0.99 (docs/LOG.md, 2026-11-27).
    The map is invertible, so the space loses nothing; `inverse` takes model outputs back to the decoder's space.
    """

    def __init__(self, train: torch.Tensor, eps: float = 1e-4):
        flat = train.flatten(0, -2).double()  # [N * n, d]
        self.mean = flat.mean(0)
        eigval, eigvec = torch.linalg.eigh(torch.cov((flat - self.mean).T))
        scale = eigval.clamp(min=eps * eigval.max()).sqrt()
        self.w = eigvec / scale  # [d, d]
        self.w_inv = (eigvec * scale).T  # [d, d]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.double() - self.mean) @ self.w).to(x.dtype)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return (x.double() @ self.w_inv.to(x.device) + self.mean.to(x.device)).to(x.dtype)
