"""Speed-ups must not move a result: each fast path of a trial against the plain computation it replaced.

The evaluation's shortcuts (docs/LOG.md, 2026-12-08, where a trial's time goes) are one judge pass for the
predictions and the features of generated images, the real images' judge features computed once per trial,
and each distinct answer detokenized once. The smoke trial here runs twice, once with each shortcut swapped
back for the plain call, and every metric of every report must match to the last bit. About 15 s on one core.
"""

import pytest
import torch

import unified.evaluate as E
from unified import config as C
from unified.data.tokenizer import detokenize
from unified.train import train
from unified.vision.judge import FixedFeatures, Judge


def smoke(**overrides):
    return C.resolve(C.override(C.smoke(C.preset("smartwatch-cpu")), overrides))


class Recorder:
    def __init__(self):
        self.reports = []

    def __call__(self, metrics, step, state=None):
        # wall-clock times differ between identical runs; everything else must not
        self.reports.append((step, {k: v for k, v in metrics.items() if not k.startswith("time/")}))


def plain_paths(monkeypatch):
    """The evaluation as it was before its shortcuts: two judge passes, no memo, one detokenize per answer."""
    monkeypatch.setattr(Judge, "predict_and_features",
                        lambda self, images, batch=512: (self.predict(images, batch), self.features(images, batch)))
    monkeypatch.setattr(E, "_REAL_FEATURES", lambda judge, images: judge.features(images))
    monkeypatch.setattr(E, "_detokenizer", lambda tok: lambda ids: detokenize(tok, ids))


def judge_passes(monkeypatch) -> list[int]:
    """Counts the judge's forward passes (images per pass), so the test knows the shortcuts were taken."""
    passes, forward = [], Judge.forward

    def counted(self, pixels):
        passes.append(len(pixels))
        return forward(self, pixels)

    monkeypatch.setattr(Judge, "forward", counted)
    return passes


def test_a_trial_reports_the_same_metrics_with_and_without_the_shortcuts(cache_dir, monkeypatch):
    cfg = smoke(**{"model.variant": "vq-vq", "seed": 5})
    monkeypatch.setattr(E, "_REAL_FEATURES", FixedFeatures())  # cold, as in a fresh trial process
    fast, fast_passes = Recorder(), judge_passes(monkeypatch)
    train(cfg, fast, cache_dir=cache_dir)
    fast_passes = len(fast_passes)  # the counter stays on through the plain run below

    with monkeypatch.context() as m:
        plain_paths(m)
        plain, plain_passes = Recorder(), judge_passes(m)
        train(cfg, plain, cache_dir=cache_dir)

    assert [step for step, _ in fast.reports] == [step for step, _ in plain.reports]
    for (step, a), (_, b) in zip(fast.reports, plain.reports, strict=True):
        assert a.keys() == b.keys(), step
        assert a == b, {k: (a[k], b[k]) for k in a if a[k] != b[k]}  # exact: no tolerance anywhere
    evals = sum(1 for _, m in fast.reports if "eval/gen/fd" in m)
    assert evals == 2 and any(m["eval/und/total"] > 0 or m["eval/gen/attr_acc"] > 0 for _, m in fast.reports
                              if "eval/gen/fd" in m)
    # Per eval point the plain path runs the judge on the generated images twice and the real ones once;
    # the fast one on the generated once, and on the real ones at the first eval point only.
    assert len(plain_passes) - fast_passes == 2 * evals - 1


def test_one_judge_pass_gives_what_the_two_calls_give():
    torch.manual_seed(0)
    judge = Judge({"a": 3, "b": 5}, width=8, feature_dim=16).eval()
    images = torch.randint(0, 256, (11, 32, 32, 3), dtype=torch.uint8)
    for batch in (4, 512):  # several chunks and one
        pred, feats = judge.predict_and_features(images, batch)
        alone = judge.predict(images, batch)
        assert pred.keys() == alone.keys() and all(torch.equal(pred[h], alone[h]) for h in alone)
        assert torch.equal(feats, judge.features(images, batch))
    pred, feats = judge.predict_and_features(images[:0])
    assert feats.shape == (0, 16) and all(p.shape == (0,) for p in pred.values())


def test_fixed_features_recompute_for_new_images_new_weights_and_another_judge():
    torch.manual_seed(0)
    judge = Judge({"a": 3}, width=8, feature_dim=16).eval()
    images = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    memo = FixedFeatures()
    first = memo(judge, images)
    assert memo(judge, images.clone()) is first  # the same pixels: no second pass
    assert torch.equal(first, judge.features(images))

    other = images.clone()
    other[0, 0, 0, 0] ^= 1
    assert torch.equal(memo(judge, other), judge.features(other))  # one pixel differs: recomputed

    with torch.no_grad():
        judge.neck[0].weight.mul_(2.0)  # weights changed in place, as training or load_state_dict would
    assert torch.equal(memo(judge, other), judge.features(other))

    twin = Judge({"a": 3}, width=8, feature_dim=16).eval()
    twin.load_state_dict(judge.state_dict())
    with torch.no_grad():
        twin.neck[0].bias.add_(1.0)
    assert torch.equal(memo(twin, other), twin.features(other))  # another judge, never the first one's features
    assert not torch.equal(twin.features(other), judge.features(other))


@pytest.mark.parametrize("ids", [[5, 6, 7], []])
def test_the_answer_memo_returns_what_detokenize_returns(tokenizer, ids):
    text = E._detokenizer(tokenizer)
    assert text(torch.tensor(ids, dtype=torch.long)) == text(ids) == detokenize(tokenizer, ids)
