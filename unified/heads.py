"""Output heads: from an LLM hidden state to the next image token, one class per output space (docs/PAPER.md §2).

Both share one interface so the model never branches on the space:
- `teacher(batch) -> (fed, target)`: what the generation adapter reads at the image slots, and the loss target;
- `loss(hidden, target)`: the image loss of hidden states that predict `target`;
- `step(hidden) -> (fed, output)`: at inference, the predicted token to feed back and what the caller gets.
The generation-side affine map (identity when off) distorts every continuous feature the LLM sees or regresses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unified.adapters import AffineMap

FEATURE_LOSSES = ("cos", "mse")


class FeatureHead(nn.Module):
    """SigLIP output: regress the (distorted) patch feature, with the cosine loss 1 - cos (the paper's) or the
    squared error (`model.feature_loss`).

    The cosine loss fixes only the direction, so at inference its prediction is set to `target_norm`, the mean
    norm of the training targets, before it is fed back and decoded: the decoder and the generation adapter
    only ever saw features of that size. The squared error predicts the conditional mean, scale included."""

    def __init__(self, hidden: int, dim: int, affine: AffineMap, target_norm: float = 1.0, loss: str = "cos"):
        super().__init__()
        if loss not in FEATURE_LOSSES:
            raise ValueError(f"unknown feature loss {loss!r}; valid: {', '.join(FEATURE_LOSSES)}")
        self.proj = nn.Linear(hidden, dim)
        self.affine = affine
        self.loss_kind = loss
        self.register_buffer("target_norm", torch.tensor(float(target_norm)))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden)  # [..., dim], in the distorted space

    def teacher(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.affine(batch["image_feats"].float())  # [b, n_out, dim]
        return feats, feats

    def loss(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.loss_kind == "mse":
            return F.mse_loss(self(hidden), target)
        return (1.0 - F.cosine_similarity(self(hidden), target, dim=-1)).mean()

    def step(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pred = self(hidden)
        if self.loss_kind == "cos":
            pred = F.normalize(pred, dim=-1) * self.target_norm
        return pred, self.affine.inverse(pred)  # feed back as predicted; hand out in the true SigLIP space


class CodeHead(nn.Module):
    """VQ output: logits over the codebook with cross-entropy; the chosen code's vector is fed back."""

    def __init__(self, hidden: int, codebook: torch.Tensor, affine: AffineMap):
        super().__init__()
        self.proj = nn.Linear(hidden, codebook.shape[0])
        self.register_buffer("codebook", codebook.detach().float().clone())  # [K, dim], frozen
        self.affine = affine

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.proj(hidden)  # [..., K]

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.affine(self.codebook[codes])  # [..., dim]

    def teacher(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        codes = batch["image_codes"].long()  # [b, n_out]; caches may store narrower ints
        return self.embed(codes), codes

    def loss(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self(hidden).flatten(0, -2), target.flatten())

    def step(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        codes = self(hidden).argmax(-1)
        return self.embed(codes), codes
