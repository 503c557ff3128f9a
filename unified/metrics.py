"""The paper's per-item scores (docs/PAPER.md §5, docs/DESIGN.md §2), judge attribute accuracy and the Fréchet distance.

Understanding items carry a `metric` name and a `truth` dict (built by the domain's `truth()`):
- `time`: 1 - mean over the drawn hands of circular error / half the dial (e_h/6, e_m/30, e_s/30); 0 when the
  answer has no time with the drawn fields ("HH:MM" for h and hm, "HH:MM:SS" for hms).
- `battery`: 1 - |predicted % - true %| / 100; 0 when the answer has no number.
- every other metric (weather, position, face colour, ...): 1 if the expected answer is a substring of the answer.
"""

from __future__ import annotations

import re

import numpy as np

# The `eval/gen/<key>` metrics unified/evaluate.py logs (a sweep's `search.metric` is checked against them).
GEN_KEYS = ("attr_acc", "attr_acc_shuffled", "fd", "token_acc", "feat_cos")
TIME = re.compile(r"(\d{1,2})\s*:\s*(\d{1,2})(?:\s*:\s*(\d{1,2}))?")
NUMBER = re.compile(r"\d+")


def _circular(a: int, b: int, period: int) -> int:
    d = abs(a - b) % period
    return min(d, period - d)


def time_score(truth: dict, answer: str) -> float:
    m = TIME.search(answer)
    hands = truth.get("hands", "hms")
    if m is None or (hands == "hms" and m.group(3) is None):
        return 0.0
    h, mi = int(m.group(1)), int(m.group(2))
    errors = [_circular(h, truth["hour"], 12) / 6]
    if hands in ("hm", "hms"):
        errors.append(_circular(mi, truth["minute"], 60) / 30)
    if hands == "hms":
        errors.append(_circular(int(m.group(3)), truth["second"], 60) / 30)
    return 1.0 - float(np.mean(errors))


def battery_score(truth: dict, answer: str) -> float:
    m = NUMBER.search(answer)
    if m is None:
        return 0.0
    return max(0.0, 1.0 - abs(int(m.group()) - truth["battery"]) / 100)


def substring_score(truth: dict, answer: str) -> float:
    return float(truth["answer"].lower() in answer.lower())


SCORERS = {"time": time_score, "battery": battery_score}


def score(metric: str, truth: dict, answer: str) -> float:
    return SCORERS.get(metric, substring_score)(truth, answer)


def und_scores(items, answers: list[str]) -> dict[str, float]:
    """`eval/und/<metric>` (mean per metric present) and `eval/und/total` (pooled mean over all items)."""
    if len(items) != len(answers):
        raise ValueError(f"{len(items)} items but {len(answers)} answers")
    by_metric: dict[str, list[float]] = {}
    for item, ans in zip(items, answers, strict=True):
        by_metric.setdefault(item.metric, []).append(score(item.metric, item.truth, ans))
    out = {f"eval/und/{m}": float(np.mean(v)) for m, v in sorted(by_metric.items())}
    out["eval/und/total"] = float(np.mean([s for v in by_metric.values() for s in v])) if items else 0.0
    return out


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def head_accuracies(pred: dict, labels: dict, mask: dict) -> dict[str, float]:
    """head -> accuracy over the items whose prompt mentions that head (heads never mentioned are left out)."""
    out = {}
    for h in labels:
        m = _np(mask[h]).astype(bool)
        if m.any():
            out[h] = float((_np(pred[h])[m] == _np(labels[h])[m]).mean())
    return out


def attr_accuracy(pred: dict, labels: dict, mask: dict) -> float:
    """Judge accuracy on generated images: the mean over every mentioned (item, head) pair."""
    hits = total = 0
    for h in labels:
        m = _np(mask[h]).astype(bool)
        hits += int((_np(pred[h])[m] == _np(labels[h])[m]).sum())
        total += int(m.sum())
    return hits / total if total else 0.0


def _psd_sqrt(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(a, b) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N, f] and b [M, f] (pytorch-fid's formula).

    tr sqrt(C_a C_b) is computed as tr sqrt(C_a^1/2 C_b C_a^1/2), a symmetric PSD matrix: eigenvalues stay real
    and singular covariances (constant features, fewer items than dimensions) need no special case."""
    a, b = _np(a).astype(np.float64), _np(b).astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root_a = _psd_sqrt(cov_a)
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    fd = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * tr_covmean)
    return max(fd, 0.0)
