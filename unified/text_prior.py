"""A language prior: the backbone pretrained on the domain's language alone (`backbone.init: text`).

The paper's LLM arrives pretrained on text; a built backbone arrives random. So that a frozen LLM (finding 7)
is a pretrained one and a rare concept (finding 6) has language to ride on, stage 0 can train the backbone as
a plain causal LM on text drawn from the training images' attributes — full captions followed by VQA turns,
and generation prompts with their acknowledgements, with the config's `data.freq` — and no image token.
It is cached like the visual parts, in `<cache_dir>/stage0/textlm-<hash>/` (transformers' `save_pretrained`
format), the hash covering exactly what determines it, so every arm and seed of a dataset shares one prior.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from unified import determinism
from unified.cache import cached_dir
from unified.config import BackboneConfig
from unified.data.dataset import pool_key
from unified.data.domains import get_domain
from unified.data.tokenizer import encode, special_ids
from unified.hashing import stable_hash
from unified.quiet import no_progress_bars
from unified.vision.fit import fit

VERSION = 1  # bump when the corpus or the training loop changes what a cached prior would contain
DOCS = 8000  # text documents drawn once; the steps cycle through them
BATCH, LR = 32, 2e-3
SEED_OFFSET = 6  # its own stream of data.seed, beside the visual parts' (unified/vision/stage0.py)


def prior_key(cfg) -> dict:
    """Everything the prior depends on: the images' attributes, the text frequencies, the vocabulary and the
    backbone's shape, and the kernels it is trained with (the CPU pin, unified/determinism.py). Not the trial's
    seed, task or budget: all arms of a dataset share it."""
    d, b = cfg.data, cfg.backbone
    return {"version": VERSION, **determinism.cache_key(), "pool": pool_key(d), "freq": d.freq,
            "extra_turn_p": d.extra_turn_p, "tokenizer": d.tokenizer_path or d.domain, "size": b.size,
            "steps": b.text_steps}


def prior_dir(cfg, cache_dir) -> Path:
    return Path(cache_dir) / "stage0" / f"textlm-{stable_hash(prior_key(cfg))}"


def corpus(cfg, attrs: list[dict], tokenizer, n_docs: int = DOCS) -> list[list[int]]:
    """Token ids of `n_docs` text documents, half described images with questions, half generation prompts."""
    d, domain, sp = cfg.data, get_domain(cfg.data.domain), special_ids(tokenizer)
    rng = np.random.default_rng(np.random.SeedSequence([cfg.data.seed, SEED_OFFSET]))
    docs = []
    for k in range(n_docs):
        a = attrs[int(rng.integers(len(attrs)))]
        if k % 2 == 0:
            turns = domain.vqa_turns(rng, a, d, d.freq["vqa"], d.extra_turn_p)
            texts = [domain.full_caption(a, d)] + [t for _, q, ans in turns for t in (q, ans)]
            enc = encode(tokenizer, texts)
            ids = [sp["<bos>"], *enc[0]]
            for q_ids, a_ids in zip(enc[1::2], enc[2::2], strict=True):
                ids += [sp["<usr>"], *q_ids, sp["<ans>"], *a_ids]
        else:
            prompt, ack, _ = domain.generation(rng, a, d, d.freq["gen"])
            p_ids, a_ids = encode(tokenizer, [prompt, ack])
            ids = [sp["<bos>"], sp["<usr>"], *p_ids, sp["<ans>"], *a_ids]
        docs.append(ids + [sp["<eos>"]])
    return docs


def _batch(docs: list[list[int]], idx: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [docs[i] for i in idx.tolist()]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
    return ids, ids != pad


def train_prior(backbone: torch.nn.Module, docs: list[list[int]], steps: int, pad: int,
                generator: torch.Generator) -> dict[str, float]:
    """Next-token cross-entropy on every real token of the documents."""
    backbone.train()

    def loss_fn(idx):
        ids, mask = _batch(docs, idx, pad)
        logits = backbone(input_ids=ids, attention_mask=mask.long()).logits[:, :-1].float()
        targets = ids[:, 1:].masked_fill(~mask[:, 1:], -100)
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)

    stats = fit(backbone.parameters(), loss_fn, len(docs), steps, BATCH, LR, generator, name="text prior")
    backbone.eval()
    return stats


def build_text_prior(cfg, pool, tokenizer, cache_dir) -> Path:
    """The cached prior's folder (built on first use): a checkpoint `backbone.path` can point at."""
    from unified.backbone import build_backbone
    from unified.model import MAX_POSITIONS

    folder = prior_dir(cfg, cache_dir)

    def build(tmp: Path) -> None:
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(1000 * cfg.data.seed + SEED_OFFSET)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(gen.initial_seed())
            backbone = build_backbone(BackboneConfig(size=cfg.backbone.size), len(tokenizer), MAX_POSITIONS)
            docs = corpus(cfg, pool.attrs("train"), tokenizer)
            stats = train_prior(backbone, docs, cfg.backbone.text_steps, special_ids(tokenizer)["<pad>"], gen)
        with no_progress_bars():
            backbone.save_pretrained(str(tmp))
        meta = {"seconds": time.perf_counter() - t0, "loss": stats["loss"], "key": prior_key(cfg)}
        (tmp / "build.json").write_text(json.dumps(meta))

    cached_dir(folder.parent, folder.name, build)
    return folder
