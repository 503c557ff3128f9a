"""The language prior of `backbone.init: text` (unified/text_prior.py): text only, cached, loaded, frozen."""

import json

import pytest
import torch

from unified import config as C
from unified import text_prior as tp
from unified.data.tokenizer import special_ids


@pytest.fixture(scope="module")
def text_cfg(smoke_cfg):
    return C.resolve(C.override(smoke_cfg, {"backbone.init": "text", "backbone.text_steps": 60}))


@pytest.fixture(scope="module")
def prior(text_cfg, pool, tokenizer, cache_dir):
    return tp.build_text_prior(text_cfg, pool, tokenizer, cache_dir)


def test_the_corpus_is_text_only_and_seeded(text_cfg, pool, tokenizer):
    sp = special_ids(tokenizer)
    docs = tp.corpus(text_cfg, pool.attrs("train"), tokenizer, n_docs=40)
    assert all(d[0] == sp["<bos>"] and d[-1] == sp["<eos>"] for d in docs)
    image_slots = {sp[n] for n in ("<img_in>", "<img_out>", "<boi>", "<eoi>", "<pad>", "<unk>")}
    assert not any(set(d) & image_slots for d in docs)
    assert sum(sp["<usr>"] in d for d in docs) == 40  # questions after captions, and prompts
    assert docs == tp.corpus(text_cfg, pool.attrs("train"), tokenizer, n_docs=40)
    other = C.override(text_cfg, {"data.seed": text_cfg.data.seed + 1})
    assert docs != tp.corpus(other, pool.attrs("train"), tokenizer, n_docs=40)


def test_the_prior_is_shared_by_arms_and_seeds_but_not_by_datasets(text_cfg):
    same = C.override(text_cfg, {"seed": 7, "data.tasks": "understanding", "model.freeze_llm": True})
    assert tp.prior_key(same) == tp.prior_key(text_cfg)
    for key, value in {"data.seed": 1, "backbone.size": "small", "backbone.text_steps": 61,
                       "data.freq.vqa.weather": 0.7}.items():
        assert tp.prior_key(C.override(text_cfg, {key: value})) != tp.prior_key(text_cfg), key


def test_the_prior_learned_the_language_and_is_built_once(text_cfg, prior, pool, tokenizer, cache_dir):
    from unified.backbone import build_backbone
    from unified.model import MAX_POSITIONS

    meta = json.loads((prior / "build.json").read_text())
    assert meta["key"]["steps"] == 60
    held_out = C.override(text_cfg, {"data.seed": text_cfg.data.seed + 5})  # other draws of the same language
    docs = tp.corpus(held_out, pool.attrs("train"), tokenizer, n_docs=64)
    pad = special_ids(tokenizer)["<pad>"]

    def loss(model):
        ids, mask = tp._batch(docs, torch.arange(len(docs)), pad)
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask.long()).logits[:, :-1]
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids[:, 1:].masked_fill(~mask[:, 1:], -100)
                                                 .flatten(), ignore_index=-100).item()

    pretrained = build_backbone(C.BackboneConfig(path=str(prior)), len(tokenizer), MAX_POSITIONS)
    random = build_backbone(C.BackboneConfig(size=text_cfg.backbone.size), len(tokenizer), MAX_POSITIONS)
    assert loss(pretrained) < 0.6 * loss(random)
    mtime = (prior / "build.json").stat().st_mtime_ns
    assert tp.build_text_prior(text_cfg, pool, tokenizer, cache_dir) == prior
    assert (prior / "build.json").stat().st_mtime_ns == mtime  # loaded, not rebuilt


def test_a_frozen_llm_keeps_the_prior_through_training(text_cfg, prior, cache_dir):
    from safetensors.torch import load_file

    from unified.train import Trainer

    cfg = C.override(text_cfg, {"model.freeze_llm": True, "model.variant": "vq-vq", "data.und_samples": 64,
                                "data.gen_samples": 64})
    trainer = Trainer(cfg, cache_dir)
    trainer.run()
    saved = load_file(str(prior / "model.safetensors"))
    live = trainer.model.backbone.state_dict()
    assert all(torch.equal(live[k], v) for k, v in saved.items() if k in live)
    assert any(p.requires_grad for p in trainer.model.und_adapter.parameters())


def test_text_init_and_a_checkpoint_path_exclude_each_other(tmp_path):
    with pytest.raises(C.ConfigError, match="backbone.init=text"):
        C.resolve(C.override(C.preset("smartwatch-cpu"), {"backbone.init": "text", "backbone.path": str(tmp_path)}))
    with pytest.raises(C.ConfigError, match="backbone.init"):
        C.resolve(C.override(C.preset("smartwatch-cpu"), {"backbone.init": "pretrained"}))
