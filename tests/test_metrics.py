"""The paper's scores against hand-computed values, pooling, judge accuracy and the Fréchet distance."""

import numpy as np
import pytest
import torch

from unified import metrics
from unified.data.tasks import UndItem


def time_truth(h, m=0, s=0, hands="hm"):
    return {"hour": h, "minute": m, "second": s, "hands": hands}


def test_time_score_matches_hand_computed_values():
    # hour off by 1 of a half dial of 6, minute off by 30 of 30: 1 - (1/6 + 1) / 2
    assert metrics.time_score(time_truth(3, 45), "04:15") == pytest.approx(5 / 12)
    # the paper's three-hand formula, with circular errors across 12 and 60
    assert metrics.time_score(time_truth(11, 59, 0, "hms"), "01:01:30") == pytest.approx(1 - (2 / 6 + 2 / 30 + 1) / 3)
    assert metrics.time_score(time_truth(12, 0, hands="h"), "the time is 00:00") == 1.0
    assert metrics.time_score(time_truth(6, hands="h"), "12:00") == 0.0  # the farthest hour
    assert metrics.time_score(time_truth(3, 45), "03:45") == 1.0


def test_time_score_is_zero_without_a_parsable_time():
    assert metrics.time_score(time_truth(3, 45), "sunny") == 0.0
    assert metrics.time_score(time_truth(3, 45, 10, "hms"), "03:45") == 0.0  # seconds drawn but not given


def test_battery_and_substring_scores():
    assert metrics.battery_score({"battery": 60}, "75%") == pytest.approx(0.85)
    assert metrics.battery_score({"battery": 0}, "100 %") == 0.0
    assert metrics.battery_score({"battery": 60}, "bottom-left") == 0.0
    assert metrics.substring_score({"answer": "top-left"}, "in the top-left corner") == 1.0
    assert metrics.substring_score({"answer": "top-left"}, "top-right") == 0.0
    assert metrics.substring_score({"answer": "Dark-Light-Bright"}, "dark-light-bright") == 1.0


def test_und_scores_pool_items_not_metrics():
    items = [UndItem([], 0, "time", time_truth(3, 45)), UndItem([], 1, "time", time_truth(5, 0)),
             UndItem([], 2, "weather", {"answer": "sunny"})]
    out = metrics.und_scores(items, ["03:45", "nothing", "sunny"])
    assert out == {"eval/und/time": 0.5, "eval/und/weather": 1.0, "eval/und/total": pytest.approx(2 / 3)}
    with pytest.raises(ValueError):
        metrics.und_scores(items, ["03:45"])


def test_attr_accuracy_counts_only_mentioned_heads():
    labels = {"weather": np.array([0, 1, 2, 0]), "hour": np.array([3, 3, 3, 3])}
    pred = {"weather": torch.tensor([0, 2, 2, 1]), "hour": torch.tensor([3, 0, 0, 0])}
    mask = {"weather": np.array([True, True, True, False]), "hour": np.array([True, False, False, False])}
    assert metrics.attr_accuracy(pred, labels, mask) == pytest.approx(3 / 4)  # weather 2/3 + hour 1/1
    assert metrics.head_accuracies(pred, labels, mask) == {"weather": pytest.approx(2 / 3), "hour": 1.0}
    none = {h: np.zeros(4, bool) for h in labels}
    assert metrics.attr_accuracy(pred, labels, none) == 0.0 and metrics.head_accuracies(pred, labels, none) == {}


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 8))
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([1.0, -2.0] + [0.0] * 6)
    assert metrics.frechet_distance(a, a + shift) == pytest.approx(5.0, abs=1e-6)  # |shift|^2, same covariance
    b = rng.normal(size=(2000, 8)) * 2.0  # variance 4 vs 1 per dim: 8 * (1 + 4 - 2 * 2) = 8
    assert metrics.frechet_distance(a, b) == pytest.approx(8.0, rel=0.1)
    flat = np.concatenate([a[:, :4], np.zeros((2000, 4))], 1)  # singular covariance stays finite
    assert np.isfinite(metrics.frechet_distance(flat, flat + 0.5))
