"""SmartWatch rendering and templates, the tokenizer, the cached image pool and the trial's sample budget."""

import dataclasses
import re

import numpy as np
import pytest

from unified import config
from unified.data import smartwatch as sw
from unified.data import smartwatch_text as swt
from unified.data.dataset import load_pool
from unified.data.domains import get_domain
from unified.data.tasks import IGNORE, build_samples, collate, gen_targets, sample_counts
from unified.data.tokenizer import build_tokenizer, detokenize, encode, save_tokenizer, special_ids

COLOUR = re.compile(r"^(Dark|Medium|Light|Bright)-(Dark|Medium|Light|Bright)-(Dark|Medium|Light|Bright)$")


def draws(data_cfg, n, seed=0):
    rng = np.random.default_rng(seed)
    return [sw.sample_attributes(rng, data_cfg) for _ in range(n)]


def test_domain_registry():
    assert get_domain("smartwatch") is sw
    with pytest.raises(KeyError, match="unknown domain 'x'; valid: smartwatch"):
        get_domain("x")


def test_render_is_deterministic_and_seeded(smoke_cfg):
    d = smoke_cfg.data
    a, b, c = draws(d, 5, seed=1), draws(d, 5, seed=1), draws(d, 5, seed=2)
    assert a == b and a != c
    imgs = [sw.render(x, d) for x in a]
    assert all(i.dtype == np.uint8 and i.shape == (32, 32, 3) for i in imgs)
    assert all(sw.render(x, d).tobytes() == i.tobytes() for x, i in zip(b, imgs, strict=True))
    assert sw.render(c[0], d).tobytes() != imgs[0].tobytes()


def test_attribute_ranges(smoke_cfg):
    hm = dataclasses.replace(smoke_cfg.data, hands="hm", battery_step=25)
    for attrs in draws(hm, 300):
        assert attrs["weather_pos"] != attrs["battery_pos"]
        assert {attrs["weather_pos"], attrs["battery_pos"]} <= set(sw.CORNERS)
        assert attrs["battery"] % 25 == 0 and 0 <= attrs["battery"] <= 100
        assert 1 <= attrs["hour"] <= 12 and attrs["second"] == 0
        assert COLOUR.match(sw.colour_name(attrs["face_r"], attrs["face_g"], attrs["face_b"]))
    assert len({a["minute"] for a in draws(hm, 300)}) > 40
    assert all(a["minute"] == 0 for a in draws(smoke_cfg.data, 50))  # hands "h": undrawn minute is 0
    assert sw.colour_name(0, 64, 255) == "Dark-Medium-Bright" and sw.colour_name(127, 128, 191) == "Medium-Light-Light"


