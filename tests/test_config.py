"""Config: dotted keys round trip, clear errors, `auto` resolution, and the cell hash of docs/DESIGN.md §8."""

import pytest

from unified import config as C


@pytest.mark.parametrize("name", list(C.PRESETS))
def test_flatten_from_flat_round_trip(name):
    cfg = C.resolve(C.preset(name))
    assert C.from_flat(C.flatten(cfg)) == cfg
    assert C.resolve(C.from_flat(C.flatten(cfg))) == cfg  # resolving twice changes nothing


def test_flat_keys_are_the_design_vocabulary():
    flat = C.flatten(C.resolve(C.preset("smartwatch-cpu")))
    for key in ("seed", "data.domain", "data.tasks", "data.und_samples", "data.gen_samples", "data.mix_mode",
                "model.variant", "model.shared_adapter", "model.alpha", "model.affine_strength",
                "model.freeze_llm", "backbone.size", "train.eval_points", "data.freq.gen.face_color"):
        assert key in flat, key
    assert flat["data.freq.gen.face_color"] == 0.0  # the paper never names the face colour


def test_unknown_key_names_nearest_valid_ones():
    with pytest.raises(C.ConfigError, match=r"unknown key 'model.varient'.*model\.variant"):
        C.override(C.preset("smartwatch-cpu"), {"model.varient": "vq-vq"})
    with pytest.raises(C.ConfigError, match=r"data\.freq\.gen\.face_color"):
        C.override(C.preset("smartwatch-cpu"), {"data.freq.gen.face_colour": 0.5})


def test_bad_value_names_key_and_type():
    with pytest.raises(C.ConfigError, match=r"train\.batch_size expects int, got 'many'"):
        C.override(C.preset("smartwatch-cpu"), {"train.batch_size": "many"})
    with pytest.raises(C.ConfigError, match=r"model\.variant must be one of .*vq-vq"):
        C.resolve(C.override(C.preset("smartwatch-cpu"), {"model.variant": "vq-vqq"}))
    with pytest.raises(C.ConfigError, match="unknown preset 'smartwatch-cpuu'.*smartwatch-cpu"):
        C.preset("smartwatch-cpuu")


def test_strings_parse_as_yaml_scalars():
    cfg = C.override(C.preset("smartwatch-cpu"), {"train.lr": "3e-4", "model.freeze_llm": "true",
                                                   "data.gen_ratio": "0.5", "model.shared_adapter": "false"})
    assert cfg.train.lr == 3e-4 and cfg.model.freeze_llm is True
    assert cfg.data.gen_ratio == 0.5 and cfg.model.shared_adapter is False


@pytest.mark.parametrize("variant,shared,alpha,adapter_und", [
    ("siglip-siglip", True, 1.0, "mlp"), ("vq-vq", True, 0.2, "linear"),
    ("siglip-vq", False, 0.2, "mlp"), ("vq-siglip", False, 1.0, "linear")])
def test_resolve_follows_the_paper(variant, shared, alpha, adapter_und):
    cfg = C.resolve(C.override(C.preset("smartwatch-paper"), {"model.variant": variant}))
    assert (cfg.model.shared_adapter, cfg.model.alpha, cfg.model.adapter_und) == (shared, alpha, adapter_und)
    assert (cfg.model.feature_loss, cfg.model.slot_positions) == ("cos", False)
    cpu = C.resolve(C.override(C.preset("smartwatch-cpu"), {"model.variant": variant}))  # calibrated weights
    assert cpu.model.alpha == (1.0 if variant.endswith("vq") else 10.0) and cpu.model.feature_loss == "mse"
    explicit = C.resolve(C.override(C.preset("smartwatch-cpu"), {"model.variant": variant, "model.alpha": 0.5}))
    assert explicit.model.alpha == 0.5


def test_shared_adapter_needs_an_aligned_variant():
    with pytest.raises(C.ConfigError, match="aligned"):
        C.resolve(C.override(C.preset("smartwatch-cpu"), {"model.variant": "siglip-vq", "model.shared_adapter": True}))


def test_gen_ratio_sets_counts():
    base = C.preset("smartwatch-cpu")
    cfg = C.resolve(C.override(base, {"data.und_samples": 1000, "data.gen_ratio": 0.5}))
    assert (cfg.data.und_samples, cfg.data.gen_samples) == (1000, 500)
    cfg = C.resolve(C.override(base, {"data.total_samples": 3000, "data.gen_ratio": 2.0}))
    assert (cfg.data.und_samples, cfg.data.gen_samples) == (1000, 2000)
    with pytest.raises(C.ConfigError, match="total_samples needs data.gen_ratio"):
        C.resolve(C.override(base, {"data.total_samples": 3000}))


def test_cell_hash_identity():
    base = C.preset("smartwatch-cpu")
    h = C.cell_hash(base)
    assert C.cell_hash(C.override(base, {"seed": 7})) == h  # the seed is not part of a cell
    assert C.cell_hash(C.override(base, {"train.device": "cpu"})) == h  # nor where it runs
    assert C.cell_hash(C.override(base, {"model.variant": "vq-vq"})) != h
    # `auto` and the value it resolves to are the same cell; key order does not matter
    assert C.cell_hash(C.override(base, {"model.alpha": C.resolve(base).model.alpha})) == h
    flat = C.flatten(base)
    assert C.cell_hash(C.from_flat(dict(reversed(list(flat.items()))))) == h
    assert C.cell_hash(C.smoke(base)) != h  # smoke trials never match real ones


@pytest.mark.parametrize("overrides,message", [
    ({"train.lr": 0}, "train.lr must be > 0"),
    ({"data.caption_share": 1.5}, r"data.caption_share must be in \[0, 1\]"),
    ({"data.und_samples": -1}, "data.und_samples must be >= 0"),
    ({"model.alpha_siglip": -1.0}, "model.alpha_siglip must be >= 0"),
    ({"data.tasks": "understanding", "data.und_samples": 0}, "no samples to train on"),
    ({"backbone.path": "/nonexistent/llama"}, "backbone.path: '/nonexistent/llama' is not a directory"),
    ({"vision.vq_path": "/nonexistent/vq"}, "vision.vq_path"),
])
def test_bad_values_fail_at_resolve_with_the_key(overrides, message):
    with pytest.raises(C.ConfigError, match=message):
        C.resolve(C.override(C.preset("smartwatch-cpu"), overrides))


def test_every_preset_has_a_version_and_the_design_table_ends_at_it():
    """A bumped PRESET_VERSIONS entry needs its row in docs/DESIGN.md §9, and a row needs the bump (milliseconds)."""
    from pathlib import Path

    assert set(C.PRESET_VERSIONS) == set(C.PRESETS)
    text = (Path(__file__).resolve().parent.parent / "docs" / "DESIGN.md").read_text()
    table = text.split("## 9. Preset versions", 1)[1].split("\n## ", 1)[0]
    latest: dict[str, int] = {}
    for row in table.splitlines():
        cells = [c.strip() for c in row.strip("|").split("|")]
        if row.startswith("| ") and cells[1].startswith("v") and cells[1][1:].isdigit():
            for name in cells[0].split(", "):
                latest[name] = max(latest.get(name, 0), int(cells[1][1:]))
    assert latest, "no version rows found in docs/DESIGN.md §9"
    for name, version in C.PRESET_VERSIONS.items():
        assert latest.get(name, 1) == version, name
