"""Experiment configuration: one dataclass per component, presets by name, dotted keys end to end.

The dotted keys (`data.tasks`, `model.variant`, ...) are the one vocabulary shared by sweep YAML, MLflow
params and analysis (docs/DESIGN.md §7). `flatten(cfg)` and `from_flat(flat)` convert both ways; `resolve(cfg)`
turns every `auto` into the concrete value it stands for, so a resolved config hashes and logs exactly what ran.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from unified.data.domains import get_domain
from unified.hashing import stable_hash

TASKS = ("mixed", "understanding", "generation")
MIX_MODES = ("added", "replace", "matched")  # the designs of single-task arms: unified/data/tasks.py
VARIANTS = ("siglip-siglip", "vq-vq", "siglip-vq", "vq-siglip")
ADAPTERS = ("auto", "linear", "mlp")
AFFINE_TARGETS = ("input", "generation", "both")
BACKBONE_SIZES = ("tiny", "small", "base")
VQ_ENCODERS = ("local", "mixer")
BACKBONE_INITS = ("random", "text")
FREQ_TASKS = ("vqa", "caption", "gen")
CACHE_ENV = "UNISWEEP_CACHE"


def default_cache_dir() -> Path:
    """Stage-0 and dataset caches: $UNISWEEP_CACHE, else ~/.cache/unisweep; the trainer and the sweep driver both
    take it from here (light to import: the driver checks caches without loading torch)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "unisweep")


@dataclass
class DataConfig:
    domain: str = "smartwatch"  # which renderer and templates: smartwatch | faces
    resolution: int = 32  # image side in pixels (paper: 224)
    n_images: int = 4000  # training image pool; every task's samples draw from the same images
    n_test: int = 500  # held-out images, rendered from a seed derived from data.seed
    seed: int = 0  # the dataset's own seed: images, and every stage-0 model trained on them
    hands: str = "h"  # which clock hands are drawn: h, hm or hms (paper: hms)
    battery_step: int = 20  # battery levels are multiples of this (paper: 1, i.e. 0..100)
    battery_text: bool = False  # draw "NN%" beside the bar (paper: yes; unreadable below 64 px)
    tasks: str = "mixed"  # mixed | understanding | generation
    und_samples: int = 64000  # understanding samples (vqa + caption) in the budget; images cycle, texts are fresh
    gen_samples: int = 32000  # generation samples in the budget (paper: half the understanding count)
    gen_ratio: float | None = None  # if set: gen_samples = ratio * und_samples, or a split of total_samples
    total_samples: int | None = None  # with gen_ratio: und + gen = total (mix varies at a fixed total)
    # added: single-task arms keep only their own samples (the paper); replace: every arm gets und+gen samples;
    # matched: single-task arms take the mixed arm's updates on their own samples (table: unified/data/tasks.py)
    mix_mode: str = "added"
    caption_share: float = 0.5  # share of understanding samples that are captions (paper: 0.5, 60k + 60k)
    extra_turn_p: float = 0.4  # probability of each extra VQA turn, up to 3 (paper: 0.4)
    freq: dict = field(default_factory=dict)  # {task: {attribute: p}} overrides of the domain's defaults
    tokenizer_path: str = ""  # a local tokenizer directory (save_pretrained format); "" = build it in code