def test_widgets_sit_in_their_corners_only(smoke_cfg):
    d = smoke_cfg.data
    attrs = dict(draws(d, 1)[0], weather_pos="top-left", battery_pos="bottom-right")
    img = sw.render(attrs, d).astype(int)

    def box(corner):
        x0, y0, s = sw.corner_box(corner, d.resolution)
        half = 0 if corner == "top-left" else s // 2  # the quarter of the box nearest the image corner
        return img[y0 + half:y0 + half + s // 2, x0 + half:x0 + half + s // 2]

    white = lambda patch: (patch == 255).all()
    assert not white(box("top-left")) and not white(box("bottom-right"))
    assert white(img[:3, -3:]) and white(img[-3:, :3])  # the two free corners stay blank
    sunny, raining = (sw.render(dict(attrs, weather=w), d) for w in ("sunny", "raining"))
    assert (sunny != raining).any()


def test_judge_heads_follow_drawn_hands_and_battery_step(smoke_cfg):
    d = smoke_cfg.data
    assert sw.judge_heads(d) == {"weather": 3, "weather_pos": 4, "battery_pos": 4, "hour": 12, "battery": 6,
                                 "face_r": 4, "face_g": 4, "face_b": 4}
    fine = dataclasses.replace(d, hands="hms", battery_step=1)
    assert {"minute", "second"} <= set(sw.judge_heads(fine)) and sw.judge_heads(fine)["battery"] == 6
    labels = sw.judge_labels(dict(draws(fine, 1)[0], battery=89, minute=59, hour=12), fine)
    assert labels["battery"] == 4 and labels["minute"] == 11 and labels["hour"] == 0


def test_templates_and_frequency_controls(smoke_cfg):
    cpu_vqa = smoke_cfg.data.freq["vqa"]  # the cpu preset asks the face colour in one VQA question in six
    d = dataclasses.replace(smoke_cfg.data, freq=sw.default_freq())  # the paper's mix
    assert all(len(qs) >= 9 for qs in swt.QUESTIONS.values()) and len(swt.CAPTION_QUESTIONS) == 10
    rng, attrs_list = np.random.default_rng(0), draws(d, 2000)
    gens = [sw.generation(rng, a, d, d.freq["gen"]) for a in attrs_list]
    assert all("face_color" not in m and "time" in m for _, _, m in gens)  # paper defaults: colour never named
    assert 0.45 < np.mean(["weather" in m for _, _, m in gens]) < 0.55
    caps = [sw.caption(rng, a, d, d.freq["caption"])[1] for a in attrs_list[:300]]
    names = [sw.colour_name(a["face_r"], a["face_g"], a["face_b"]) for a in attrs_list[:300]]
    assert not any(name in c for name, c in zip(names, caps, strict=True))

    probs = dict(d.freq["gen"], face_color=0.3)
    share = np.mean(["face_color" in sw.generation(rng, a, d, probs)[2] for a in attrs_list])
    assert 0.26 < share < 0.34
    weights = dict(d.freq["vqa"], face_color=0.25)  # relative weight: 0.25 / (1 + 0.25) of the turns
    turns = [t for a in attrs_list[:1000] for t in sw.vqa_turns(rng, a, d, weights, 0.4)]
    assert 0.17 < np.mean([t[0] == "face_color" for t in turns]) < 0.23
    assert all(COLOUR.match(t[2]) for t in turns if t[0] == "face_color")
    asked = {t[0] for t in sw.vqa_turns(rng, attrs_list[0], d, d.freq["vqa"], 1.0)}
    assert asked <= set(sw.ATTRIBUTES) - {"face_color"}
    n_turns = [len(sw.vqa_turns(rng, a, d, d.freq["vqa"], 0.4)) for a in attrs_list]
    assert np.mean(n_turns) == pytest.approx(1 + 3 * 0.4, abs=0.1)
    cpu_turns = [t for a in attrs_list[:1000] for t in sw.vqa_turns(rng, a, d, cpu_vqa, 0.4)]
    assert 0.13 < np.mean([t[0] == "face_color" for t in cpu_turns]) < 0.20


def test_tokenizer_round_trip(smoke_cfg, tokenizer, tmp_path):
    d = dataclasses.replace(smoke_cfg.data, hands="hms", battery_step=1)
    sp = special_ids(tokenizer)
    assert sp["<pad>"] == 0 and len(set(sp.values())) == 10
    rng = np.random.default_rng(0)
    texts = []
    for a in draws(d, 200):
        texts += [*sw.caption(rng, a, d, dict.fromkeys(sw.ATTRIBUTES, 1.0))[:2], sw.full_caption(a, d)]
        texts += [x for t in sw.vqa_turns(rng, a, d, dict.fromkeys(sw.ATTRIBUTES, 1.0), 1.0) for x in t[1:]]
    ids = encode(tokenizer, texts)
    assert all(sp["<unk>"] not in x for x in ids)
    assert [detokenize(tokenizer, x) for x in ids] == [t.lower() for t in texts]
    assert tokenizer.convert_ids_to_tokens(encode(tokenizer, ["03:45, 60%"])[0]) == ["03", ":", "45", ",", "60", "%"]
    assert detokenize(tokenizer, [sp["<ans>"], *ids[0], sp["<eos>"], *ids[1]]) == texts[0].lower()
    save_tokenizer(tokenizer, tmp_path)
    assert encode(build_tokenizer("smartwatch", path=str(tmp_path)), texts[:5]) == ids[:5]


def test_pool_is_cached_and_consistent(smoke_cfg, pool, cache_dir):
    d = smoke_cfg.data
    again = load_pool(dataclasses.replace(d, tasks="generation", und_samples=7, freq={}), cache_dir)
    assert again.key == pool.key and not again.rendered  # tasks and budgets do not re-render
    assert load_pool(dataclasses.replace(d, seed=1), cache_dir).key != pool.key
    train, test = pool.images("train"), pool.images("test")
    assert train.dtype == np.uint8 and train.shape == (256, 32, 32, 3) and test.shape == (64, 32, 32, 3)
    assert train.flags.writeable  # torch.from_numpy takes it without a warning
    assert np.array_equal(again.images("train"), train)
    attrs = pool.attrs("train")
    assert np.array_equal(sw.render(attrs[3], d), train[3])
    assert attrs[:5] != pool.attrs("test")[:5]  # a disjoint stream
    labels = pool.judge_labels("test")
    assert set(labels) == set(sw.judge_heads(d)) and all(v.shape == (64,) for v in labels.values())
    caps = pool.full_captions("train")
    assert sw.colour_name(attrs[0]["face_r"], attrs[0]["face_g"], attrs[0]["face_b"]) in caps[0]


def arm(smoke_cfg, **overrides):
    """The smoke config with dotted-key overrides, resolved again (gen_ratio, freq defaults)."""
    return config.resolve(config.override(smoke_cfg, overrides))


def test_budget_semantics(smoke_cfg):
    budget = {"data.und_samples": 100, "data.gen_samples": 40}
    counts = {(t, m): sample_counts(arm(smoke_cfg, **budget, **{"data.tasks": t, "data.mix_mode": m}).data)
              for t in config.TASKS for m in config.MIX_MODES}
    assert counts == {("mixed", "added"): (100, 40), ("mixed", "replace"): (100, 40), ("mixed", "matched"): (100, 40),
                      ("understanding", "added"): (100, 0), ("understanding", "replace"): (140, 0),
                      ("understanding", "matched"): (100, 0),  # the mixed arm's updates: tests/test_matched.py
                      ("generation", "added"): (0, 40), ("generation", "replace"): (0, 140),
                      ("generation", "matched"): (0, 40)}
    assert sample_counts(arm(smoke_cfg, **{"data.gen_ratio": 0.5, "data.und_samples": 100}).data) == (100, 50)
    assert sample_counts(arm(smoke_cfg, **{"data.gen_ratio": 3.0, "data.total_samples": 200}).data) == (50, 150)


def test_build_samples(smoke_cfg, pool, tokenizer):
    sp = special_ids(tokenizer)
    data = build_samples(smoke_cfg, pool, tokenizer, n_in=16, n_out=16)
    assert len(data.und) == 256 and len(data.gen) == 256
    assert [s.image for s in data.und] == [s.image for s in data.gen]  # the same images for both tasks
    assert len({s.image for s in data.und}) == 256
    share = smoke_cfg.data.caption_share  # each understanding sample is a caption with this probability
    assert abs(np.mean([s.kind == "caption" for s in data.und]) - share) < 4 * (share * (1 - share) / 256) ** 0.5
    # the colour is never named in captions or prompts; the cpu preset asks it in VQA only
    assert not any("face_color" in s.mentions for s in data.gen + [u for u in data.und if u.kind == "caption"])
    assert any("face_color" in s.mentions for s in data.und if s.kind == "vqa")
    assert all("time" in s.mentions for s in data.und if s.kind == "caption")
    seen = sorted((t, i) for und, gen in data.steps for t, ids in (("u", und), ("g", gen)) for i in ids)
    assert seen == sorted([("u", i) for i in range(256)] + [("g", i) for i in range(256)])  # one epoch
    assert len(data.steps) == 16 and all(len(u) + len(g) == 32 for u, g in data.steps)
    vqa = next(s for s in data.und if s.kind == "vqa")
    assert vqa.ids[:17] == [sp["<bos>"]] + [sp["<img_in>"]] * 16 and vqa.ids[-1] == sp["<eos>"]
    answer = detokenize(tokenizer, [t for t in vqa.labels if t != IGNORE])
    assert answer and answer in detokenize(tokenizer, vqa.ids)
    g = data.gen[0]
    assert g.ids.count(sp["<img_out>"]) == 16
    assert detokenize(tokenizer, [t for t in g.labels if t != IGNORE]) in [a.lower() for a in sw.ACKS]
    assert g.labels[g.ids.index(sp["<boi>"])] == sp["<boi>"]

    same = build_samples(smoke_cfg, pool, tokenizer, 16, 16)
    other = build_samples(dataclasses.replace(smoke_cfg, seed=1), pool, tokenizer, 16, 16)
    assert [s.ids for s in same.und] == [s.ids for s in data.und] and same.steps == data.steps
    assert [s.ids for s in other.und] != [s.ids for s in data.und]
    assert [(i.ids, i.image, i.truth) for i in other.eval_und] == [(i.ids, i.image, i.truth) for i in data.eval_und]

    und_only = arm(smoke_cfg, **{"data.tasks": "understanding", "train.steps": 20})
    stepped = build_samples(und_only, pool, tokenizer, 16, 16)
    assert len(stepped.steps) == 20 and all(len(u) == 32 and not g for u, g in stepped.steps)


def test_eval_items(smoke_cfg, pool, tokenizer):
    sp = special_ids(tokenizer)
    data = build_samples(smoke_cfg, pool, tokenizer, 16, 16)
    assert {i.metric for i in data.eval_und} == {"time", "weather", "battery", "position", "face_color"}
    assert len(data.eval_und) == 6 * smoke_cfg.train.eval_items and all(i.ids[-1] == sp["<ans>"] for i in data.eval_und)
    assert all(i.ids[-1] == sp["<boi>"] for i in data.eval_gen) and len(data.eval_gen) == 16
    labels, mask = gen_targets(data.eval_gen)
    assert mask["hour"].all() and not mask["face_r"].any() and 0 < mask["weather"].mean() < 1
    assert np.array_equal(labels["hour"], pool.judge_labels("test")["hour"][:16])

    transfer = build_samples(arm(smoke_cfg, **{"data.freq.gen.face_color": 1.0}), pool, tokenizer, 16, 16)
    colour = [i for i in transfer.eval_und if i.metric == "face_color"]
    assert len(colour) == smoke_cfg.train.eval_items and all(COLOUR.match(i.truth["answer"]) for i in colour)
    assert gen_targets(transfer.eval_gen)[1]["face_g"].all()


def test_collate_pads_both_sides(smoke_cfg, pool, tokenizer):
    data = build_samples(smoke_cfg, pool, tokenizer, 16, 16)
    items = data.und[:4]
    right = collate(items, pad_id=0)
    n = [len(s.ids) for s in items]
    assert right["input_ids"].shape == right["labels"].shape == (4, max(n))
    assert right["attention_mask"].sum(1).tolist() == n and right["image"].tolist() == [s.image for s in items]
    assert right["input_ids"][0, : n[0]].tolist() == items[0].ids and right["labels"][0, n[0]:].eq(IGNORE).all()
    left = collate(data.eval_gen[:4], pad_id=0, side="left")
    assert "labels" not in left and left["input_ids"][:, -1].eq(special_ids(tokenizer)["<boi>"]).all()
