"""UnifiedModel: one LLM that understands images (input space) and generates them (output space).

Composed from parts (docs/DESIGN.md §2, docs/PAPER.md §2): a `transformers` causal LM, an understanding adapter, a
generation adapter (the same module when shared), an output head per output space (unified/heads.py) and
frozen affine maps (unified/adapters.py). Sequences and batches follow docs/INTERFACES.md: image tokens enter
through `inputs_embeds` at the `<img_in>` / `<img_out>` slots, and the hidden state before the k-th `<img_out>`
predicts image token k.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import DynamicCache

from unified.adapters import AffineMap, make_adapter
from unified.backbone import build_backbone
from unified.config import ExperimentConfig
from unified.heads import CodeHead, FeatureHead

MAX_POSITIONS = 2048  # RoPE table size of built backbones; the paper's max length (docs/PAPER.md §6)


class UnifiedModel(nn.Module):
    def __init__(self, backbone: nn.Module, und_adapter: nn.Module, gen_adapter: nn.Module,
                 head: FeatureHead | CodeHead, affine_in: AffineMap, special: dict[str, int], alpha: float,
                 n_out: int, slot_positions: torch.Tensor | None = None):
        super().__init__()
        self.backbone = backbone
        self.und_adapter = und_adapter
        self.gen_adapter = gen_adapter  # may be und_adapter itself: then its parameters are shared
        self.head = head
        self.affine_in = affine_in
        self.special = dict(special)
        self.alpha = alpha
        self.n_out = n_out
        # model.slot_positions: added to the k-th fed-back image token, so the hidden state there knows it predicts
        # token k + 1. Without it the slot index is only the distance to <boi>, which varies with the prompt
        # length under RoPE; a small LLM learns that slowly.
        self.slot_positions = None if slot_positions is None else nn.Parameter(slot_positions)
        # transformers 5 renamed the decoder's `past_key_values` argument to `cache`; accept either.
        params = inspect.signature(backbone.get_decoder().forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def affine_gen(self) -> AffineMap:
        return self.head.affine

    # ------------------------------------------------------------ training

    def forward_understanding(self, batch: dict) -> torch.Tensor:
        batch = self._to_device(batch)
        embeds = self._understanding_embeds(batch["input_ids"], batch["image_feats"])
        hidden = self._hidden(embeds, batch["attention_mask"])
        return self._text_loss(hidden, batch["labels"])

    def forward_generation(self, batch: dict) -> dict[str, torch.Tensor]:
        batch = self._to_device(batch)
        hidden, target = self._teacher_forced(batch)
        predictors = self._before_slots(batch["input_ids"])
        image = self.head.loss(hidden[predictors], target.flatten(0, 1))  # [b * n_out, h] vs [b * n_out, ...]
        return {"text": self._text_loss(hidden, batch["labels"]), "image": image}

    def losses(self, und: dict | None, gen: dict | None) -> dict[str, torch.Tensor]:
        """loss = und + gen text + alpha * image; a missing task contributes a 0-valued tensor."""
        zero = torch.zeros((), device=self.device)
        loss_und = self.forward_understanding(und) if und is not None else zero
        if gen is not None:
            parts = self.forward_generation(gen)
            loss_gen = parts["text"] + self.alpha * parts["image"]
        else:
            loss_gen = zero
        return {"loss": loss_und + loss_gen, "loss/und": loss_und, "loss/gen": loss_gen}

    def forward(self, und: dict | None = None, gen: dict | None = None) -> dict[str, torch.Tensor]:
        """`losses` as the module's forward, so a DistributedDataParallel wrapper syncs gradients: DDP(model)(und, gen).
        A step with one task leaves the other task's adapter/head unused (DDP: find_unused_parameters=True)."""
        return self.losses(und, gen)

    def image_predictions(self, batch: dict) -> torch.Tensor:
        """Teacher-forced head outputs at every image slot: [b, n_out, dim] features (distorted space when the
        generation affine is on) or [b, n_out, K] logits."""
        batch = self._to_device(batch)
        hidden, _ = self._teacher_forced(batch)
        b = hidden.shape[0]
        return self.head(hidden[self._before_slots(batch["input_ids"])]).view(b, self.n_out, -1)

    # ------------------------------------------------------------ inference

    def generate_answers(self, batch: dict, max_new_tokens: int = 8) -> list[list[int]]:
        """Greedy answers to left-padded understanding prompts (ending at `<ans>`), without the final `<eos>`."""
        eos = self.special["<eos>"]
        with _inference(self):
            batch = self._to_device(batch)
            mask = batch["attention_mask"]
            embeds = self._understanding_embeds(batch["input_ids"], batch["image_feats"])
            cache, positions = self._new_cache(), _positions(mask)
            hidden = self._hidden(embeds, mask, positions, cache)[:, -1]  # [b, h]
            answers: list[list[int]] = [[] for _ in range(mask.shape[0])]
            done = [False] * mask.shape[0]
            for step in range(max_new_tokens):
                tokens = self.backbone.get_output_embeddings()(hidden).argmax(-1)  # [b]
                for row, token in enumerate(tokens.tolist()):
                    done[row] = done[row] or token == eos
                    if not done[row]:
                        answers[row].append(token)
                if all(done) or step + 1 == max_new_tokens:
                    break
                mask, positions = _extend(mask, positions)
                embeds = self.backbone.get_input_embeddings()(tokens[:, None])  # [b, 1, h]
                hidden = self._hidden(embeds, mask, positions, cache)[:, -1]
        return answers

    def generate_images(self, batch: dict) -> torch.Tensor:
        """n_out autoregressive image tokens after left-padded prompts that end at `<boi>`.

        Returns SigLIP features [b, n_out, dim] in the true (un-distorted) space, or VQ codes [b, n_out]."""
        with _inference(self):
            batch = self._to_device(batch)
            mask = batch["attention_mask"]
            embeds = self.backbone.get_input_embeddings()(batch["input_ids"])
            cache, positions = self._new_cache(), _positions(mask)
            hidden = self._hidden(embeds, mask, positions, cache)[:, -1]  # [b, h]
            outputs = []
            for k in range(self.n_out):
                fed, out = self.head.step(hidden)  # the prediction goes back in as the next image token
                outputs.append(out)
                if k + 1 < self.n_out:
                    mask, positions = _extend(mask, positions)
                    hidden = self._hidden(self._fed_tokens(fed[:, None], k), mask, positions, cache)[:, -1]
        return torch.stack(outputs, dim=1)  # [b, n_out, dim] or [b, n_out]

    # ------------------------------------------------------------ internals

    def _understanding_embeds(self, input_ids: torch.Tensor, image_feats: torch.Tensor) -> torch.Tensor:
        tokens = self.und_adapter(self.affine_in(image_feats.float()))  # [b, n_in, h]
        return self._splice(input_ids, self.special["<img_in>"], tokens)

    def _teacher_forced(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states [b, L, h] of a generation batch with the target image fed back, and the loss target."""
        fed, target = self.head.teacher(batch)
        embeds = self._splice(batch["input_ids"], self.special["<img_out>"], self._fed_tokens(fed))
        return self._hidden(embeds, batch["attention_mask"]), target

    def _fed_tokens(self, fed: torch.Tensor, first: int = 0) -> torch.Tensor:
        """Generation-adapter tokens [b, n, h] of fed-back image tokens in slots first .. first + n - 1."""
        tokens = self.gen_adapter(fed)
        if self.slot_positions is not None:
            tokens = tokens + self.slot_positions[first: first + tokens.shape[1]]
        return tokens

    def _splice(self, input_ids: torch.Tensor, slot_id: int, tokens: torch.Tensor) -> torch.Tensor:
        """Word embeddings with the slot positions replaced, in order, by image tokens [b, n, h]."""
        embeds = self.backbone.get_input_embeddings()(input_ids)  # [b, L, h]
        slots = input_ids == slot_id
        if not bool((slots.sum(1) == tokens.shape[1]).all()):
            raise ValueError(f"every row needs exactly {tokens.shape[1]} image slots (id {slot_id}); "
                             f"got {slots.sum(1).tolist()}")
        return embeds.masked_scatter(slots.unsqueeze(-1), tokens.to(embeds.dtype))

    def _before_slots(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[b, L] mask of the positions whose hidden state predicts the next `<img_out>` slot's token."""
        slots = input_ids == self.special["<img_out>"]
        before = torch.zeros_like(slots)
        before[:, :-1] = slots[:, 1:]
        return before

    def _hidden(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor | None = None,
                cache: DynamicCache | None = None) -> torch.Tensor:
        """Last-layer hidden states [b, l, h]. Positions count real tokens, so left and right padding agree."""
        positions = _positions(mask) if positions is None else positions[:, -embeds.shape[1]:]
        out = self.backbone.get_decoder()(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                          use_cache=cache is not None, **{self._cache_arg: cache})
        return out.last_hidden_state

    def _text_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Next-token CE; labels are aligned with input_ids (-100 ignored), so position t predicts label t+1."""
        logits = self.backbone.get_output_embeddings()(hidden[:, :-1]).float()  # [b, L-1, V]
        targets = labels[:, 1:]
        total = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="sum")
        return total / (targets != -100).sum().clamp(min=1)  # a batch without text labels gives 0, not NaN

    def _new_cache(self) -> DynamicCache:
        try:
            return DynamicCache(config=self.backbone.config)
        except TypeError:  # transformers 4.x takes no config
            return DynamicCache()

    def _to_device(self, batch: dict) -> dict:
        device = self.device
        return {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}


def _positions(mask: torch.Tensor) -> torch.Tensor:
    return (mask.long().cumsum(-1) - 1).clamp(min=0)  # [b, L]; pads (left or right) get a harmless 0 or repeat


def _extend(mask: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask and position ids after appending one real token to every row."""
    ones = torch.ones_like(mask[:, :1])
    return torch.cat([mask, ones], dim=1), positions[:, -1:] + 1


@contextlib.contextmanager
def _inference(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def build_model(cfg: ExperimentConfig, vocab_size: int, special: dict[str, int], in_space, out_space,
                backbone_path: str | Path | None = None) -> UnifiedModel:
    """A UnifiedModel for a resolved config. A space is anything with `kind` ("siglip" | "vq"), `n_tokens`,
    `dim` and, for VQ output, `codebook` [K, dim] (and, for SigLIP output, `train` features). Initialisation is
    seeded by `cfg.seed` (the global RNG is left as it was); the affine maps by `cfg.data.seed`, so every trial of
    a dataset shares them. `backbone_path` loads the backbone from that checkpoint (the text prior of
    `backbone.init: text`, unified/text_prior.py) instead of `cfg.backbone`."""
    m = cfg.model
    if "auto" in (m.adapter_und, m.adapter_gen, m.shared_adapter) or m.alpha is None:
        raise ValueError("build_model needs a resolved config: call unified.config.resolve first")
    for name in ("<img_in>", "<img_out>", "<eos>"):
        if name not in special:
            raise KeyError(f"special token {name} missing from special ids {sorted(special)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        bcfg = cfg.backbone if backbone_path is None else dataclasses.replace(cfg.backbone, path=str(backbone_path))
        backbone = build_backbone(bcfg, vocab_size, MAX_POSITIONS)
        hidden = backbone.get_input_embeddings().embedding_dim
        und_adapter = make_adapter(m.adapter_und, in_space.dim, hidden)
        if m.shared_adapter:
            if in_space.dim != out_space.dim:
                raise ValueError(f"a shared adapter needs equal input and output dims, got {in_space.dim} and "
                                 f"{out_space.dim}")
            gen_adapter = und_adapter
        else:
            gen_adapter = make_adapter(m.adapter_gen, out_space.dim, hidden)
        # Both maps are always drawn, in this order, so each is the same whichever targets are on.
        rng = torch.Generator().manual_seed(cfg.data.seed)
        s = m.affine_strength
        affine_in = AffineMap(in_space.dim, s if m.affine_target in ("input", "both") else 0.0, rng)
        affine_gen = AffineMap(out_space.dim, s if m.affine_target in ("generation", "both") else 0.0, rng)
        if out_space.kind == "siglip":
            with torch.no_grad():  # the mean norm of the (distorted) targets, on a fixed slice of the train set
                norm = affine_gen(out_space.train[:512].float()).norm(dim=-1).mean()
            head = FeatureHead(hidden, out_space.dim, affine_gen, float(norm), m.feature_loss)
        elif out_space.kind == "vq":
            head = CodeHead(hidden, out_space.codebook, affine_gen)
        else:
            raise KeyError(f"unknown output space kind {out_space.kind!r}; valid: siglip, vq")
        slots = 0.02 * torch.randn(out_space.n_tokens, hidden) if m.slot_positions else None
    if m.freeze_llm:
        backbone.requires_grad_(False)  # finding 7: only adapters and head learn
    return UnifiedModel(backbone, und_adapter, gen_adapter, head, affine_in, special, m.alpha, out_space.n_tokens,
                        slots)
