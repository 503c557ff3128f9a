"""SynthFaces: seeded rendering with visible attributes, templates and scores, frequency controls, and one
smoke-size training end to end through `data.domain: faces`."""

import itertools
import math

import numpy as np
import pytest

from unified import config as C
from unified import metrics
from unified.data import faces
from unified.data import faces_text as ft
from unified.data.dataset import load_pool
from unified.data.domains import get_domain
from unified.data.tasks import build_samples, eval_question_types
from unified.data.tokenizer import build_tokenizer, detokenize, encode, special_ids
from unified.data.turns import turn_attributes


@pytest.fixture(scope="module")
def faces_cfg():
    return C.resolve(C.smoke(C.preset("faces-cpu")))


@pytest.fixture(scope="module")
def faces_tok():
    return build_tokenizer("faces")


@pytest.fixture(scope="module")
def faces_pool(faces_cfg, cache_dir):
    return load_pool(faces_cfg.data, cache_dir)  # frequencies are not part of the pool key: one pool serves all


def draws(n, seed=0):
    rng = np.random.default_rng(seed)
    return [faces.sample_attributes(rng) for _ in range(n)]


def test_registry_and_presets():
    assert get_domain("faces") is faces
    for scale in ("cpu", "paper"):
        watch, face = C.flatten(C.preset(f"smartwatch-{scale}")), C.flatten(C.preset(f"faces-{scale}"))
        differ = {k for k in watch if watch.get(k) != face.get(k)} | {k for k in face if k not in watch}
        assert face["data.domain"] == "faces"
        # the watch's own keys and question mix (the cpu preset asks the face colour) stay with the watch
        assert differ <= {"data.domain", "data.hands", "data.battery_step", "data.battery_text",
                          "data.freq.vqa.face_color"}
        assert C.resolve(C.from_flat(C.flatten(C.resolve(C.preset(f"faces-{scale}"))))).data.domain == "faces"


def test_a_faces_cell_on_a_watch_base_takes_the_faces_question_mix():
    """A spec on smartwatch-cpu with a data.domain: faces cell (mutual_benefit): the base's watch frequencies
    are dropped, the cell resolves like faces-cpu, and a faces frequency given with it still applies."""
    cell = C.resolve(C.override(C.preset("smartwatch-cpu"), {"data.domain": "faces"}))
    assert cell.data.freq == C.resolve(C.preset("faces-cpu")).data.freq
    hat = C.resolve(C.override(C.preset("smartwatch-cpu"), {"data.domain": "faces", "data.freq.vqa.hat": 0.5}))
    assert hat.data.freq["vqa"]["hat"] == 0.5
    with pytest.raises(C.ConfigError, match="data.freq.vqa.face_color"):
        C.override(C.preset("faces-cpu"), {"data.freq.vqa.face_color": 0.2})


def test_the_siglip_image_loss_weight_is_each_domains_own_unless_a_config_sets_it():
    """model.alpha_siglip left unset takes the domain's calibration (faces 30, the watch 10), also in a faces cell
    of a watch-based spec; a value given wins, and the paper presets keep the paper's 1.0."""
    def alpha(name: str, **flat) -> float:
        return C.resolve(C.override(C.preset(name), {"model.variant": "vq-siglip", **flat})).model.alpha

    assert (alpha("smartwatch-cpu"), alpha("faces-cpu")) == (10.0, 30.0)
    assert alpha("smartwatch-cpu", **{"data.domain": "faces"}) == 30.0
    assert alpha("faces-cpu", **{"model.alpha_siglip": 12.5}) == 12.5
    assert alpha("faces-paper") == alpha("smartwatch-paper") == 1.0
    assert alpha("faces-cpu", **{"model.variant": "vq-vq"}) == alpha("smartwatch-cpu", **{"model.variant": "vq-vq"})


def test_the_default_question_mix_asks_the_hat_rarely_and_evaluates_it_like_the_rest(faces_cfg):
    """The hat's VQA weight is a quarter of the others' (one question in 21), captions and prompts still name it
    half the time, and evaluation asks it as often as every other question type."""
    vqa = faces_cfg.data.freq["vqa"]
    rng = np.random.default_rng(0)
    asked = [a for _ in range(21000) for a in turn_attributes(rng, ft.ATTRIBUTES, vqa, 0.0)]
    share = {a: asked.count(a) / len(asked) for a in set(asked)}
    assert set(share) == set(ft.ATTRIBUTES) - {"background"}
    assert share["hat"] == pytest.approx(1 / 21, abs=0.006)
    assert all(share[a] == pytest.approx(4 / 21, abs=0.012) for a in share if a != "hat")
    assert faces_cfg.data.freq["caption"]["hat"] == faces_cfg.data.freq["gen"]["hat"] == 0.5
    assert "hat" in eval_question_types(faces_cfg.data)