@dataclass
class VisionConfig:
    patch: int = 8  # SigLIP patch size and VQ downsampling factor: (resolution / patch)^2 image tokens
    siglip_dim: int = 64  # width of our small SigLIP towers (paper: 768, siglip-base-patch16-224)
    siglip_layers: int = 2
    siglip_steps: int = 400
    vq_codebook: int = 512  # paper: 16384 (LlamaGen VQ-16)
    vq_dim: int = 8  # code dimension (paper: 8)
    vq_steps: int = 1000
    decoder_steps: int = 800  # SigLIP-feature -> pixel decoder
    judge_steps: int = 600  # both judges
    stage0_batch: int = 64
    vq_width: int = 64  # width of the VQ-VAE's encoder and Mixer decoder
    vq_encoder: str = "local"  # local: each code sees only its patch (predictable from a prompt) | mixer: whole image
    decoder_width: int = 128  # width of the SigLIP-feature pixel decoder (a Mixer)
    judge_width: int = 48  # channels of the scoring judge's first conv stage (doubled after it)
    judge_noise: float = 0.15  # std of pixel noise (in [-1, 1] units) while training either judge
    judge_loss: float = 1.0  # weight of the loss judge's feature (perceptual) term in the VQ and decoder losses
    loss_judge_width: int = 32  # the perceptual-loss judge's judge_width; not built when judge_loss is 0
    siglip_path: str = ""  # local checkpoint directories replace the stage-0 models at paper scale
    vq_path: str = ""
    decoder_path: str = ""
    judge_path: str = ""  # the scoring judge (spaces.judge)
    loss_judge_path: str = ""  # the perceptual-loss judge (spaces.loss_judge)


@dataclass
class ModelConfig:
    variant: str = "siglip-siglip"  # input space - output space
    adapter_und: str = "auto"  # linear | mlp; auto: mlp for SigLIP input, linear for VQ (paper)
    adapter_gen: str = "auto"  # same choice for the generation adapter when it is separate
    shared_adapter: str | bool = "auto"  # auto: shared when the variant is aligned (paper)
    alpha: float | None = None  # weight of the image loss; None: alpha_vq or alpha_siglip by the output space
    alpha_vq: float = 1.0  # the image-loss weight of VQ-output variants (paper: 0.2)
    # ... of SigLIP-output variants (paper: 1.0 with feature_loss cos); None: the domain's cpu-scale calibration,
    # `ALPHA_SIGLIP` of its module (the text loss it competes with differs per domain:
    # docs/LOG.md, 2026-12-01, SigLIP outputs on SynthFaces take their own weight)
    alpha_siglip: float | None = None
    affine_strength: float = 0.0  # s of the frozen random affine map y = xQS + b; 0 = off
    affine_target: str = "input"  # input | generation | both
    freeze_llm: bool = False  # train adapters and head only (finding 7)
    feature_loss: str = "mse"  # SigLIP-output regression loss: mse | cos (1 - cos, the paper's)
    slot_positions: bool = True  # a learned embedding per generated image slot: the LLM knows which token is next


@dataclass
class BackboneConfig:
    size: str = "tiny"  # tiny | small | base: the model-scale axis (widths in unified/backbone.py)
    path: str = ""  # a local causal-LM checkpoint directory; overrides size
    init: str = "random"  # random | text: pretrain the built backbone on the domain's language first (stage 0)
    text_steps: int = 1000  # steps of that text pretraining (unified/text_prior.py)


