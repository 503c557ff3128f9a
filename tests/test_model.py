"""UnifiedModel and backbone: losses of the four variants, adapter sharing, inference against teacher forcing,
left-padded decoding, freezing, the affine map, overfitting and the checkpoint round trip.

Self-contained: a tiny synthetic vocabulary, random features and SimpleNamespace spaces (no data/vision build).
"""

import dataclasses
import types

import pytest
import torch

from unified.adapters import AffineMap
from unified.backbone import build_backbone
from unified.config import BackboneConfig, ExperimentConfig, ModelConfig
from unified.model import build_model

torch.set_num_threads(1)

SPECIAL = {name: i for i, name in enumerate(
    ["<pad>", "<bos>", "<eos>", "<unk>", "<img_in>", "<img_out>", "<usr>", "<ans>", "<boi>", "<eoi>"])}
WORDS = list(range(len(SPECIAL), len(SPECIAL) + 20))
VOCAB = len(SPECIAL) + len(WORDS)
N_TOKENS = 4
SPACES = {
    "siglip": types.SimpleNamespace(kind="siglip", n_tokens=N_TOKENS, dim=16,
                                    train=3 * torch.randn(8, N_TOKENS, 16, generator=torch.Generator().manual_seed(1))),
    "vq": types.SimpleNamespace(kind="vq", n_tokens=N_TOKENS, dim=8,
                                codebook=torch.randn(32, 8, generator=torch.Generator().manual_seed(0))),
}
VARIANTS = ["siglip-siglip", "vq-vq", "siglip-vq", "vq-siglip"]


def make_cfg(variant, seed=0, **model):
    """A resolved config as unified.config.resolve would give it (written out: no data package needed)."""
    in_kind, out_kind = variant.split("-")
    und = "mlp" if in_kind == "siglip" else "linear"
    defaults = dict(variant=variant, adapter_und=und, adapter_gen="mlp" if out_kind == "siglip" else "linear",
                    shared_adapter=in_kind == out_kind, alpha=0.2 if out_kind == "vq" else 1.0)
    defaults.update(model)
    if defaults["shared_adapter"]:
        defaults["adapter_gen"] = defaults["adapter_und"]
    cfg = ExperimentConfig(seed=seed, model=ModelConfig(**defaults), backbone=BackboneConfig(size="tiny"))
    return cfg


def make(variant, **model):
    in_kind, out_kind = variant.split("-")
    return build_model(make_cfg(variant, **model), VOCAB, SPECIAL, SPACES[in_kind], SPACES[out_kind])


def pad(rows, side, value):
    width = max(len(r) for r in rows)
    fill = [[value] * (width - len(r)) for r in rows]
    return torch.tensor([f + r if side == "left" else r + f for r, f in zip(rows, fill, strict=True)])


def words(g, n):
    return [WORDS[i] for i in torch.randint(len(WORDS), (n,), generator=g).tolist()]


def und_batch(g, space, b=4):
    """vqa rows: <bos> <img_in>*n <usr> q <ans> a <eos>, labels on the answer and <eos>; right-padded."""
    ids, labels = [], []
    for _ in range(b):
        question, answer = words(g, int(torch.randint(1, 4, (1,), generator=g))), words(g, 2)
        prompt = [SPECIAL["<bos>"]] + [SPECIAL["<img_in>"]] * N_TOKENS + [SPECIAL["<usr>"], *question, SPECIAL["<ans>"]]
        ids.append(prompt + answer + [SPECIAL["<eos>"]])
        labels.append([-100] * len(prompt) + answer + [SPECIAL["<eos>"]])
    input_ids = pad(ids, "right", SPECIAL["<pad>"])
    return {"input_ids": input_ids, "attention_mask": (pad(ids, "right", -1) != -1).long(),
            "labels": pad(labels, "right", -100), "image_feats": torch.randn(b, N_TOKENS, space.dim, generator=g)}


def gen_prompts(g, b=4):
    """<bos> <usr> prompt <ans> ack <boi>, prompts of different lengths."""
    return [[SPECIAL["<bos>"], SPECIAL["<usr>"], *words(g, int(torch.randint(1, 5, (1,), generator=g))),
             SPECIAL["<ans>"], WORDS[0], SPECIAL["<boi>"]] for _ in range(b)]


def image_target(g, space, b):
    if space.kind == "vq":
        return {"image_codes": torch.randint(space.codebook.shape[0], (b, N_TOKENS), generator=g)}
    return {"image_feats": torch.randn(b, N_TOKENS, space.dim, generator=g)}