def test_render_is_deterministic_and_seeded(faces_cfg):
    a, b, c = draws(6, seed=1), draws(6, seed=1), draws(6, seed=2)
    assert a == b and a != c
    for res in (32, 48, 64, 224):
        d = C.override(faces_cfg, {"data.resolution": res}).data
        img = faces.render(a[0], d)
        assert img.dtype == np.uint8 and img.shape == (res, res, 3)
        assert faces.render(b[0], d).tobytes() == img.tobytes()
    d = faces_cfg.data
    assert faces.render(c[0], d).tobytes() != faces.render(a[0], d).tobytes()


def test_attribute_ranges_and_balance():
    rows = draws(600)
    for a in ft.ATTRIBUTES:
        seen = {r[a] for r in rows}
        assert seen == (set(range(2)) if a in ft.BINARY else set(ft.VALUES[a])), a
    for a in ft.BINARY:
        assert 0.4 < np.mean([r[a] for r in rows]) < 0.6
    labels = [faces.judge_labels(r) for r in rows]
    for head, k in faces.judge_heads().items():
        assert {lab[head] for lab in labels} == set(range(k))


def nuisance_corners() -> list[dict]:
    """Every corner of the nuisance box (2^7 faces): each nuisance at its smallest or largest value."""
    ranges = faces.NUISANCE.items()
    return [{k: c + s * r for (k, (c, r)), s in zip(ranges, signs, strict=True)}
            for signs in itertools.product((-1, 1), repeat=len(faces.NUISANCE))]


@pytest.mark.parametrize("attribute", ft.ATTRIBUTES)
def test_every_value_is_visible_at_32_px(attribute, faces_cfg):
    """Changing one attribute, all else fixed, moves many pixels by a lot, on every one of 20 random faces and
    of 128 faces at the corners of the nuisance box."""
    corners = [dict(a, **n) for a, n in zip(draws(128, seed=4), nuisance_corners(), strict=True)]
    for base in draws(20, seed=3) + corners:
        images = [faces.render(dict(base, **{attribute: v}), faces_cfg.data).astype(int)
                  for v in (range(2) if attribute in ft.BINARY else ft.VALUES[attribute])]
        for x, y in itertools.combinations(images, 2):
            changed = (np.abs(x - y).max(axis=-1) > 40).sum()
            assert changed >= 6, (attribute, base, changed)


def test_attribute_pixel_statistics(faces_cfg):
    """Where each cue sits at 32 px: hats add red above the face, smiles add dark red at the mouth, glasses
    darken and tint the eyes, beards put the hair colour below the mouth."""
    d, n = faces_cfg.data, 32
    # no nuisance keys: the face sits at its canonical place, where these regions were measured
    base = dict(hair_color="black", skin_tone="light", smiling=0, eyeglasses=0, hat=0, beard=0, background="blue")

    def img(**kw):
        return faces.render(dict(base, **kw), d).astype(int)

    def region(y0, y1, x0=0.0, x1=1.0):  # [rows, cols] in units of the image side
        return slice(int(y0 * n), int(y1 * n)), slice(int(x0 * n), int(x1 * n))

    def redness(x):  # r - (g + b) / 2
        return x[..., 0] - (x[..., 1] + x[..., 2]) / 2

    def blueness(x):  # b - r: the lens tint against skin
        return x[..., 2] - x[..., 0]

    top, mouth = region(0, 0.27), region(0.6, 0.78, 0.4, 0.6)
    eyes, chin = region(0.42, 0.58, 0.3, 0.7), region(0.74, 0.86, 0.35, 0.65)
    assert redness(img(hat=1)[top]).mean() > redness(img()[top]).mean() + 30
    assert redness(img(smiling=1)[mouth]).max() > 100 > redness(img()[mouth]).max()
    assert blueness(img(eyeglasses=1)[eyes]).mean() > blueness(img()[eyes]).mean() + 20
    assert img(eyeglasses=1)[eyes].mean() < img()[eyes].mean() - 20  # dark frames
    assert img(beard=1)[chin].mean() < img()[chin].mean() - 40  # a black beard on light skin


def test_templates_tokenize_without_unk_and_answers_round_trip(faces_cfg, faces_tok):
    d, sp = faces_cfg.data, special_ids(faces_tok)
    every = {a: 1.0 for a in ft.ATTRIBUTES}
    rng = np.random.default_rng(0)
    texts = [t for qs in ft.QUESTIONS.values() for t in qs] + ft.CAPTION_QUESTIONS + ft.ACKS
    for attrs in draws(200):
        texts += [faces.full_caption(attrs), *faces.caption(rng, attrs, d, every)[:2],
                  *faces.generation(rng, attrs, d, every)[:2]]
        texts += [t for turn in faces.vqa_turns(rng, attrs, d, every, 1.0) for t in turn[1:]]
    assert all(sp["<unk>"] not in ids for ids in encode(faces_tok, texts))
    for a in ft.ATTRIBUTES:
        for v in ft.VALUES[a]:
            (ids,) = encode(faces_tok, [v])
            assert detokenize(faces_tok, ids) == v