@dataclass
class TrainConfig:
    steps: int = 0  # optimisation steps; 0 = one epoch over the sample budget
    batch_size: int = 32  # samples per step, both tasks together
    lr: float = 3e-3
    weight_decay: float = 0.0  # paper: 0
    warmup: float = 0.03  # fraction of steps (paper: 3 %)
    grad_clip: float = 1.0
    eval_points: int = 4  # evaluations at k/n of the budget, k = 1..n (paper: 10)
    eval_items: int = 500  # test items per question type (paper stops after 499 entries)
    gen_eval_items: int = 200  # generation prompts scored per eval point
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class ExperimentConfig:
    seed: int = 0  # drives sample draws, init and batch order of one trial
    data: DataConfig = field(default_factory=DataConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


class ConfigError(ValueError):
    """A bad key or value; the message names the key and what is valid."""


# ---------------------------------------------------------------- presets


def _smartwatch_cpu() -> ExperimentConfig:
    # The face colour is asked in one VQA question in six (the paper never names it). At 32 px the paper's
    # fine-grained readings (the second hand, the battery to 1 %) cannot be drawn; the colour's 64 names are the
    # one gradual item left, and without it a mixed arm saturates the five coarse ones (docs/LOG.md, 2026-11-30,
    # the understanding ceiling).
    cfg = ExperimentConfig()
    cfg.data.freq = {"vqa": {"face_color": 0.2}}
    return cfg


def _smartwatch_paper() -> ExperimentConfig:
    # docs/PAPER.md §3 and §6: 224 px, 60k images, 3 samples each, hours/minutes/seconds, battery 0..100 with text,
    # ten evenly spaced checkpoints, batch 393. Encoders and LLM come from local checkpoint directories.
    cfg = ExperimentConfig()
    cfg.data = DataConfig(resolution=224, n_images=60000, n_test=2000, hands="hms", battery_step=1,
                          battery_text=True, und_samples=120000, gen_samples=60000, caption_share=0.5)
    cfg.vision = VisionConfig(patch=16, siglip_dim=768, siglip_layers=12, vq_codebook=16384)
    cfg.model = ModelConfig(alpha_vq=0.2, alpha_siglip=1.0, feature_loss="cos", slot_positions=False)
    cfg.backbone = BackboneConfig(size="base")
    cfg.train = TrainConfig(batch_size=393, lr=2e-4, eval_points=10, eval_items=500, gen_eval_items=500)
    return cfg


def _on_faces(make: typing.Callable[[], ExperimentConfig]) -> typing.Callable[[], ExperimentConfig]:
    """The same preset on SynthFaces (the paper's templated CelebA, docs/PAPER.md §4: its sizes are not public, so
    the SmartWatch ones stand in). The watch-only keys and the watch's question mix go back to their defaults:
    faces ignore them, and a logged `data.hands=hms` would only mislead."""

    def faces() -> ExperimentConfig:
        cfg = make()
        defaults = DataConfig()
        cfg.data = dataclasses.replace(cfg.data, domain="faces", hands=defaults.hands,
                                       battery_step=defaults.battery_step, battery_text=defaults.battery_text,
                                       freq={})
        return cfg

    return faces


PRESETS: dict[str, typing.Callable[[], ExperimentConfig]] = {
    "smartwatch-cpu": _smartwatch_cpu,
    "smartwatch-paper": _smartwatch_paper,
    "faces-cpu": _on_faces(_smartwatch_cpu),
    "faces-paper": _on_faces(_smartwatch_paper),
}

# Each preset's calibration version (docs/DESIGN.md §9; every attempt in docs/LOG.md). The next calibration change
# to a cpu preset (a domain default it inherits included) must bump its number here and add a row to that table:
# trial runs carry it as the tag `unisweep.preset_version`, the one record of which calibration a run trained on,
# since the cell hash changes with the config but does not say which preset version it came from.
PRESET_VERSIONS: dict[str, int] = {"smartwatch-cpu": 3, "faces-cpu": 4, "smartwatch-paper": 1, "faces-paper": 1}


def preset(name: str) -> ExperimentConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}{_nearest(name, PRESETS)}; valid: {', '.join(PRESETS)}")
    return PRESETS[name]()


def smoke(cfg: ExperimentConfig) -> ExperimentConfig:
    """Shrink any preset to seconds: tiny images, data, encoders, backbone and evaluation."""
    cfg = dataclasses.replace(cfg)
    total = min(cfg.data.total_samples, 512) if cfg.data.total_samples else None
    cfg.data = dataclasses.replace(cfg.data, resolution=32, n_images=256, n_test=64, hands="h", battery_step=20,
                                   battery_text=False, und_samples=256, gen_samples=256, total_samples=total)
    cfg.vision = dataclasses.replace(cfg.vision, patch=8, siglip_dim=32, siglip_layers=1, siglip_steps=60,
                                     vq_codebook=64, vq_steps=600, decoder_steps=200, judge_steps=600,
                                     judge_noise=0.3, stage0_batch=32, vq_width=64, decoder_width=64,
                                     siglip_path="", vq_path="", decoder_path="", judge_path="",
                                     loss_judge_path="")
    cfg.backbone = dataclasses.replace(cfg.backbone, size="tiny", path="", text_steps=100)
    cfg.train = dataclasses.replace(cfg.train, steps=0, batch_size=32, eval_points=2, eval_items=16,
                                    gen_eval_items=16)
    return cfg


