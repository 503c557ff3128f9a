"""A small pixel decoder from a grid of visual tokens to an image.

Two users: the SigLIP-feature visualiser (like MetaMorph's, trained with MSE on frozen SigLIP patch features,
so SigLIP-output generations can be seen and judged) and the VQ-VAE's decoder (on quantized latents).
Checkpoint directory (`vision.decoder_path`): see `unified.vision.checkpoint`, kind "decoder".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from unified.vision.checkpoint import load_module, save_module
from unified.vision.features import to_pixels
from unified.vision.fit import fit


class MixerBlock(nn.Module):
    """An MLP-Mixer block (Tolstikhin et al. 2021): mix across tokens, then across channels. Token mixing is
    position-specific, which suits fixed layouts (corners, dial); everything is a GEMM, cheap on a CPU."""

    def __init__(self, n_tokens: int, width: int, mix_tokens: bool = True):
        super().__init__()
        self.norm_tokens, self.norm_channels = nn.LayerNorm(width), nn.LayerNorm(width)
        self.tokens = (nn.Sequential(nn.Linear(n_tokens, n_tokens), nn.GELU(), nn.Linear(n_tokens, n_tokens))
                       if mix_tokens else None)
        self.channels = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, n, width]
        if self.tokens is not None:
            x = x + self.tokens(self.norm_tokens(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channels(self.norm_channels(x))


def mixer(in_dim: int, n_tokens: int, width: int, blocks: int, out_dim: int, mix_tokens: bool = True) -> nn.Sequential:
    """[B, n, in_dim] -> [B, n, out_dim] through `blocks` Mixer blocks of `width` channels. Without token mixing
    every output token is a function of its own input token only (a per-patch MLP)."""
    return nn.Sequential(nn.Linear(in_dim, width), *[MixerBlock(n_tokens, width, mix_tokens) for _ in range(blocks)],
                         nn.LayerNorm(width), nn.Linear(width, out_dim))


def patchify(pixels: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, 3, H, W] -> [B, n, patch*patch*3] in row-major patch order (as a ViT patch embedding sees them)."""
    b, c, h, w = pixels.shape
    x = pixels.view(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def unpatchify(tokens: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, n, patch*patch*3] -> [B, 3, H, W], the inverse of `patchify`."""
    b, n, _ = tokens.shape
    g = int(round(n ** 0.5))
    x = tokens.view(b, g, g, patch, patch, 3)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, 3, g * patch, g * patch)


class PixelDecoder(nn.Module):
    """tokens [B, n, in_dim] -> float pixels [B, 3, H, W] in about [-1, 1]: a Mixer over the token grid, then
    each token's own patch of pixels by a linear map. All dense layers, so a CPU-scale stage 0 takes minutes."""

    def __init__(self, in_dim: int, n_tokens: int, patch: int, width: int = 128, blocks: int = 2):
        super().__init__()
        self.init_args = dict(in_dim=in_dim, n_tokens=n_tokens, patch=patch, width=width, blocks=blocks)
        self.patch = patch
        self.net = mixer(in_dim, n_tokens, width, blocks, patch * patch * 3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return unpatchify(self.net(tokens), self.patch)  # [B, 3, H, W]


def reconstruction_loss(recon: torch.Tensor, target: torch.Tensor, judge=None, judge_weight: float = 0.0):
    """Pixel MSE, plus (optionally) a perceptual term: MSE between the judge's feature maps of the
    reconstruction and of the real image, so that what the judge looks at (thin hands, fill levels) survives."""
    loss = F.mse_loss(recon, target)
    if judge is not None and judge_weight > 0:
        with torch.no_grad():
            real = judge.feature_maps(target)
        fake = judge.feature_maps(recon)
        loss = loss + judge_weight * sum(F.mse_loss(a, b) for a, b in zip(fake, real, strict=True)) / len(real)
    return loss


def train_decoder(decoder: PixelDecoder, features: torch.Tensor, images, vision_cfg, generator, device,
                  judge=None, lr: float = 2e-3) -> dict[str, float]:
    """Fit the decoder to map frozen features [N, n, d] back to their images (uint8 [N, H, W, 3])."""
    decoder.to(device).train()
    pixels = to_pixels(images)

    def loss_fn(idx):
        recon = decoder(features[idx].to(device))
        return reconstruction_loss(recon, pixels[idx].to(device), judge, vision_cfg.judge_loss)

    stats = fit(decoder.parameters(), loss_fn, len(pixels), vision_cfg.decoder_steps, vision_cfg.stage0_batch, lr,
                generator, name="siglip decoder")
    decoder.eval()
    return stats


def save_decoder(decoder: PixelDecoder, path) -> None:
    save_module(decoder, "decoder", decoder.init_args, path)


def load_decoder(path) -> PixelDecoder:
    return load_module(path, "decoder", PixelDecoder)
