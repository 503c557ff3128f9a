"""Vision-side modules between the frozen feature spaces and the LLM: adapters and the frozen affine map."""

from __future__ import annotations

import torch
from torch import nn

ADAPTER_KINDS = ("linear", "mlp")


def make_adapter(kind: str, dim_in: int, hidden: int) -> nn.Module:
    """docs/PAPER.md §2: `linear` (one Linear) or `mlp` (Linear-GELU-Linear, LLaVA's mlp2x_gelu)."""
    if kind == "linear":
        return nn.Linear(dim_in, hidden)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(dim_in, hidden), nn.GELU(), nn.Linear(hidden, hidden))
    raise KeyError(f"unknown adapter {kind!r}; valid: {', '.join(ADAPTER_KINDS)}")


class AffineMap(nn.Module):
    """The frozen random invertible map y = x Q S + b that breaks alignment on purpose (docs/PAPER.md §6).

    Q is orthogonal (QR of a uniform random matrix), S diagonal in [1-s, 1+s], b in [-s, s]. Strength 0 is the
    identity (the axis' "off" point); any s > 0 applies the full random rotation, as the paper's notebook does.
    The draws happen for every s, so one generator gives the same Q for every strength of a dataset.
    """

    def __init__(self, dim: int, strength: float, generator: torch.Generator):
        super().__init__()
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"model.affine_strength must be in [0, 1) so that S stays invertible, got {strength}")
        q, _ = torch.linalg.qr(torch.rand(dim, dim, generator=generator))
        scale = 1.0 + strength * (2.0 * torch.rand(dim, generator=generator) - 1.0)
        shift = strength * (2.0 * torch.rand(dim, generator=generator) - 1.0)
        self.strength = strength
        self.register_buffer("q", q if strength > 0 else torch.eye(dim))
        self.register_buffer("scale", scale)
        self.register_buffer("shift", shift)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.strength == 0:
            return x
        return (x @ self.q) * self.scale + self.shift

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        if self.strength == 0:
            return y
        return ((y - self.shift) / self.scale) @ self.q.T  # Q orthogonal: Q^-1 = Q^T
