"""The paper-scale path: a local causal-LM checkpoint with its own subword (byte-level BPE) tokenizer.

No registry package ships a small pretrained causal LM, so the checkpoint is made here the way a real one is
laid out: a BPE tokenizer trained in code on the domain's text and a Llama saved with `save_pretrained`, both
in one directory. What must hold: the checkpoint's embedding rows keep their meaning, answers are decoded by
the tokenizer's own `decode` (byte-level "Ġ" markers and split digits would break the time and battery
scores), and a trial trains and scores on it.
"""

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from unified import config as C
from unified.backbone import build_backbone
from unified.data.domains import get_domain
from unified.data.tokenizer import SPECIALS, build_tokenizer, detokenize, encode, special_ids


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe-llama")
    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    texts = get_domain("smartwatch").vocabulary_texts() + [f"{h:02d}:{m:02d} {b}%" for h in range(13)
                                                           for m in range(0, 60, 7) for b in range(0, 101, 20)]
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>")
    tok.save_pretrained(str(path))
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                         tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(str(path))
    return path


def test_the_checkpoints_tokenizer_gains_our_markers_after_its_own_ids(checkpoint):
    original = PreTrainedTokenizerFast.from_pretrained(str(checkpoint))
    tok = build_tokenizer("smartwatch", str(checkpoint))
    ids = special_ids(tok)
    assert sorted(ids.values()) == list(range(len(original), len(original) + len(SPECIALS)))
    assert encode(tok, ["the time is 03:45"]) == encode(original, ["the time is 03:45"])


@pytest.mark.parametrize("text", ["03:45", "60%", "top-left", "The weather is raining.", "12:07, 100%"])
def test_answers_decode_with_the_tokenizers_own_decode(checkpoint, text):
    tok = build_tokenizer("smartwatch", str(checkpoint))
    (ids,) = encode(tok, [text])
    assert len(ids) > 1  # several subwords: a glued-token join would read "0 3 : 4 5" or "Ġtop"
    assert detokenize(tok, [*ids, special_ids(tok)["<eos>"], *ids]) == text


def test_the_embedding_rows_keep_their_meaning(checkpoint):
    tok = build_tokenizer("smartwatch", str(checkpoint))
    saved = LlamaForCausalLM.from_pretrained(str(checkpoint)).get_input_embeddings().weight
    model = build_backbone(C.BackboneConfig(path=str(checkpoint)), len(tok), 2048)
    grown = model.get_input_embeddings().weight
    assert grown.shape[0] == len(tok) > saved.shape[0]
    assert torch.equal(grown[: saved.shape[0]], saved)  # every checkpoint id is where it was


def test_a_checkpoint_without_its_tokenizer_is_refused(checkpoint):
    with pytest.raises(C.ConfigError, match="data.tokenizer_path"):
        C.resolve(C.override(C.preset("smartwatch-cpu"), {"backbone.path": str(checkpoint)}))


@pytest.mark.slow
def test_a_trial_trains_and_scores_on_the_checkpoint(checkpoint, cache_dir):
    from unified.train import train

    cfg = C.override(C.smoke(C.preset("smartwatch-cpu")), {"backbone.path": str(checkpoint),
                                                            "data.tokenizer_path": str(checkpoint),
                                                            "model.variant": "vq-vq"})
    final = train(cfg, cache_dir=cache_dir)
    assert 0.0 <= final["eval/und/total"] <= 1.0 and final["eval/gen/attr_acc"] >= 0.0