def gen_batch(g, space, b=4, side="right", prompts=None, target=None):
    """Teacher-forced generation rows: prompt <img_out>*n [<eoi> <eos>], labels on the ack and <boi>."""
    prompts = prompts or gen_prompts(g, b)
    tail = [SPECIAL["<eoi>"], SPECIAL["<eos>"]] if side == "right" else []
    ids = [p + [SPECIAL["<img_out>"]] * N_TOKENS + tail for p in prompts]
    labels = [[-100] * (len(p) - 2) + p[-2:] + [-100] * (len(r) - len(p)) for p, r in zip(prompts, ids, strict=True)]
    return {"input_ids": pad(ids, side, SPECIAL["<pad>"]), "attention_mask": (pad(ids, side, -1) != -1).long(),
            "labels": pad(labels, side, -100), **(target or image_target(g, space, len(prompts)))}


def prompt_batch(prompts, image_feats=None):
    batch = {"input_ids": pad(prompts, "left", SPECIAL["<pad>"]),
             "attention_mask": (pad(prompts, "left", -1) != -1).long()}
    return batch if image_feats is None else {**batch, "image_feats": image_feats}


@pytest.mark.parametrize("variant", VARIANTS)
def test_variants_give_finite_losses_and_outputs_of_the_right_shape(variant):
    in_kind, out_kind = variant.split("-")
    model, g = make(variant), torch.Generator().manual_seed(1)
    und, gen = und_batch(g, SPACES[in_kind]), gen_batch(g, SPACES[out_kind])
    out = model.losses(und, gen)
    assert set(out) == {"loss", "loss/und", "loss/gen"} and all(torch.isfinite(v) for v in out.values())
    parts = model.forward_generation(gen)
    assert torch.allclose(out["loss/gen"], parts["text"] + model.alpha * parts["image"])
    assert torch.allclose(out["loss"], out["loss/und"] + out["loss/gen"])
    assert model.alpha == (0.2 if out_kind == "vq" else 1.0)
    out["loss"].backward()  # every trained part gets a gradient
    for part in (model.und_adapter, model.gen_adapter, model.head, model.backbone):
        assert all(p.grad is not None for p in part.parameters() if p.requires_grad)
    only_und, only_gen = model.losses(und, None), model.losses(None, gen)
    assert only_und["loss/gen"] == 0 and only_gen["loss/und"] == 0 and torch.isfinite(only_gen["loss"])

    images = model.generate_images(prompt_batch(gen_prompts(g, 3)))
    if out_kind == "vq":
        assert images.shape == (3, N_TOKENS) and images.dtype == torch.long
    else:
        assert images.shape == (3, N_TOKENS, SPACES["siglip"].dim) and torch.isfinite(images).all()
    answers = model.generate_answers(prompt_batch([[SPECIAL["<bos>"]] + [SPECIAL["<img_in>"]] * N_TOKENS],
                                                  torch.randn(1, N_TOKENS, SPACES[in_kind].dim)), max_new_tokens=5)
    assert len(answers) == 1 and len(answers[0]) <= 5 and SPECIAL["<eos>"] not in answers[0]
    assert model.training  # inference restored the mode it found


@pytest.mark.parametrize("variant,shared", [("siglip-siglip", None), ("vq-vq", None), ("siglip-siglip", False),
                                            ("siglip-vq", None), ("vq-siglip", None)])
def test_adapter_sharing(variant, shared):
    model = make(variant, **({} if shared is None else {"shared_adapter": shared}))
    und_ids = {id(p) for p in model.und_adapter.parameters()}
    gen_ids = {id(p) for p in model.gen_adapter.parameters()}
    shares = shared is None and variant in ("siglip-siglip", "vq-vq")  # resolve's auto: shared when aligned
    if shares:
        assert model.gen_adapter is model.und_adapter and und_ids == gen_ids
    else:
        assert model.gen_adapter is not model.und_adapter and not und_ids & gen_ids
    n_params = sum(p.numel() for p in model.parameters())
    n_listed = sum(p.numel() for p in [*model.backbone.parameters(), *model.und_adapter.parameters(),
                                       *model.gen_adapter.parameters(), *model.head.parameters(),
                                       model.slot_positions])
    assert (n_listed - n_params) == (sum(p.numel() for p in model.und_adapter.parameters()) if shares else 0)


