"""The LLM backbone: a `transformers` causal LM built from a config made in code, or a local checkpoint.

`backbone.size` is the model-scale axis (finding 8); `backbone.path` swaps in a real checkpoint at paper scale.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from unified.config import BackboneConfig
from unified.quiet import no_progress_bars

# One dial per scale step: name -> (hidden, layers, heads, kv_heads, intermediate). Width doubles per step,
# head width stays 32 and the MLP is 2x wide; base uses grouped-query attention as Llama-family models do.
SIZES: dict[str, tuple[int, int, int, int, int]] = {
    "tiny": (64, 2, 2, 2, 128),  # smoke tests: seconds per trial
    "small": (128, 4, 4, 4, 256),  # the pre-project prototype's 4 x 128 Llama (~0.7 M params)
    "base": (256, 6, 8, 4, 512),  # the next step of the scale axis
}


def llama_config(size: str, vocab_size: int, max_positions: int) -> LlamaConfig:
    if size not in SIZES:
        raise KeyError(f"unknown backbone.size {size!r}; valid: {', '.join(SIZES)}")
    hidden, layers, heads, kv_heads, intermediate = SIZES[size]
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,  # tiny vocabularies: one table for input and output words
        attn_implementation="sdpa",
        # Our word-level tokenizer owns the special ids (<pad> = 0); Llama's defaults (bos 1, eos 2) would lie.
        pad_token_id=0,
        bos_token_id=None,
        eos_token_id=None,
    )


def build_backbone(bcfg: BackboneConfig, vocab_size: int, max_positions: int) -> torch.nn.Module:
    """A causal LM whose input/output word tables have exactly `vocab_size` rows.

    With `bcfg.path`, the checkpoint is loaded offline in float32, and `vocab_size` is its own tokenizer's
    (`data.tokenizer_path`, config.resolve insists) plus our sequence markers appended after its ids: the word
    tables grow by those rows (started at the old rows' mean) and every existing row keeps its meaning. A table
    padded beyond the tokenizer is cut to it, which drops only ids the tokenizer never emits.
    `max_positions` then comes from the checkpoint's own config.
    """
    if bcfg.path:
        with no_progress_bars():
            model = AutoModelForCausalLM.from_pretrained(bcfg.path, local_files_only=True, dtype=torch.float32)
        if model.get_input_embeddings().num_embeddings != vocab_size:
            model.resize_token_embeddings(vocab_size, mean_resizing=True)
        return model
    return LlamaForCausalLM(llama_config(bcfg.size, vocab_size, max_positions))
