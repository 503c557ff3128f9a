"""The attribute judge: a small CNN on pixels with one classification head per domain judge head.

Stage 0 trains two, on real train images, from different seed streams and of different widths: the
scoring judge (`spaces.judge`, `vision.judge_*`) scores generated images (`eval/gen/attr_acc`) and gives the
feature space of the in-domain Fréchet distance (`features`, the penultimate layer); the loss judge
(`spaces.loss_judge`, `vision.loss_judge_*`) only gives the perceptual term of the VQ-VAE and SigLIP-decoder
losses (`feature_maps`). A scorer that was also the loss would grade images shaped to please it. Checkpoint
directories (`vision.judge_path`, `vision.loss_judge_path`): see `unified.vision.checkpoint`, kind "judge"
(constructor args include the heads).
"""

from __future__ import annotations

import hashlib
import weakref

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from unified.vision.checkpoint import load_module, save_module
from unified.vision.features import to_pixels
from unified.vision.fit import fit

POOL_GRID = 4  # pool to a 4x4 grid, not to 1x1: corner positions must survive pooling


class Judge(nn.Module):
    def __init__(self, heads: dict[str, int], width: int = 32, feature_dim: int = 128):
        super().__init__()
        self.init_args = dict(heads=dict(heads), width=width, feature_dim=feature_dim)
        w = width
        chans = [(3, w), (w, 2 * w), (2 * w, 2 * w)]  # stride-2 3x3 convs: 32 px -> 16 -> 8 -> 4
        self.stages = nn.ModuleList(nn.Sequential(nn.Conv2d(i, o, 3, stride=2, padding=1), nn.GELU())
                                    for i, o in chans)
        self.pool = nn.AdaptiveAvgPool2d(POOL_GRID)
        self.neck = nn.Sequential(nn.Linear(2 * w * (POOL_GRID ** 2 + 1) + w + 2 * w, feature_dim), nn.GELU())
        self.heads = nn.ModuleDict({h: nn.Linear(feature_dim, k) for h, k in heads.items()})

    def feature_maps(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """float pixels [B, 3, H, W] -> the output of every conv stage (the perceptual loss compares these)."""
        maps, x = [], pixels
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        maps = self.feature_maps(pixels)
        # where things are (a coarse grid of the last stage) and what is anywhere (a global max of every stage:
        # icon colours, fill levels, hands), so small icons are recognised wherever they sit
        x = maps[-1]  # [B, c, h, w]
        pooled = torch.cat([self.pool(x).flatten(1)] + [m.amax(dim=(2, 3)) for m in maps], dim=1)
        feats = self.neck(pooled)  # [B, feature_dim]
        return feats, {h: head(feats) for h, head in self.heads.items()}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def predict(self, images, batch: int = 512) -> dict[str, torch.LongTensor]:
        """uint8 images [B, H, W, 3] -> {head: class ids LongTensor [B]} on the judge's device."""
        preds: dict[str, list[torch.Tensor]] = {h: [] for h in self.heads}
        for i in range(0, len(images), batch):
            _, logits = self(to_pixels(images[i:i + batch], self.device))
            for h, lg in logits.items():
                preds[h].append(lg.argmax(-1))
        return {h: torch.cat(p) if p else torch.zeros(0, dtype=torch.long, device=self.device)
                for h, p in preds.items()}

    @torch.no_grad()
    def predict_and_features(self, images, batch: int = 512) -> tuple[dict[str, torch.LongTensor], torch.Tensor]:
        """`predict` and `features` of the same images from one forward pass per chunk: an evaluation needs both
        for every generated image, and the two separate calls ran the judge twice. Same chunks, same results."""
        preds: dict[str, list[torch.Tensor]] = {h: [] for h in self.heads}
        feats = []
        for i in range(0, len(images), batch):
            f, logits = self(to_pixels(images[i:i + batch], self.device))
            feats.append(f)
            for h, lg in logits.items():
                preds[h].append(lg.argmax(-1))
        if not feats:
            return self.predict(images, batch), self.features(images, batch)  # the empty shapes, in one place
        return {h: torch.cat(p) for h, p in preds.items()}, torch.cat(feats)

    @torch.no_grad()
    def features(self, images, batch: int = 512) -> torch.Tensor:
        """uint8 images [B, H, W, 3] -> penultimate features [B, feature_dim] (for the Fréchet distance)."""
        out = [self(to_pixels(images[i:i + batch], self.device))[0] for i in range(0, len(images), batch)]
        return torch.cat(out) if out else torch.zeros(0, self.init_args["feature_dim"], device=self.device)


class FixedFeatures:
    """`judge.features` of an image set that recurs (the real test images every eval point's Fréchet distance
    compares against), computed once: the key is the images' bytes and the version counters of the judge's
    parameters, so new images or any in-place change of the weights (training, load_state_dict) recompute."""

    def __init__(self):
        self._judge, self._key, self._feats = None, None, None  # one entry: a trial evaluates one image set

    def __call__(self, judge: Judge, images) -> torch.Tensor:
        pixels = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        key = (hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=16).digest(), pixels.shape,
               tuple(p._version for p in judge.parameters()))
        if self._judge is None or self._judge() is not judge or key != self._key:
            # a weak reference: the memo never keeps a finished trial's judge alive, nor mistakes a new one for it
            self._judge, self._key, self._feats = weakref.ref(judge), key, judge.features(images)
        return self._feats


def accuracy(judge: Judge, images, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per-head accuracy of the judge on images against integer labels."""
    preds = judge.predict(images)
    return {h: (preds[h].cpu() == torch.as_tensor(labels[h])).float().mean().item() for h in judge.heads}


def train_judge(judge: Judge, images, labels: dict[str, torch.Tensor], vision_cfg, generator, device,
                lr: float = 3e-3) -> dict[str, float]:
    """Summed cross-entropy over the heads, with light pixel noise so the judge reads shapes and colours,
    not the exact anti-aliasing of the renderer (decoded images are never pixel-exact)."""
    judge.to(device).train()
    pixels = to_pixels(images)
    targets = {h: torch.as_tensor(labels[h], dtype=torch.long) for h in judge.heads}

    def loss_fn(idx):
        x = pixels[idx].to(device)
        noise = torch.randn(x.shape, generator=generator).to(device)
        _, logits = judge(x + vision_cfg.judge_noise * noise)
        return sum(F.cross_entropy(logits[h], targets[h][idx].to(device)) for h in judge.heads)

    stats = fit(judge.parameters(), loss_fn, len(pixels), vision_cfg.judge_steps, vision_cfg.stage0_batch, lr,
                generator, name="judge")
    judge.eval()
    return stats


def save_judge(judge: Judge, path) -> None:
    save_module(judge, "judge", judge.init_args, path)


def load_judge(path) -> Judge:
    return load_module(path, "judge", Judge)
