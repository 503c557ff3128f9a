"""A small VQ-VAE tokenizer: an encoder with one latent per patch (downsampling by vision.patch), a codebook
K x vq_dim and a decoder.

Standing in for LlamaGen's VQ-16 (docs/PAPER.md §2: codebook 16,384, code dim 8, downsample 16). The codebook is
learned by EMA k-means (VQ-VAE-2), initialised from encoder outputs, with dead codes restarted on random
encoder outputs, so that the codes get used; the encoder trains through the straight-through estimator with
the commitment loss. As understanding input the paper feeds the continuous quantized latents z_q (8-d), as
generation target the code ids. Checkpoint directory (`vision.vq_path`): see `unified.vision.checkpoint`,
kind "vq"; the codebook is the `quantizer.codebook` tensor of the state dict.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unified.vision.checkpoint import load_module, save_module
from unified.vision.decoder import PixelDecoder, mixer, patchify, reconstruction_loss
from unified.vision.features import to_pixels
from unified.vision.fit import fit

COMMITMENT = 0.25  # beta of the VQ-VAE paper (van den Oord et al. 2017), also LlamaGen's
EMA_DECAY = 0.99
DEAD_FRACTION = 0.03  # a code whose EMA usage falls under 3 % of the mean usage is restarted


class Quantizer(nn.Module):
    def __init__(self, codebook_size: int, dim: int):
        super().__init__()
        self.register_buffer("codebook", torch.zeros(codebook_size, dim))
        self.register_buffer("usage", torch.zeros(codebook_size))  # EMA of assignments per step
        self.register_buffer("code_sum", torch.zeros(codebook_size, dim))  # EMA of the assigned vectors' sum
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """z [M, d] -> code ids [M] (squared Euclidean distance)."""
        dist = z.pow(2).sum(1, keepdim=True) - 2 * z @ self.codebook.T + self.codebook.pow(2).sum(1)  # [M, K]
        return dist.argmin(1)

    @torch.no_grad()
    def ema_update(self, z: torch.Tensor, ids: torch.Tensor, generator: torch.Generator) -> None:
        k = len(self.codebook)
        if not self.ready:  # initialise on data: K encoder outputs of the first batch
            self.codebook.copy_(self._sample(z, k, generator))
            self.code_sum.copy_(self.codebook)
            self.usage.fill_(1.0)
            self.ready.fill_(True)
            return
        counts = torch.bincount(ids, minlength=k).to(z.dtype)
        sums = torch.zeros_like(self.code_sum).index_add_(0, ids, z)
        self.usage.mul_(EMA_DECAY).add_(counts, alpha=1 - EMA_DECAY)
        self.code_sum.mul_(EMA_DECAY).add_(sums, alpha=1 - EMA_DECAY)
        n = self.usage.sum()
        smoothed = (self.usage + 1e-5) / (n + k * 1e-5) * n  # Laplace smoothing keeps empty codes finite
        self.codebook.copy_(self.code_sum / smoothed[:, None])
        dead = self.usage < DEAD_FRACTION * len(z) / k
        if dead.any():
            fresh = self._sample(z, int(dead.sum()), generator)
            self.codebook[dead] = fresh
            self.code_sum[dead] = fresh
            self.usage[dead] = 1.0

    @staticmethod
    def _sample(z: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(z), (n,), generator=generator).to(z.device)
        return z[idx] + 1e-3 * z.std() * torch.randn(n, z.shape[1], generator=generator).to(z.device)


class VQVAE(nn.Module):
    """Patch pixels -> encoder -> dim-d latent per patch -> nearest code -> Mixer decoder -> pixels.
    One token per patch x patch pixels, as a conv encoder downsampling by `patch` gives.

    `local=True` (vision.vq_encoder "local"): the encoder sees one patch at a time, so each code describes its
    own region, as a conv encoder's codes do (LlamaGen). With token mixing ("mixer") every code depends on the
    whole image, the never-named face colour included, and no code is predictable from a prompt."""

    def __init__(self, resolution: int, patch: int, codebook_size: int, dim: int, width: int = 128,
                 blocks: int = 2, local: bool = False):
        super().__init__()
        self.init_args = dict(resolution=resolution, patch=patch, codebook_size=codebook_size, dim=dim,
                              width=width, blocks=blocks, local=local)
        self.patch = patch
        n_tokens = (resolution // patch) ** 2
        self.encoder = mixer(patch * patch * 3, n_tokens, width, blocks, dim, mix_tokens=not local)
        self.quantizer = Quantizer(codebook_size, dim)
        self.decoder = PixelDecoder(dim, n_tokens, patch, width=width, blocks=blocks)

    def latents(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encoder(patchify(pixels, self.patch))  # [B, n, dim]

    def encode(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float pixels [B, 3, H, W] -> (quantized latents z_q [B, n, dim], code ids [B, n])."""
        z = self.latents(pixels)  # [B, n, dim]
        ids = self.quantizer.nearest(z.reshape(-1, z.shape[-1])).view(z.shape[:2])  # [B, n]
        return self.quantizer.codebook[ids], ids

    def decode_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """code ids [B, n] -> float pixels [B, 3, H, W]."""
        return self.decoder(self.quantizer.codebook[ids])

    def training_loss(self, pixels: torch.Tensor, generator: torch.Generator, judge=None,
                      judge_weight: float = 0.0) -> torch.Tensor:
        z = self.latents(pixels)  # [B, n, dim]
        flat = z.reshape(-1, z.shape[-1])  # [B*n, dim]
        ids = self.quantizer.nearest(flat.detach())
        self.quantizer.ema_update(flat.detach(), ids, generator)
        zq = self.quantizer.codebook[ids].view_as(z)
        commit = F.mse_loss(z, zq.detach())
        zq = z + (zq - z).detach()  # straight-through: decoder gradients reach the encoder
        return reconstruction_loss(self.decoder(zq), pixels, judge, judge_weight) + COMMITMENT * commit


def train_vq(vq: VQVAE, images, vision_cfg, generator, device, judge=None, lr: float = 2e-3) -> dict[str, float]:
    vq.to(device).train()
    pixels = to_pixels(images)
    stats = fit(vq.parameters(), lambda idx: vq.training_loss(pixels[idx].to(device), generator, judge,
                                                              vision_cfg.judge_loss),
                len(pixels), vision_cfg.vq_steps, vision_cfg.stage0_batch, lr, generator, name="vq-vae")
    vq.eval()
    return stats


def save_vq(vq: VQVAE, path) -> None:
    save_module(vq, "vq", vq.init_args, path)


def load_vq(path) -> VQVAE:
    return load_module(path, "vq", VQVAE)