@pytest.mark.parametrize("variant,model_kw", [("siglip-siglip", dict(affine_strength=0.3, affine_target="both")),
                                              ("vq-vq", dict(affine_strength=0.3, affine_target="generation")),
                                              ("vq-siglip", {}),
                                              ("vq-siglip", dict(feature_loss="mse", slot_positions=False)),
                                              ("vq-vq", dict(slot_positions=False))])
def test_autoregressive_generation_matches_teacher_forcing(variant, model_kw):
    """AR step 0 is the head at <boi>; feeding the AR outputs back teacher-forced reproduces every AR step."""
    out_space = SPACES[variant.split("-")[1]]
    model, g = make(variant, **model_kw), torch.Generator().manual_seed(2)
    model.train(False)
    prompts = gen_prompts(g, 4)  # different lengths: left padding and position ids are exercised too
    generated = model.generate_images(prompt_batch(prompts))
    target = {"image_codes": generated} if out_space.kind == "vq" else {"image_feats": generated}
    with torch.no_grad():
        predicted = model.image_predictions(gen_batch(g, out_space, side="left", prompts=prompts, target=target))
    if out_space.kind == "vq":
        assert torch.equal(predicted.argmax(-1), generated)
    else:
        if model.head.loss_kind == "cos":  # 1 - cos fixes the direction; decoding sets the targets' mean norm
            predicted = torch.nn.functional.normalize(predicted, dim=-1) * model.head.target_norm
        torch.testing.assert_close(model.affine_gen.inverse(predicted), generated, atol=1e-4, rtol=1e-4)
        distorted = model_kw.get("affine_strength", 0) > 0
        assert torch.allclose(model.affine_gen(generated), generated) != distorted  # the map is on when asked


def test_cosine_feature_head_decodes_at_the_targets_mean_norm():
    model = make("vq-siglip", feature_loss="cos")
    expected = SPACES["siglip"].train.norm(dim=-1).mean()
    assert torch.isclose(model.head.target_norm, expected)  # no affine map here: the targets' own norm
    _, out = model.head.step(torch.randn(5, model.backbone.config.hidden_size))
    torch.testing.assert_close(out.norm(dim=-1), expected.expand(5))
    mse = make("vq-siglip", feature_loss="mse")  # the squared error keeps the predicted scale
    hidden = torch.randn(5, mse.backbone.config.hidden_size)
    torch.testing.assert_close(mse.head.step(hidden)[1], mse.head(hidden))


def test_slot_positions_tell_the_llm_which_image_token_comes_next():
    """Two slots fed the same image token see different inputs (and so may predict different tokens)."""
    code = torch.zeros(1, 2, dtype=torch.long)
    with_pos, without = make("vq-vq"), make("vq-vq", slot_positions=False)
    fed = with_pos.head.embed(code)
    tokens = with_pos._fed_tokens(fed)
    assert not torch.allclose(tokens[0, 0], tokens[0, 1])
    assert torch.allclose(without._fed_tokens(fed)[0, 0], without._fed_tokens(fed)[0, 1])
    assert with_pos.slot_positions.requires_grad and without.slot_positions is None


def test_greedy_decoding_with_left_padding_matches_each_row_alone():
    model, g = make("siglip-siglip"), torch.Generator().manual_seed(3)
    image = [SPECIAL["<bos>"]] + [SPECIAL["<img_in>"]] * N_TOKENS
    prompts = [image + [SPECIAL["<usr>"], *words(g, n), SPECIAL["<ans>"]] for n in (1, 4, 2)]
    feats = torch.randn(3, N_TOKENS, 16, generator=g)
    together = model.generate_answers(prompt_batch(prompts, feats), max_new_tokens=6)
    alone = [model.generate_answers(prompt_batch([p], feats[i:i + 1]), max_new_tokens=6)[0]
             for i, p in enumerate(prompts)]
    assert together == alone and sum(map(len, together)) > 0