# ---------------------------------------------------------------- flat keys


def flatten(cfg) -> dict[str, typing.Any]:
    """Dotted keys -> plain values. Dict fields (data.freq) flatten further: data.freq.gen.face_color."""
    out: dict[str, typing.Any] = {}

    def walk(obj, prefix):
        if dataclasses.is_dataclass(obj):
            for name in _field_names(type(obj)):
                walk(getattr(obj, name), f"{prefix}{name}.")
        elif isinstance(obj, dict):
            for k in sorted(obj):
                walk(obj[k], f"{prefix}{k}.")
        else:
            out[prefix[:-1]] = obj

    walk(cfg, "")
    return out


def valid_keys(cfg: ExperimentConfig | None = None) -> list[str]:
    """Every settable dotted key, including data.freq.<task>.<attribute> for the config's domain."""
    cfg = cfg or ExperimentConfig()
    keys = [k for k in flatten(cfg) if not k.startswith("data.freq.")]
    return keys + [f"data.freq.{t}.{a}" for t in FREQ_TASKS for a in _domain_attributes(cfg.data.domain)]


def override(cfg: ExperimentConfig, overrides: dict[str, typing.Any]) -> ExperimentConfig:
    """Apply dotted-key overrides (values already typed, or strings to parse as YAML scalars)."""
    cfg = _clone(cfg)
    if "data.domain" in overrides:  # the domain decides which data.freq keys exist
        _set(cfg, "data.domain", overrides["data.domain"])
        # the base's frequencies of another domain's attributes mean nothing here (a spec on smartwatch-cpu with
        # a data.domain: faces cell); the new domain's own keys still follow below
        attrs = set(_domain_attributes(cfg.data.domain))
        cfg.data.freq = {t: {a: p for a, p in ps.items() if a in attrs} for t, ps in cfg.data.freq.items()}
    for key, value in overrides.items():
        _set(cfg, key, value)
    return cfg


def from_flat(flat: dict[str, typing.Any]) -> ExperimentConfig:
    """Dotted keys -> ExperimentConfig; unknown keys and badly typed values raise ConfigError."""
    cfg = ExperimentConfig()
    if "data.domain" in flat:
        _set(cfg, "data.domain", flat["data.domain"])
    for key, value in flat.items():
        _set(cfg, key, value)
    return cfg


def _set(cfg: ExperimentConfig, key: str, value) -> None:
    parts = key.split(".")
    if parts[:2] == ["data", "freq"]:
        attrs = _domain_attributes(cfg.data.domain)
        if len(parts) != 4 or parts[2] not in FREQ_TASKS or parts[3] not in attrs:
            raise ConfigError(f"unknown key {key!r}{_nearest(key, valid_keys(cfg))}; frequency keys are "
                              f"data.freq.<{'|'.join(FREQ_TASKS)}>.<{'|'.join(attrs)}>")
        p = _coerce(key, value, float)
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"{key} must be a probability in [0, 1], got {p}")
        cfg.data.freq.setdefault(parts[2], {})[parts[3]] = p
        return
    obj = cfg
    for i, name in enumerate(parts):
        if not (dataclasses.is_dataclass(obj) and name in _field_names(type(obj))):
            raise ConfigError(f"unknown key {key!r}{_nearest(key, valid_keys(cfg))}")
        if i == len(parts) - 1:
            hint = _type_hints(type(obj))[name]
            if dataclasses.is_dataclass(getattr(obj, name)):
                raise ConfigError(f"{key!r} is a section, not a value; set one of its keys, e.g. "
                                  f"{key}.{dataclasses.fields(getattr(obj, name))[0].name}")
            setattr(obj, name, _coerce(key, value, hint))
        else:
            obj = getattr(obj, name)


@functools.cache
def _field_names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))  # configs are flattened and built by the thousand