def test_no_template_word_contains_a_wrong_answer(faces_tok):
    """The substring scorer must not credit a wrong answer: no vocabulary word embeds another value's word
    ("eyes" holds "yes", "not" holds "no")."""
    words = [w for w in faces_tok.get_vocab() if not w.startswith("<")]
    for values in ft.VALUES.values():
        for v in values:
            assert [w for w in words if v in w] == [v], v


@pytest.mark.parametrize("attribute", ft.ATTRIBUTES)
def test_scorer_gives_one_to_the_truth_and_zero_to_a_wrong_answer(attribute):
    metric = ft.METRICS[attribute]
    for attrs in draws(30):
        t = faces.truth(attribute, attrs)
        assert metrics.score(metric, t, faces.answer(attribute, attrs)) == 1.0
        for wrong in (v for v in ft.VALUES[attribute] if v != t["answer"]):
            assert metrics.score(metric, t, wrong) == 0.0


def test_und_scores_per_attribute_and_total(faces_cfg, faces_tok, faces_pool):
    data = build_samples(faces_cfg, faces_pool, faces_tok, n_in=16, n_out=16)
    truths = [it.truth["answer"] for it in data.eval_und]
    out = metrics.und_scores(data.eval_und, truths)
    assert out["eval/und/total"] == 1.0
    assert set(out) == {f"eval/und/{a}" for a in ft.ATTRIBUTES if a != "background"} | {"eval/und/total"}
    wrong = [next(v for v in ft.VALUES[it.metric] if v != it.truth["answer"]) for it in data.eval_und]
    assert metrics.und_scores(data.eval_und, wrong)["eval/und/total"] == 0.0


def test_frequency_controls(faces_cfg, faces_tok, faces_pool):
    """hat at frequency 0 in understanding: no VQA turn asks it, no caption names it, the word never appears;
    generation still names it. The background, 0 by default, is never asked or named until switched on."""
    cfg = C.resolve(C.override(faces_cfg, {"data.freq.vqa.hat": 0.0, "data.freq.caption.hat": 0.0,
                                           "data.freq.gen.hat": 1.0, "data.caption_share": 0.5}))
    data = build_samples(cfg, faces_pool, faces_tok, n_in=16, n_out=16)
    hat = faces_tok.convert_tokens_to_ids("hat")
    assert {s.kind for s in data.und} == {"vqa", "caption"}
    assert not any("hat" in s.mentions or hat in s.ids for s in data.und)
    assert all("hat" in s.mentions for s in data.gen) and any(hat in s.ids for s in data.gen)
    assert not any("background" in s.mentions for s in data.und + data.gen)
    assert "background" not in eval_question_types(cfg.data)

    on = C.resolve(C.override(faces_cfg, {"data.freq.gen.background": 1.0}))
    gen = build_samples(on, faces_pool, faces_tok, n_in=16, n_out=16)
    assert all("background" in s.mentions for s in gen.gen)
    assert "background" in eval_question_types(on.data)
    assert all(it.mask["background"] for it in gen.eval_gen)


def test_pool_columns_and_judge_labels(faces_pool):
    pool = faces_pool
    assert pool.images("test").shape == (64, 32, 32, 3)
    labels = pool.judge_labels("train")
    assert set(labels) == set(faces.judge_heads())
    assert all(labels[h].max() < k for h, k in faces.judge_heads().items())
    assert pool.full_captions("test")[0].startswith(ft.CAPTION_OPENERS[0])


# ---------------------------------------------------------------- end to end


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, metrics, step, state=None):
        self.calls.append((step, dict(metrics)))


@pytest.fixture(scope="module")
def smoke_run(cache_dir):
    from unified.train import train

    rec = Recorder()
    final = train(C.resolve(C.smoke(C.preset("faces-cpu"))), rec, cache_dir=cache_dir)
    return final, rec


@pytest.mark.slow  # builds SynthFaces' stage 0 (about a minute), then trains
def test_smoke_training_on_faces(smoke_run):
    final, rec = smoke_run
    assert {"eval/und/total", "eval/gen/attr_acc", "eval/gen/fd", "train/loss"} <= set(final)
    assert {f"eval/und/{a}" for a in ft.ATTRIBUTES if a != "background"} <= set(final)
    assert all(math.isfinite(v) for v in final.values())
    stage0 = rec.calls[0][1]
    assert {f"stage0/judge/{h}" for h in faces.judge_heads()} <= set(stage0)