def test_freeze_llm_trains_adapters_and_head_only():
    model, g = make("siglip-vq", freeze_llm=True), torch.Generator().manual_seed(4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.losses(und_batch(g, SPACES["siglip"]), gen_batch(g, SPACES["vq"]))["loss"].backward()
    optimizer.step()
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    # the slot positions belong to the generation input side, like the adapter
    assert changed and all(k.startswith(("und_adapter.", "gen_adapter.", "head.proj.", "slot_positions"))
                           for k in changed)
    assert {k.split(".")[0] for k in changed} == {"und_adapter", "gen_adapter", "head", "slot_positions"}


def test_affine_map_is_invertible_seeded_and_identity_when_off():
    x = torch.randn(5, 3, 16)
    affine = AffineMap(16, 0.3, torch.Generator().manual_seed(0))
    y = affine(x)
    assert not torch.allclose(y, x, atol=1e-2)
    torch.testing.assert_close(affine.inverse(y), x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(affine.q @ affine.q.T, torch.eye(16), atol=1e-5, rtol=0)
    assert (affine.scale - 1).abs().max() <= 0.3 and affine.shift.abs().max() <= 0.3
    assert torch.equal(AffineMap(16, 0.3, torch.Generator().manual_seed(0)).q, affine.q)  # data.seed decides
    off = AffineMap(16, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(off(x), x) and torch.equal(off.inverse(x), x)
    with pytest.raises(ValueError):
        AffineMap(16, 1.0, torch.Generator())
    # in the model: buffers, not parameters; every trial of a dataset (data.seed) gets the same maps
    a, b = make("siglip-siglip", affine_strength=0.2, affine_target="both"), make("siglip-siglip", seed=7,
                                                                                     affine_strength=0.2,
                                                                                     affine_target="both")
    assert torch.equal(a.affine_in.q, b.affine_in.q) and not torch.equal(a.affine_in.q, a.affine_gen.q)
    assert not any("affine" in name for name, _ in a.named_parameters())


def test_build_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a, b = make("vq-siglip"), make("vq-siglip")
    assert torch.equal(torch.rand(1), expected)
    c = build_model(make_cfg("vq-siglip", seed=1), VOCAB, SPECIAL, SPACES["vq"], SPACES["siglip"])
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["gen_adapter.0.weight"], sc["gen_adapter.0.weight"])


@pytest.mark.parametrize("variant", ["siglip-vq", "vq-siglip"])  # both heads, both adapter kinds
def test_a_few_steps_overfit_one_batch(variant):
    in_kind, out_kind = variant.split("-")
    model, g = make(variant), torch.Generator().manual_seed(5)
    und, gen = und_batch(g, SPACES[in_kind]), gen_batch(g, SPACES[out_kind])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = {**model.losses(und, gen), **model.forward_generation(gen)}
    for _ in range(60):
        optimizer.zero_grad()
        model.losses(und, gen)["loss"].backward()
        optimizer.step()
    last = {**model.losses(und, gen), **model.forward_generation(gen)}
    assert all(last[k] < 0.1 * first[k] for k in ("loss/und", "loss/gen", "text", "image"))
    # the memorised answers come back through greedy decoding, and decoding stops at <eos>
    prompt_lengths = (und["labels"] == -100).long().cumprod(1).sum(1).tolist()
    prompts = [row[:n].tolist() for row, n in zip(und["input_ids"], prompt_lengths, strict=True)]
    expected = [[t for t in row.tolist() if t != -100][:-1] for row in und["labels"]]
    assert model.generate_answers(prompt_batch(prompts, und["image_feats"]), max_new_tokens=6) == expected


def test_backbone_checkpoint_round_trip(tmp_path):
    original = build_backbone(BackboneConfig(size="tiny"), VOCAB, 64)
    assert original.config._attn_implementation == "sdpa"
    assert original.get_input_embeddings().weight is original.get_output_embeddings().weight
    original.save_pretrained(tmp_path)
    loaded = build_backbone(BackboneConfig(path=str(tmp_path)), VOCAB, 64)
    ids = torch.randint(VOCAB, (2, 7))
    with torch.no_grad():
        assert torch.equal(original(input_ids=ids).logits, loaded(input_ids=ids).logits)
    resized = build_backbone(BackboneConfig(path=str(tmp_path)), VOCAB + 5, 64)  # a vocabulary of another size
    assert resized.get_input_embeddings().num_embeddings == VOCAB + 5
    assert resized.get_output_embeddings().weight.shape[0] == VOCAB + 5
    # and through the config key into a whole model
    cfg = make_cfg("vq-vq")
    cfg = dataclasses.replace(cfg, backbone=BackboneConfig(size="base", path=str(tmp_path)))
    model = build_model(cfg, VOCAB, SPECIAL, SPACES["vq"], SPACES["vq"])
    assert model.backbone.config.hidden_size == original.config.hidden_size
    assert torch.isfinite(model.losses(None, gen_batch(torch.Generator().manual_seed(6), SPACES["vq"]))["loss"])
