"""Template sampling every domain shares: which attributes a VQA item asks, and one paraphrase of a question."""

from __future__ import annotations


def pick(rng, options: list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def turn_attributes(rng, attributes, weights: dict[str, float], extra_turn_p: float):
    """The asked attributes of one VQA item: the first turn always, then up to 3 more, each with extra_turn_p.

    A generator, so a caller drawing each turn's question from the same rng interleaves exactly as before."""
    names = [a for a in attributes if weights.get(a, 0.0) > 0]
    if not names:
        raise ValueError("data.freq.vqa gives every question type weight 0")
    p = [weights[a] for a in names]
    p = [w / sum(p) for w in p]
    n_turns = 1 + sum(rng.random() < extra_turn_p for _ in range(3))
    for _ in range(n_turns):
        yield names[int(rng.choice(len(names), p=p))]
