"""Stage 0: train (or load) the frozen visual models once per dataset, then cache every image's features.

`build_spaces(cfg, pool, tokenizer, cache_dir)` returns the `VisualSpaces` a trial trains against
(docs/INTERFACES.md). Each part lives in `<cache_dir>/stage0/<part>-<hash>/`, the hash covering exactly what
determines it (the pool's key, its vision settings, the parts it depends on, `ready.key_base()`); the frozen
features and quality numbers of a set of parts live in `<cache_dir>/stage0/features-<hash>/`. Folders are
built by one builder at a time and checked against their manifests (unified/cache.py), so concurrent trials or
nodes never see half a cache, build a part twice, or train on a damaged one.
All randomness comes from `data.seed`. A training step never runs a frozen encoder: it reads `space(name)`.
The SigLIP space is served PCA-whitened (features.Whitening, fitted on the train features; `decode` undoes it).

At smartwatch-cpu size (4000 images, 32 px) the whole build takes about 3 minutes on one core.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from unified.cache import cached_dir
from unified.data.domains import get_domain
from unified.hashing import stable_hash
from unified.vision import decoder as dec
from unified.vision import judge as jdg
from unified.vision import siglip as sgl
from unified.vision import vq as vqm
from unified.vision.features import Whitening, encode_all, pick_device, to_uint8
from unified.vision.ready import key_base, mark_ready

# one independent stream per part; the loss judge keeps the stream the single judge had, so it is unchanged
SEED_OFFSETS = {"loss_judge": 1, "vq": 2, "siglip": 3, "decoder": 4, "judge": 5}


@dataclasses.dataclass
class Space:
    kind: str  # "siglip" or "vq"
    n_tokens: int
    dim: int
    train: torch.Tensor  # float [N_train, n_tokens, dim]: SigLIP patch features or VQ quantized latents
    test: torch.Tensor  # float [N_test, n_tokens, dim]
    codes_train: torch.Tensor | None = None  # VQ only: long [N_train, n_tokens]
    codes_test: torch.Tensor | None = None  # VQ only: long [N_test, n_tokens]
    codebook: torch.Tensor | None = None  # VQ only: float [K, dim]


class VisualSpaces:
    """The frozen spaces of one dataset, their decoders to pixels, the judges and stage-0 quality numbers."""

    def __init__(self, models: dict[str, torch.nn.Module], spaces: dict[str, Space], quality: dict[str, float],
                 trained: tuple[str, ...], build_seconds: dict[str, float], siglip_whitening: Whitening):
        self.models = models
        self.siglip_whitening = siglip_whitening  # the SigLIP space is whitened; decoding undoes it
        self.judge: jdg.Judge = models["judge"]  # scores generations; never a training loss
        self.loss_judge: jdg.Judge | None = models.get("loss_judge")  # the perceptual loss; None when it is off
        self.quality = quality
        self.trained = trained  # parts trained by this call (empty when everything came from the cache)
        self.build_seconds = build_seconds  # per part, as recorded when it was built
        self._spaces = spaces

    def space(self, name: str) -> Space:
        if name not in self._spaces:
            raise KeyError(f"unknown visual space {name!r}; valid: {', '.join(self._spaces)}")
        return self._spaces[name]

    @torch.no_grad()
    def decode(self, name: str, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """SigLIP features [B, n, d] ("siglip") or VQ code ids [B, n] ("vq") -> uint8 images [B, H, W, 3],
        on the device of `x`."""
        if name == "siglip":
            model = self.models["decoder"]
            run = lambda feats: model(self.siglip_whitening.inverse(feats.float()))
        elif name == "vq":
            model = self.models["vq"]
            run = model.decode_codes
        else:
            raise KeyError(f"unknown visual space {name!r}; valid: siglip, vq")
        device = next(model.parameters()).device
        out = [to_uint8(run(x[i:i + batch].to(device))) for i in range(0, len(x), batch)]
        return torch.cat(out).to(x.device)

    def to(self, device) -> VisualSpaces:
        for m in self.models.values():
            m.to(device)
        return self


# ---------------------------------------------------------------- randomness


def _generator(data_seed: int, part: str) -> torch.Generator:
    return torch.Generator().manual_seed(1000 * data_seed + SEED_OFFSETS[part])


def _part_keys(cfg, pool, tokenizer) -> dict[str, dict]:
    """What determines each part: its settings, the pool, and the parts it learns from."""
    v = cfg.vision
    base = {**key_base(), "pool": pool.key, "batch": v.stage0_batch}  # key_base: version, CPU pin, torch
    heads = get_domain(cfg.data.domain).judge_heads(cfg.data)
    judge = {"path": v.judge_path} if v.judge_path else dict(
        base, part="score_judge", heads=heads, steps=v.judge_steps, width=v.judge_width, noise=v.judge_noise)
    # the key the single judge had: VQ-VAEs and decoders cached before the split stay valid
    loss_judge = {"path": v.loss_judge_path} if v.loss_judge_path else dict(
        base, part="judge", heads=heads, steps=v.judge_steps, width=v.loss_judge_width, noise=v.judge_noise)
    perceptual = {"judge_loss": v.judge_loss, "judge": stable_hash(loss_judge) if v.judge_loss else None}
    vq = {"path": v.vq_path} if v.vq_path else dict(
        base, **perceptual, part="vq", patch=v.patch, codebook=v.vq_codebook, dim=v.vq_dim, steps=v.vq_steps,
        width=v.vq_width, encoder=v.vq_encoder)
    siglip = {"path": v.siglip_path} if v.siglip_path else dict(
        base, part="siglip", patch=v.patch, dim=v.siglip_dim, layers=v.siglip_layers, steps=v.siglip_steps,
        vocab=stable_hash(sorted(tokenizer.get_vocab().items())))
    decoder = {"path": v.decoder_path} if v.decoder_path else dict(
        base, **perceptual, part="decoder", siglip=stable_hash(siglip), steps=v.decoder_steps, width=v.decoder_width)
    keys = {"judge": judge, "vq": vq, "siglip": siglip, "decoder": decoder}
    return {**keys, "loss_judge": loss_judge} if v.judge_loss > 0 else keys


# ---------------------------------------------------------------- build


def build_spaces(cfg, pool, tokenizer, cache_dir) -> VisualSpaces:
    """Train or load SigLIP, VQ-VAE, SigLIP pixel decoder and both judges; encode every image; measure quality."""
    root = Path(cache_dir) / "stage0"
    device = pick_device(cfg.train.device)
    keys = _part_keys(cfg, pool, tokenizer)
    models: dict[str, torch.nn.Module] = {}
    folders = [f"images/{pool.key}"]  # what this config's stage 0 reads, for `ready.mark_ready`
    trained: list[str] = []
    seconds: dict[str, float] = {}
    train_images = pool.images("train")

    def part(name: str, path: str, make: Callable[[torch.Generator], torch.nn.Module],
             save: Callable, load: Callable) -> None:
        if path:  # a local checkpoint directory replaces training (paper scale)
            models[name] = load(path).to(device)
            return

        def build(folder: Path) -> None:
            t0 = time.perf_counter()
            gen = _generator(cfg.data.seed, name)
            with torch.random.fork_rng(devices=[]):  # init from data.seed without touching the caller's RNG
                torch.manual_seed(gen.initial_seed())
                model = make(gen)
            save(model, folder)
            seconds[name] = time.perf_counter() - t0
            (folder / "build.json").write_text(json.dumps({"seconds": seconds[name], "key": keys[name]}))

        folder, built = cached_dir(root, f"{name}-{stable_hash(keys[name])}", build)
        folders.append(f"stage0/{folder.name}")
        models[name] = load(folder).to(device)
        if built:
            trained.append(name)
        seconds.setdefault(name, json.loads((folder / "build.json").read_text())["seconds"])

    v = cfg.vision
    labels = pool.judge_labels("train")
    heads = get_domain(cfg.data.domain).judge_heads(cfg.data)

    def make_judge(gen, width):
        model = jdg.Judge(heads, width=width)
        jdg.train_judge(model, train_images, labels, v, gen, device)
        return model

    part("judge", v.judge_path, lambda gen: make_judge(gen, v.judge_width), jdg.save_judge, jdg.load_judge)
    perceptual_judge = None
    if v.judge_loss > 0:  # a network of its own: a scorer that was the loss would grade images shaped to please it
        part("loss_judge", v.loss_judge_path, lambda gen: make_judge(gen, v.loss_judge_width), jdg.save_judge,
             jdg.load_judge)
        perceptual_judge = models["loss_judge"]

    def make_vq(gen):
        model = vqm.VQVAE(cfg.data.resolution, v.patch, v.vq_codebook, v.vq_dim, width=v.vq_width,
                          local=v.vq_encoder == "local")
        vqm.train_vq(model, train_images, v, gen, device, judge=perceptual_judge)
        return model

    part("vq", v.vq_path, make_vq, vqm.save_vq, vqm.load_vq)

    def make_siglip(gen):
        model = sgl.build_siglip(v, cfg.data.resolution, tokenizer)
        captions = sgl.tokenize_captions(tokenizer, pool.full_captions("train"))
        sgl.train_siglip(model, train_images, captions, v, gen, device)
        return model

    part("siglip", v.siglip_path, make_siglip, sgl.save_siglip, sgl.load_siglip)
    siglip_train = _encode_siglip(models["siglip"], train_images, device)

    def make_decoder(gen):
        model = dec.PixelDecoder(siglip_train.shape[-1], siglip_train.shape[1], v.patch, width=v.decoder_width)
        dec.train_decoder(model, siglip_train, train_images, v, gen, device, judge=perceptual_judge)
        return model

    part("decoder", v.decoder_path, make_decoder, dec.save_decoder, dec.load_decoder)

    feature_key = stable_hash({**key_base(), "pool": pool.key,
                               **{name: stable_hash(k) for name, k in keys.items()}})
    folder, built = cached_dir(root, f"features-{feature_key}",
                                lambda f: _write_features(f, models, pool, None if v.siglip_path else tokenizer,
                                                                          siglip_train, device))
    if built:
        trained.append("features")
    mark_ready(cfg, cache_dir, [*folders, f"stage0/{folder.name}"])
    tensors = load_file(str(folder / "features.safetensors"))
    quality = json.loads((folder / "quality.json").read_text())
    white = Whitening(tensors["siglip_train"])
    spaces = {
        "siglip": Space("siglip", tensors["siglip_train"].shape[1], tensors["siglip_train"].shape[2],
                        white(tensors["siglip_train"]), white(tensors["siglip_test"])),
        "vq": Space("vq", tensors["vq_train"].shape[1], tensors["vq_train"].shape[2], tensors["vq_train"],
                    tensors["vq_test"], tensors["codes_train"], tensors["codes_test"], tensors["codebook"]),
    }
    if trained:
        total = sum(seconds.get(p, 0.0) for p in trained)
        print(f"stage0: built {', '.join(trained)} in {total:.0f} s; quality "
              + ", ".join(f"{k.removeprefix('stage0/')} {v:.3f}" for k, v in quality.items()), flush=True)
    return VisualSpaces(models, spaces, quality, tuple(trained), seconds, white)


def _encode_siglip(model, images, device) -> torch.Tensor:
    return encode_all(lambda px: sgl.encode_patches(model, px), images, device)  # [N, n, d]


def _write_features(folder: Path, models, pool, tokenizer, siglip_train, device) -> None:
    """Frozen features of every train and test image, and the quality of every part on the test images."""
    test_images = pool.images("test")
    vq_train, codes_train = encode_all(models["vq"].encode, pool.images("train"), device)
    vq_test, codes_test = encode_all(models["vq"].encode, test_images, device)
    siglip_test = _encode_siglip(models["siglip"], test_images, device)
    tensors = {"siglip_train": siglip_train, "siglip_test": siglip_test, "vq_train": vq_train,
               "vq_test": vq_test, "codes_train": codes_train, "codes_test": codes_test,
               "codebook": models["vq"].quantizer.codebook.detach().cpu()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "features.safetensors"))
    (folder / "quality.json").write_text(json.dumps(
        _quality(models, pool, tokenizer, siglip_test, codes_test, codes_train, device), indent=1))


@torch.no_grad()
def _quality(models, pool, tokenizer, siglip_test, codes_test, codes_train, device) -> dict[str, float]:
    test = pool.images("test")
    labels = pool.judge_labels("test")
    real = torch.as_tensor(test).float() / 255
    vq_images = torch.cat([to_uint8(models["vq"].decode_codes(codes_test[i:i + 512].to(device))).cpu()
                           for i in range(0, len(codes_test), 512)])
    siglip_images = torch.cat([to_uint8(models["decoder"](siglip_test[i:i + 512].to(device))).cpu()
                               for i in range(0, len(siglip_test), 512)])
    q: dict[str, float] = {}
    for judge in [m for m in ("judge", "loss_judge") if m in models]:  # the scorer, then the loss judge if on
        for name, images in ((judge, test), (f"{judge}_vq", vq_images), (f"{judge}_siglip", siglip_images)):
            for head, acc in jdg.accuracy(models[judge], images, labels).items():
                q[f"stage0/{name}/{head}"] = acc
    q["stage0/vq/mse"] = (vq_images.float() / 255 - real).pow(2).mean().item()
    q["stage0/vq/code_usage"] = codes_train.unique().numel() / len(models["vq"].quantizer.codebook)
    q["stage0/decoder/mse"] = (siglip_images.float() / 255 - real).pow(2).mean().item()
    if tokenizer is not None:  # our captions mean nothing to a SigLIP with another tokenizer (vision.siglip_path)
        captions = sgl.tokenize_captions(tokenizer, pool.full_captions("test"))
        q["stage0/siglip/retrieval_acc"] = sgl.retrieval_accuracy(models["siglip"], test, captions, device)
    return q
