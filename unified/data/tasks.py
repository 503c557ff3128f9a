"""Training samples, batch order and evaluation items of one trial: the sample budget lives here and only here.

Budget (`data.tasks`, `data.und_samples`, `data.gen_samples`, `data.mix_mode`; `config.resolve` has already
turned `data.gen_ratio` / `data.total_samples` into the two counts):

| data.tasks    | added (the paper's)       | replace (equal compute)            | matched (equal updates)          |
|---------------|---------------------------|------------------------------------|----------------------------------|
| mixed         | und_samples + gen_samples | = added (resolve normalises it)    | = added (resolve normalises it)  |
| understanding | und_samples               | und_samples + gen_samples, all und | und_samples, cycled              |
| generation    | gen_samples               | und_samples + gen_samples, all gen | gen_samples, cycled              |

Updates (optimizer steps) are one epoch over the arm's samples, ceil(samples / train.batch_size), except under
`matched`: a single-task arm takes the mixed arm's ceil((und_samples + gen_samples) / train.batch_size) updates
on its own task's samples only, the same Sample objects revisited in reshuffled epochs (no extra distinct data;
`matched_steps`). So `added` holds each arm's distinct samples of its task equal and gives the mixed arm more
updates; `replace` holds updates and total samples equal and gives a single-task arm 1.5-3x the distinct samples;
`matched` holds updates equal and distinct samples of each task equal, and revisits them instead. A mixed arm
trains the same in every mode (`config.resolve` sets its mix_mode to added), so it is trained once for all three.

Understanding samples are captions with probability `data.caption_share`, else VQA. Both tasks draw their images
from one seeded permutation of the train pool, in order, cycling with fresh text when a count exceeds the pool,
so the i-th understanding and the i-th generation sample show the same image (as in the paper, where every
image has one sample of each task). Texts, images and batch order come from streams spawned from `cfg.seed`,
each consumed in sample order: the first k understanding samples are the same in every arm of a seed.

Batches: one epoch shuffles every chosen (task, index) pair and cuts the order into batches of
`train.batch_size` (the last one may be short); `train.steps > 0` (or a matched arm's updates) takes exactly that
many full batches from a stream of reshuffled epochs. An explicit `train.steps` wins in every mode; a sweep that
sets it sets it for the mixed arm too, so a matched arm still takes the mixed arm's updates. Evaluation items come
from the test pool with a fixed seed, so every trial (any seed, any arm) is scored on the same items.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from unified.data.domains import get_domain
from unified.data.tokenizer import encode, special_ids

EVAL_SEED = 20250529  # fixed: test items do not depend on the trial seed (the paper's v1 date)
IGNORE = -100


@dataclasses.dataclass
class Sample:
    ids: list[int]
    labels: list[int]  # IGNORE except the answer tokens the loss is on
    image: int  # index into the train pool
    kind: str = ""  # vqa | caption | generation
    mentions: tuple[str, ...] = ()  # attributes the text names (caption clauses, prompt clauses, questions asked)


@dataclasses.dataclass
class UndItem:
    ids: list[int]  # a prompt ending at <ans>
    image: int  # index into the test pool
    metric: str  # eval/und/<metric>
    truth: dict  # what metrics.score needs; truth["answer"] is the canonical answer
    attribute: str = ""  # the question type asked (several may share a metric, e.g. both "where" questions)


@dataclasses.dataclass
class GenItem:
    ids: list[int]  # a prompt ending at <boi>, the first acknowledgement teacher-forced
    image: int  # index into the test pool: the image whose attributes the prompt describes
    labels: dict[str, int]  # judge head -> class
    mask: dict[str, bool]  # judge head -> whether the prompt mentions it
    attributes: str = ""  # what the prompt asks for, e.g. "weather=raining, hour=3" (written under image grids)


@dataclasses.dataclass
class TrialData:
    und: list[Sample]
    gen: list[Sample]
    steps: list[tuple[list[int], list[int]]]  # per step: indices into und, indices into gen
    eval_und: list[UndItem]
    eval_gen: list[GenItem]


def sample_counts(data_cfg) -> tuple[int, int]:
    """(understanding, generation) sample counts of an arm; see the table in the module docstring."""
    und, gen = data_cfg.und_samples, data_cfg.gen_samples
    total = und + gen if data_cfg.mix_mode == "replace" else None
    if data_cfg.tasks == "understanding":
        return (total or und), 0
    if data_cfg.tasks == "generation":
        return 0, (total or gen)
    return und, gen


def matched_steps(data_cfg, batch_size: int) -> int:
    """Updates a `matched` single-task arm takes: the mixed arm's one epoch over und_samples + gen_samples; 0 for
    any other arm (its own epoch decides, `_batch_order`)."""
    if data_cfg.mix_mode != "matched" or data_cfg.tasks == "mixed":
        return 0
    return -(-(data_cfg.und_samples + data_cfg.gen_samples) // batch_size)


def eval_question_types(data_cfg) -> list[str]:
    """Attributes asked at evaluation: every one that some task names (face colour only when switched on)."""
    domain = get_domain(data_cfg.domain)
    return [a for a in domain.ATTRIBUTES if any(data_cfg.freq[t].get(a, 0.0) > 0 for t in data_cfg.freq)]


def build_samples(cfg, pool, tokenizer, n_in: int, n_out: int) -> TrialData:
    d = cfg.data
    domain = get_domain(d.domain)
    sp = special_ids(tokenizer)
    n_und, n_gen = sample_counts(d)
    perm_ss, und_ss, gen_ss, order_ss = np.random.SeedSequence(cfg.seed).spawn(4)
    perm = np.random.default_rng(perm_ss).permutation(d.n_images)
    train_attrs = pool.attrs("train")

    und_rng, und_raw = np.random.default_rng(und_ss), []
    for i in range(n_und):
        img = int(perm[i % d.n_images])
        attrs = train_attrs[img]
        if und_rng.random() < d.caption_share:
            q, cap, mentioned = domain.caption(und_rng, attrs, d, d.freq["caption"])
            und_raw.append((img, "caption", [(q, cap)], tuple(mentioned)))
        else:
            turns = domain.vqa_turns(und_rng, attrs, d, d.freq["vqa"], d.extra_turn_p)
            und_raw.append((img, "vqa", [(q, a) for _, q, a in turns], tuple(a for a, _, _ in turns)))
    und = [_und_sample(tokenizer, sp, n_in, *raw) for raw in und_raw]

    gen_rng, gen = np.random.default_rng(gen_ss), []
    for j in range(n_gen):
        img = int(perm[j % d.n_images])
        prompt, ack, mentioned = domain.generation(gen_rng, train_attrs[img], d, d.freq["gen"])
        p_ids, a_ids = encode(tokenizer, [prompt, ack])
        ids = [sp["<bos>"], sp["<usr>"], *p_ids, sp["<ans>"], *a_ids, sp["<boi>"],
               *[sp["<img_out>"]] * n_out, sp["<eoi>"], sp["<eos>"]]
        n_prompt = 3 + len(p_ids)  # <bos> <usr> prompt <ans>
        labels = [IGNORE] * n_prompt + ids[n_prompt: n_prompt + len(a_ids) + 1] + [IGNORE] * (n_out + 2)
        gen.append(Sample(ids, labels, img, "generation", tuple(mentioned)))

    n_steps = cfg.train.steps or matched_steps(d, cfg.train.batch_size)  # an explicit train.steps wins
    steps = _batch_order(np.random.default_rng(order_ss), n_und, n_gen, cfg.train.batch_size, n_steps)
    eval_und, eval_gen = _eval_items(d, domain, pool, tokenizer, sp, n_in, cfg.train)
    return TrialData(und=und, gen=gen, steps=steps, eval_und=eval_und, eval_gen=eval_gen)


def _und_sample(tokenizer, sp, n_in, img, kind, turns, mentions) -> Sample:
    """<bos> <img_in>×n_in [<usr> q <ans> a <eos>]+ with the loss on every answer and its <eos>."""
    ids, labels = [sp["<bos>"], *[sp["<img_in>"]] * n_in], [IGNORE] * (1 + n_in)
    enc = encode(tokenizer, [t for qa in turns for t in qa])
    for q_ids, a_ids in zip(enc[::2], enc[1::2], strict=True):
        prompt = [sp["<usr>"], *q_ids, sp["<ans>"]]
        ids += prompt + a_ids + [sp["<eos>"]]
        labels += [IGNORE] * len(prompt) + a_ids + [sp["<eos>"]]
    return Sample(ids, labels, img, kind, mentions)


def _batch_order(rng, n_und: int, n_gen: int, batch_size: int, steps: int) -> list[tuple[list[int], list[int]]]:
    pairs = [(0, i) for i in range(n_und)] + [(1, j) for j in range(n_gen)]
    if not pairs:
        raise ValueError("the sample budget is empty: check data.tasks, data.und_samples and data.gen_samples")
    n_batches = steps if steps > 0 else -(-len(pairs) // batch_size)
    need = n_batches * batch_size if steps > 0 else len(pairs)
    order: list[tuple[int, int]] = []
    while len(order) < need:  # a stream of reshuffled epochs
        order += [pairs[k] for k in rng.permutation(len(pairs))]
    batches = []
    for b in range(n_batches):
        chunk = order[b * batch_size: (b + 1) * batch_size]
        batches.append(([i for t, i in chunk if t == 0], [i for t, i in chunk if t == 1]))
    return batches


def _eval_items(d, domain, pool, tokenizer, sp, n_in, train_cfg) -> tuple[list[UndItem], list[GenItem]]:
    """First-turn questions per question type and generation prompts, on test images, with a fixed seed."""
    rng = np.random.default_rng(EVAL_SEED)
    test_attrs = pool.attrs("test")
    und = []
    for a in eval_question_types(d):
        for k in range(train_cfg.eval_items):
            img = k % len(test_attrs)
            (q_ids,) = encode(tokenizer, [domain.question(rng, a)])
            ids = [sp["<bos>"], *[sp["<img_in>"]] * n_in, sp["<usr>"], *q_ids, sp["<ans>"]]
            und.append(UndItem(ids, img, domain.METRICS[a], domain.truth(a, test_attrs[img], d), a))
    (ack_ids,) = encode(tokenizer, [domain.ACKS[0]])
    gen = []
    for k in range(train_cfg.gen_eval_items):
        img = k % len(test_attrs)
        prompt, _, mentioned = domain.generation(rng, test_attrs[img], d, d.freq["gen"])
        (p_ids,) = encode(tokenizer, [prompt])
        ids = [sp["<bos>"], sp["<usr>"], *p_ids, sp["<ans>"], *ack_ids, sp["<boi>"]]
        heads = set(domain.mentioned_heads(mentioned, d))
        labels = domain.judge_labels(test_attrs[img], d)
        asked = ", ".join(f"{a}={domain.answer(a, test_attrs[img], d)}" for a in mentioned)
        gen.append(GenItem(ids, img, labels, {h: h in heads for h in labels}, asked))
    return und, gen


def gen_targets(items: list[GenItem]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Judge labels and mention masks of generation items as head -> array [n], for metrics.attr_accuracy."""
    heads = items[0].labels if items else {}
    labels = {h: np.array([it.labels[h] for it in items], dtype=np.int64) for h in heads}
    mask = {h: np.array([it.mask[h] for it in items], dtype=bool) for h in heads}
    return labels, mask


def collate(items, pad_id: int, side: str = "right") -> dict:
    """Pad samples or eval items to one batch: input_ids, attention_mask, labels (training samples only) [b, L]
    and image [b] (pool indices). Left padding puts every prompt's last token at the end, for generation."""
    import torch

    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    width = max(len(it.ids) for it in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    has_labels = all(isinstance(it, Sample) for it in items)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long) if has_labels else None
    for r, it in enumerate(items):
        n = len(it.ids)
        cols = slice(0, n) if side == "right" else slice(width - n, width)
        ids[r, cols] = torch.tensor(it.ids, dtype=torch.long)
        mask[r, cols] = 1
        if has_labels:
            labels[r, cols] = torch.tensor(it.labels, dtype=torch.long)
    batch = {"input_ids": ids, "attention_mask": mask, "image": torch.tensor([it.image for it in items])}
    if has_labels:
        batch["labels"] = labels
    return batch
