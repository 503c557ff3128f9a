"""Chance levels measured per run, so that every score can be read against what learning nothing would give.

Understanding: the **constant-answer** baseline. Per question type, the single answer that scores best on the
training pool's images (the images training samples are drawn from) is chosen with the paper's metrics, then
scored on the very test items the model answers: `baseline/und/<metric>` and `baseline/und/total`, logged once
per run at step 0. Generation: `eval/gen/attr_acc_shuffled` (unified/evaluate.py) scores each generated image
against another item's prompt; `baseline/gen/fd_one_image` is the Fréchet distance that a prompt-blind
generator drawing one perfect real image would reach. Nothing here is a hard-coded number.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from unified import metrics
from unified.data.domains import get_domain

MAX_CANDIDATES = 256  # most frequent training answers tried per question type (time has up to 12 × 60 × 60)
MAX_FIT_ITEMS = 1000  # training images the constant is chosen on, per question type


def constant_answers(data_cfg, train_attrs: list[dict], attributes: list[str]) -> dict[str, str]:
    """question type -> the one answer that scores best on the training images (ties: the lexically first)."""
    domain = get_domain(data_cfg.domain)
    fit = train_attrs[:MAX_FIT_ITEMS]  # the pool is rendered from a seeded random stream: a prefix is a sample
    out = {}
    for a in attributes:
        answers = Counter(domain.answer(a, attrs, data_cfg) for attrs in train_attrs)
        candidates = sorted(answers, key=lambda s: (-answers[s], s))[:MAX_CANDIDATES]
        truths = [domain.truth(a, attrs, data_cfg) for attrs in fit]
        metric = domain.METRICS[a]
        mean = {c: np.mean([metrics.score(metric, t, c) for t in truths]) for c in candidates}
        out[a] = max(sorted(candidates), key=lambda c: mean[c])
    return out


def understanding_baseline(data_cfg, train_attrs: list[dict], items) -> dict[str, float]:
    """`baseline/und/*`: the constant answers scored on the evaluation items, under the keys of `eval/und/*`."""
    constant = constant_answers(data_cfg, train_attrs, sorted({it.attribute for it in items}))
    scores = metrics.und_scores(items, [constant[it.attribute] for it in items])
    return {k.replace("eval/und/", "baseline/und/", 1): v for k, v in scores.items()}


def one_image_fd(judge, real: np.ndarray) -> float:
    """Fréchet distance to `real` (uint8 [N, H, W, 3]) of a generator that draws `real[0]` whatever the prompt."""
    import torch

    feats = judge.features(torch.from_numpy(real)).cpu().numpy()
    return metrics.frechet_distance(np.repeat(feats[:1], len(feats), axis=0), feats)