def _clone(obj):
    """A deep copy of a config (sections, dicts and lists copied; values are immutable), ten times faster than
    `copy.deepcopy`, which matters for grids of 100,000 trials."""
    if dataclasses.is_dataclass(obj):
        return dataclasses.replace(obj, **{n: _clone(getattr(obj, n)) for n in _field_names(type(obj))})
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    return obj


@functools.cache
def _type_hints(cls) -> dict:
    return typing.get_type_hints(cls)  # costly (it evaluates the annotations); configs are built by the thousand


def _coerce(key: str, value, hint):
    """Check (and parse from a string) a value against a field's type hint."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if isinstance(value, str) and str not in allowed:
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            pass
    if isinstance(value, str) and float in allowed:  # PyYAML reads "3e-4" as a string (YAML 1.1)
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, str) and bool in allowed and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    for t in allowed:
        if t is type(None) and value is None:
            return None
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t in (int, str, bool, dict) and type(value) is t:
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ConfigError(f"{key} expects {names}, got {value!r} ({type(value).__name__})")


def _nearest(key: str, candidates) -> str:
    near = difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def _domain_attributes(domain: str) -> tuple[str, ...]:
    return get_domain(domain).ATTRIBUTES


# ---------------------------------------------------------------- resolution and identity


def _check_choice(key: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(map(str, choices))}; got {value!r}"
                          f"{_nearest(str(value), map(str, choices))}")


def resolve(cfg: ExperimentConfig) -> ExperimentConfig:
    """Validate values and replace every `auto` by what it means, so the config says exactly what runs."""
    cfg = from_flat(flatten(cfg))
    d, m = cfg.data, cfg.model
    try:
        domain = get_domain(d.domain)
    except KeyError as e:
        raise ConfigError(f"data.domain: {e.args[0]}") from None
    _check_choice("data.tasks", d.tasks, TASKS)
    _check_choice("data.mix_mode", d.mix_mode, MIX_MODES)
    _check_choice("data.hands", d.hands, ("h", "hm", "hms"))
    _check_choice("model.variant", m.variant, VARIANTS)
    _check_choice("model.adapter_und", m.adapter_und, ADAPTERS)
    _check_choice("model.adapter_gen", m.adapter_gen, ADAPTERS)
    _check_choice("model.shared_adapter", m.shared_adapter, ("auto", True, False))
    _check_choice("model.affine_target", m.affine_target, AFFINE_TARGETS)
    _check_choice("train.device", cfg.train.device, ("auto", "cpu", "cuda"))
    _check_choice("model.feature_loss", m.feature_loss, ("cos", "mse"))
    _check_choice("vision.vq_encoder", cfg.vision.vq_encoder, VQ_ENCODERS)
    if not cfg.backbone.path:
        _check_choice("backbone.size", cfg.backbone.size, BACKBONE_SIZES)
    _check_choice("backbone.init", cfg.backbone.init, BACKBONE_INITS)
    if cfg.backbone.init == "text" and cfg.backbone.path:
        raise ConfigError("backbone.init=text pretrains a built backbone on the domain's text; backbone.path is a "
                          "checkpoint that arrives pretrained: set one of them")
    if d.resolution % cfg.vision.patch:
        raise ConfigError(f"data.resolution ({d.resolution}) must be a multiple of vision.patch ({cfg.vision.patch})")
    if m.affine_strength < 0:
        raise ConfigError(f"model.affine_strength must be >= 0, got {m.affine_strength}")
    flat = flatten(cfg)
    for key in ("data.n_images", "data.n_test", "train.batch_size", "train.eval_points"):
        if flat[key] < 1:
            raise ConfigError(f"{key} must be >= 1, got {flat[key]}")
    for key in ("data.und_samples", "data.gen_samples", "train.steps", "train.eval_items", "train.gen_eval_items",
                "backbone.text_steps", "model.alpha", "model.alpha_vq", "model.alpha_siglip"):  # alphas: None = unset
        if flat[key] is not None and flat[key] < 0:
            raise ConfigError(f"{key} must be >= 0, got {flat[key]}")
    for key in ("data.caption_share", "data.extra_turn_p", "train.warmup"):
        if not 0.0 <= flat[key] <= 1.0:
            raise ConfigError(f"{key} must be in [0, 1], got {flat[key]}")
    if cfg.train.lr <= 0:
        raise ConfigError(f"train.lr must be > 0, got {cfg.train.lr}")
    for key in ("backbone.path", "data.tokenizer_path", "vision.siglip_path", "vision.vq_path",
                "vision.decoder_path", "vision.judge_path", "vision.loss_judge_path"):
        if flat[key] and not os.path.isdir(flat[key]):
            raise ConfigError(f"{key}: {flat[key]!r} is not a directory (a local checkpoint directory is expected)")
    if cfg.backbone.path and not d.tokenizer_path:
        raise ConfigError("backbone.path needs data.tokenizer_path: a checkpoint's embeddings mean its own "
                          "tokenizer's ids (usually the same directory); our word-level vocabulary would reuse "
                          "its rows for other words")

    if d.gen_ratio is not None:  # the ratio decides the split; keep the derived counts, drop the dials
        if d.gen_ratio < 0:
            raise ConfigError(f"data.gen_ratio must be >= 0, got {d.gen_ratio}")
        if d.total_samples is not None:
            d.und_samples = round(d.total_samples / (1 + d.gen_ratio))
            d.gen_samples = d.total_samples - d.und_samples
        else:
            d.gen_samples = round(d.gen_ratio * d.und_samples)
    elif d.total_samples is not None:
        raise ConfigError("data.total_samples needs data.gen_ratio (the split of the total)")
    arm = {"understanding": d.und_samples, "generation": d.gen_samples}.get(d.tasks, d.und_samples + d.gen_samples)
    if arm + (d.und_samples + d.gen_samples if d.mix_mode == "replace" else 0) == 0:
        raise ConfigError(f"data.tasks={d.tasks} has no samples to train on (data.und_samples, data.gen_samples)")
    if d.tasks == "mixed":  # a mixed arm trains the same under every design: one cell serves them all
        d.mix_mode = "added"

    in_space, out_space = m.variant.split("-")
    if m.adapter_und == "auto":
        m.adapter_und = "mlp" if in_space == "siglip" else "linear"  # docs/PAPER.md §2 adapter types
    if m.adapter_gen == "auto":
        m.adapter_gen = "mlp" if out_space == "siglip" else "linear"
    if m.shared_adapter == "auto":
        m.shared_adapter = in_space == out_space
    if m.shared_adapter and in_space != out_space:
        raise ConfigError(f"model.shared_adapter=true needs an aligned variant (same input and output space); "
                          f"{m.variant} feeds {in_space} features in and {out_space} features back")
    if m.shared_adapter:
        m.adapter_gen = m.adapter_und
    if m.alpha_siglip is None:
        m.alpha_siglip = domain.ALPHA_SIGLIP
    if m.alpha is None:  # docs/PAPER.md §2: 0.2 in every VQ-output script, else 1.0; the cpu preset: docs/LOG.md
        m.alpha = m.alpha_vq if out_space == "vq" else m.alpha_siglip

    freq = domain.default_freq()
    for task, attrs in d.freq.items():
        freq[task].update(attrs)
    d.freq = freq
    return cfg


def to_yaml(cfg: ExperimentConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False)


EXECUTION_ONLY = ("train.device",)  # keys that change where a trial runs, not what it computes


def cell_hash(cfg: ExperimentConfig, resolved: bool = False) -> str:
    """docs/DESIGN.md §8: the full resolved config without the seed and execution-only settings (`resolved`: the
    caller's config is resolve()'s output already, so the hash need not resolve it again)."""
    flat = flatten(cfg if resolved else resolve(cfg))
    return stable_hash({k: v for k, v in flat.items() if k != "seed" and k not in EXECUTION_ONLY})
