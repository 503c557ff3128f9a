"""Our small SigLIP: transformers' `SiglipModel` from a config, trained with the sigmoid image-text loss.

Pretrained SigLIP weights cannot be downloaded here, so stage 0 trains one on captions that mention every
attribute (`pool.full_captions`), standing in for what a pretrained SigLIP knows about images. At paper scale
`vision.siglip_path` names a local `save_pretrained` directory of a `SiglipModel` (e.g. a copy of
google/siglip-base-patch16-224), loaded with `from_pretrained(path, local_files_only=True)`.

Features follow the paper (docs/PAPER.md §2): the vision tower's patch tokens from the second-to-last layer, no
CLS (SigLIP has none), `[N, (res/patch)^2, dim]`; with a one-layer tower, the last layer.
"""

from __future__ import annotations

import math

import torch
from transformers import SiglipConfig, SiglipModel

from unified.quiet import no_progress_bars
from unified.vision.features import to_pixels
from unified.vision.fit import fit

HEAD_DIM = 32  # attention head width of our towers: heads = siglip_dim / 32
MAX_CAPTION_TOKENS = 128  # text positions; full captions at 32 px are ~40 tokens


def build_siglip(vision_cfg, resolution: int, tokenizer) -> SiglipModel:
    d = vision_cfg.siglip_dim
    common = dict(hidden_size=d, intermediate_size=4 * d, num_hidden_layers=vision_cfg.siglip_layers,
                  num_attention_heads=max(1, d // HEAD_DIM))
    # our ids, not SigLIP's defaults (49406/49407 fall outside a small vocabulary, docs/PLATFORM.md §7)
    text = dict(common, vocab_size=len(tokenizer), max_position_embeddings=MAX_CAPTION_TOKENS,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id)
    vision = dict(common, image_size=resolution, patch_size=vision_cfg.patch)
    model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
    with torch.no_grad():  # the SigLIP paper's init, t' = log 10 and b = -10 (transformers leaves them at 0)
        model.logit_scale.fill_(math.log(10.0))
        model.logit_bias.fill_(-10.0)
    return model


def tokenize_captions(tokenizer, captions: list[str]) -> torch.Tensor:
    """Captions -> LongTensor [N, L], each ending in <eos> and padded on the LEFT: SigLIP's text tower pools
    the last position (docs/PLATFORM.md §7), which must be the caption's own <eos>, not a pad."""
    ids = tokenizer(list(captions), add_special_tokens=False)["input_ids"]
    rows = [r[: MAX_CAPTION_TOKENS - 1] + [tokenizer.eos_token_id] for r in ids]
    width = max(len(r) for r in rows)
    return torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in rows], dtype=torch.long)


def train_siglip(model: SiglipModel, images, caption_ids: torch.Tensor, vision_cfg, generator, device,
                 lr: float = 1e-3) -> dict[str, float]:
    """Sigmoid loss (SigLIP, big_vision) over random image-caption batches. Padded positions are attention-
    masked; the pooled position is always a real <eos>."""
    model.to(device).train()
    pixels = to_pixels(images)  # [N, 3, H, W], moved per batch
    mask = (caption_ids != model.config.text_config.pad_token_id).long()

    def loss_fn(idx):
        out = model(input_ids=caption_ids[idx].to(device), attention_mask=mask[idx].to(device),
                    pixel_values=pixels[idx].to(device), return_loss=True)
        return out.loss

    stats = fit(model.parameters(), loss_fn, len(pixels), vision_cfg.siglip_steps, vision_cfg.stage0_batch, lr,
                generator, name="siglip")
    model.eval()
    return stats


def feature_layer(model: SiglipModel) -> int:
    """Index into `hidden_states` (embeddings first): the second-to-last layer as in the paper, or the only one."""
    return -2 if model.config.vision_config.num_hidden_layers > 1 else -1


def encode_patches(model: SiglipModel, pixels: torch.Tensor) -> torch.Tensor:
    """float pixels [B, 3, H, W] -> patch features [B, n, dim]."""
    out = model.vision_model(pixel_values=pixels, output_hidden_states=True)
    return out.hidden_states[feature_layer(model)]


@torch.no_grad()
def retrieval_accuracy(model: SiglipModel, images, caption_ids: torch.Tensor, device, chunk: int = 64) -> float:
    """Image -> caption top-1 retrieval within chunks of `chunk` pairs (a size-independent sanity number)."""
    model.eval()
    mask = (caption_ids != model.config.text_config.pad_token_id).long()
    hits = total = 0
    for i in range(0, len(images), chunk):
        px = to_pixels(images[i:i + chunk], device)
        out = model(input_ids=caption_ids[i:i + chunk].to(device), attention_mask=mask[i:i + chunk].to(device),
                    pixel_values=px)
        hits += (out.logits_per_image.argmax(1).cpu() == torch.arange(len(px))).sum().item()
        total += len(px)
    return hits / max(1, total)


def save_siglip(model: SiglipModel, path) -> None:
    with no_progress_bars():
        model.save_pretrained(str(path))


def load_siglip(path) -> SiglipModel:
    with no_progress_bars():
        return SiglipModel.from_pretrained(str(path), local_files_only=True).eval()
