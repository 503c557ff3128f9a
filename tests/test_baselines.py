"""Chance levels (unified/baselines.py, unified/evaluate.py): measured from data, never hard-coded."""

import numpy as np
import pytest

from unified import baselines, metrics
from unified import config as C
from unified.data.tasks import UndItem


def watch(**attrs):
    return {"hour": 3, "minute": 0, "second": 0, "weather": "sunny", "battery": 50, "weather_pos": "top left",
            "battery_pos": "top right", **attrs}


DATA = C.smoke(C.preset("smartwatch-cpu")).data  # hands "h": the time answer is the hour alone


def test_the_constant_answer_is_chosen_on_training_images_by_the_papers_metrics():
    train = [watch(weather="raining", battery=b, hour=h) for b, h in ((10, 1), (20, 2), (90, 3))]
    train += [watch(weather="sunny", battery=30, hour=2)]
    best = baselines.constant_answers(DATA, train, ["weather", "battery", "time"])
    assert best["weather"] == "raining"  # the majority answer
    # battery: 1 - |error|/100 is maximised by a median, not by the most frequent or the mean value
    assert best["battery"] in ("20%", "30%")
    assert best["time"] == "02:00"  # the circular median of hours 1, 2, 2, 3


def test_understanding_baseline_scores_the_constants_on_the_test_items_under_eval_keys():
    train = [watch(weather="raining")] * 3 + [watch(weather="sunny")]
    test = [watch(weather="raining"), watch(weather="cloudy"), watch(weather="raining"), watch(weather="sunny")]
    items = [UndItem([], i, "weather", {"answer": t["weather"]}, "weather") for i, t in enumerate(test)]
    out = baselines.understanding_baseline(DATA, train, items)
    assert out == {"baseline/und/weather": pytest.approx(0.5), "baseline/und/total": pytest.approx(0.5)}
    assert out["baseline/und/total"] == metrics.und_scores(items, ["raining"] * 4)["eval/und/total"]


def test_a_prompt_blind_generator_scores_the_same_against_shuffled_prompts():
    # one image for every prompt: its judged class never changes, so accuracy is the same whichever prompt
    rng = np.random.default_rng(0)
    labels = {"weather": rng.integers(0, 3, 600)}
    mask = {"weather": np.ones(600, bool)}
    blind = {"weather": np.zeros(600, int)}
    shuffled = {h: np.roll(v, -1) for h, v in labels.items()}
    assert metrics.attr_accuracy(blind, labels, mask) == pytest.approx(
        metrics.attr_accuracy(blind, shuffled, mask), abs=0.01)
    # a generator that follows the prompt scores 1 against it and chance against the next item's
    assert metrics.attr_accuracy(labels, labels, mask) == 1.0
    assert metrics.attr_accuracy(labels, shuffled, mask) < 0.45
