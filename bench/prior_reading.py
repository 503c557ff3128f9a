"""How well the text prior (`backbone.init: text`, unified/text_prior.py) reads an answer out of its context.

A frozen LLM (finding 7) can lend its adapters only what it reads out of context, so this bounds the frozen arm.
Each test item becomes text, `<bos>` caption `<usr>` question `<ans>`, and the prior answers greedily; scored by
exact match with the caption in context and without it (the difference is what it reads). The prior is built
into the cache on first use, as a sweep would build it.

    python bench/prior_reading.py                                   # the cpu preset's prior
    python bench/prior_reading.py backbone.size=small backbone.text_steps=3000 --items 300
"""

from __future__ import annotations

import argparse

import numpy as np
import torch


def read_score(model, tokenizer, cfg, attrs: list[dict], items: int, seed: int = 7) -> dict[str, float]:
    from unified.data.domains import get_domain
    from unified.data.tokenizer import encode, special_ids

    sp, domain, d = special_ids(tokenizer), get_domain(cfg.data.domain), cfg.data
    rng = np.random.default_rng(seed)
    hits = {"with_caption": [], "without": []}
    for _ in range(items):
        a = attrs[int(rng.integers(len(attrs)))]
        _, question, answer = domain.vqa_turns(rng, a, d, d.freq["vqa"], 0.0)[0]
        caption, q_ids, a_ids = encode(tokenizer, [domain.full_caption(a, d), question, answer])
        for key, context in (("with_caption", caption), ("without", [])):
            ids = torch.tensor([[sp["<bos>"], *context, sp["<usr>"], *q_ids, sp["<ans>"]]])
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=len(a_ids),
                                 min_new_tokens=len(a_ids), do_sample=False, pad_token_id=sp["<pad>"])
            hits[key].append(out[0, ids.shape[1]:].tolist() == list(a_ids))
    return {k: float(np.mean(v)) for k, v in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="dotted config keys, KEY=VALUE, on the preset")
    parser.add_argument("--preset", default="smartwatch-cpu")
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--cache-dir", help="the stage-0 cache (default: $UNISWEEP_CACHE, else ~/.cache/unisweep)")
    args = parser.parse_args()

    from unified.config import ConfigError, default_cache_dir
    from unisweep.cli import build_config, parse_overrides

    try:  # a wrong key or value is named before anything is loaded or built
        cfg = build_config(args.preset, False, parse_overrides(args.overrides))
    except (ConfigError, KeyError) as e:
        parser.error(str(e))
    cache_dir = args.cache_dir or str(default_cache_dir())

    from transformers import AutoModelForCausalLM

    from unified.data.dataset import load_pool
    from unified.data.tokenizer import build_tokenizer
    from unified.quiet import no_progress_bars
    from unified.text_prior import build_text_prior

    torch.set_num_threads(1)
    pool = load_pool(cfg.data, cache_dir)
    tokenizer = build_tokenizer(cfg.data.domain)
    folder = build_text_prior(cfg, pool, tokenizer, cache_dir)
    with no_progress_bars():
        model = AutoModelForCausalLM.from_pretrained(str(folder)).eval()
    scores = read_score(model, tokenizer, cfg, pool.attrs("test"), args.items)
    print(f"prior {folder.name} ({cfg.backbone.size}, {cfg.backbone.text_steps} steps): exact answers "
          f"{scores['with_caption']:.3f} with the caption in context, {scores['without']:.3f} without")


if __name__ == "__main__":
    main()
