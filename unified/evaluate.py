"""Evaluation at one point of training: the paper's VQA scores and judge-based generation scores.

Understanding (docs/PAPER.md §5): the first QA turn of each test item, greedy decoding, scored per question type
and pooled into `eval/und/total`. Generation (docs/DESIGN.md §2): generated images are decoded to pixels through
the output space's frozen decoder and scored by the frozen judge against the attributes the prompt named
(`eval/gen/attr_acc`) and, as its prompt-blind chance level, against another item's prompt
(`eval/gen/attr_acc_shuffled`: the difference is what the prompt controls; per judge head as
`eval/gen/head/<head>` and `eval/gen/head_shuffled/<head>`), by a Fréchet distance to the real
test images in the judge's feature space (`eval/gen/fd`), and in the output space itself (`eval/gen/feat_cos`
or `eval/gen/token_acc`).
Only the sides a run trained are scored: an understanding-only run has no generation metrics and vice versa.
"""

from __future__ import annotations

import numpy as np
import torch

from unified import metrics
from unified.data.tasks import collate
from unified.data.tokenizer import detokenize
from unified.vision.judge import FixedFeatures

EVAL_BATCH = 128
SHOWN_IMAGES = 16  # generated images (and their real counterparts) handed to `report` for an image grid
# The real test images' judge features are the same at every eval point of a trial: computed once.
_REAL_FEATURES = FixedFeatures()


def _chunks(items, size):
    for i in range(0, len(items), size):
        yield items[i : i + size]


@torch.no_grad()
def evaluate_understanding(model, items, in_space, special, tokenizer, device) -> dict[str, float]:
    answers, text = [], _detokenizer(tokenizer)
    for chunk in _chunks(items, EVAL_BATCH):
        batch = collate(chunk, special["<pad>"], side="left")
        image = batch.pop("image")
        batch = {k: v.to(device) for k, v in batch.items()}
        batch["image_feats"] = in_space.test[image].to(device)  # [b, n_in, d_in]
        answers += [text(ids) for ids in model.generate_answers(batch, max_new_tokens=10)]
    return metrics.und_scores(items, answers)


def _detokenizer(tokenizer):
    """`detokenize`, once per distinct answer: thousands of answers are a few dozen strings, and each call
    looked the special ids up again (6 % of an evaluation, docs/LOG.md 2026-12-08)."""
    memo: dict[tuple[int, ...], str] = {}

    def text(ids) -> str:
        key = tuple(int(i) for i in ids)
        if key not in memo:
            memo[key] = detokenize(tokenizer, key)
        return memo[key]

    return text


@torch.no_grad()
def generate_images(model, items, out_space, spaces, special, device) -> tuple[np.ndarray, torch.Tensor]:
    """Pixels (uint8 [N, H, W, 3]) and raw outputs (features or codes) for generation prompts."""
    pixels, raw = [], []
    for chunk in _chunks(items, EVAL_BATCH):
        batch = collate(chunk, special["<pad>"], side="left")
        batch.pop("image")
        out = model.generate_images({k: v.to(device) for k, v in batch.items()})
        raw.append(out.cpu())
        pixels.append(np.asarray(spaces.decode(out_space.kind, out.cpu())))
    return np.concatenate(pixels), torch.cat(raw)


@torch.no_grad()
def evaluate_generation(model, items, out_space, spaces, pool, special, device) -> tuple[dict[str, float], dict]:
    """Generation scores, and the first SHOWN_IMAGES generated images with the real ones their prompts describe
    and what each prompt asked for ("prompts": an array of strings)."""
    pixels, raw = generate_images(model, items, out_space, spaces, special, device)
    image = torch.tensor([it.image for it in items])
    judge = spaces.judge
    pred, feats = judge.predict_and_features(torch.from_numpy(pixels))  # one judge pass, not two
    pred = {h: v.cpu().numpy() for h, v in pred.items()}
    labels = {h: np.array([it.labels[h] for it in items]) for h in items[0].labels}
    mask = {h: np.array([it.mask[h] for it in items]) for h in items[0].mask}
    real = torch.from_numpy(pool.images("test")[image.numpy()])
    # A fixed derangement (each item scored against the next item's prompt): what a generator that ignores
    # the prompt scores, measured on the same images and prompts.
    shuffled = {h: np.roll(v, -1) for h, v in labels.items()}, {h: np.roll(v, -1) for h, v in mask.items()}
    out = {
        "eval/gen/attr_acc": metrics.attr_accuracy(pred, labels, mask),
        "eval/gen/attr_acc_shuffled": metrics.attr_accuracy(pred, *shuffled),
        "eval/gen/fd": metrics.frechet_distance(feats.cpu().numpy(), _REAL_FEATURES(judge, real).cpu().numpy()),
    }
    # Per judge head, so a prompt-following score shows which attributes the prompt actually controls.
    for h, acc in metrics.head_accuracies(pred, labels, mask).items():
        out[f"eval/gen/head/{h}"] = acc
    for h, acc in metrics.head_accuracies(pred, *shuffled).items():
        out[f"eval/gen/head_shuffled/{h}"] = acc
    if out_space.kind == "vq":
        out["eval/gen/token_acc"] = float((raw == out_space.codes_test[image]).float().mean())
    else:
        target = out_space.test[image]  # [N, n_out, d]
        out["eval/gen/feat_cos"] = float(torch.nn.functional.cosine_similarity(raw, target, dim=-1).mean())
    prompts = np.array([it.attributes for it in items[:SHOWN_IMAGES]])
    return out, {"generated": pixels[:SHOWN_IMAGES], "real": real[:SHOWN_IMAGES].numpy(), "prompts": prompts}


def evaluate(model, data, pool, spaces, in_space, out_space, cfg, special, tokenizer,
             device) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Metrics of the sides the run trained, and sample images (uint8 [k, H, W, 3]) when it generates."""
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    images: dict[str, np.ndarray] = {}
    if cfg.data.tasks != "generation":
        out.update(evaluate_understanding(model, data.eval_und, in_space, special, tokenizer, device))
    if cfg.data.tasks != "understanding":
        scores, images = evaluate_generation(model, data.eval_gen, out_space, spaces, pool, special, device)
        out.update(scores)
    model.train(was_training)
    return out, images
