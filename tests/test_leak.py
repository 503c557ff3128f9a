"""Leak-free test sets: at every domain's cpu preset no test image is a pixel twin of a training image, and
SynthFaces' test faces show only combinations of the asked attributes that training never shows.

The cpu pools (4000 + 500 images at 32 px) render in about 1 s per domain, so the whole pools are checked."""

import hashlib
import itertools
from collections import Counter

import numpy as np
import pytest

from unified import config as C
from unified.data import faces
from unified.data import faces_text as ft
from unified.data.dataset import load_pool
from unified.data.domains import DOMAINS, get_domain


@pytest.fixture(scope="module")
def leak_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("leak")


def cpu_pool_of(domain: str, cache):
    return load_pool(C.resolve(C.preset(f"{domain}-cpu")).data, cache)  # rendered once, then loaded


@pytest.fixture(params=sorted(DOMAINS))
def cpu_pool(request, leak_cache):
    return cpu_pool_of(request.param, leak_cache)


def digests(images: np.ndarray) -> list[str]:
    return [hashlib.sha256(img.tobytes()).hexdigest() for img in images]


def combination(attrs: dict) -> tuple:
    return tuple(attrs[a] for a in faces.COMBINATION)


def test_no_test_image_is_a_pixel_twin_of_a_training_image(cpu_pool):
    d = cpu_pool.data_cfg
    train, test = cpu_pool.images("train"), cpu_pool.images("test")
    assert train.shape == (d.n_images, d.resolution, d.resolution, 3) and test.shape[0] == d.n_test
    # equal bytes mean equal images: a test image rendered again from its attributes hashes the same
    domain = get_domain(d.domain)
    assert digests(domain.render(cpu_pool.attrs("test")[0], d)[None]) == digests(test[:1])
    seen = set(digests(train))
    twins = [i for i, h in enumerate(digests(test)) if h in seen]
    assert not twins, f"{d.domain}: {len(twins)} of {d.n_test} test images repeat a training image, e.g. {twins[:5]}"


def test_faces_test_combinations_never_occur_in_training(leak_cache):
    pool = cpu_pool_of("faces", leak_cache)
    train = {combination(a) for a in pool.attrs("train")}
    test = Counter(combination(a) for a in pool.attrs("test"))
    assert not train & set(test), sorted(train & set(test))[:5]
    assert len(test) >= 20  # the test pool spans nearly all 24 held-out combinations, not a handful
    assert all(faces.held_out(a) for a in pool.attrs("test"))
    assert not any(faces.held_out(a) for a in pool.attrs("train"))


def test_held_out_rule_is_a_balanced_eighth():
    """One combination in eight is test-only, every value of every asked attribute equally often on both sides,
    and every combination of fewer attributes appears in training."""
    values = [range(2) if a in ft.BINARY else ft.VALUES[a] for a in faces.COMBINATION]
    combos = [dict(zip(faces.COMBINATION, v, strict=True)) for v in itertools.product(*values)]
    held = [c for c in combos if faces.held_out(c)]
    kept = [c for c in combos if not faces.held_out(c)]
    assert len(combos) == 192 and len(held) == 24  # the test must be able to fail: a non-trivial fraction
    for a, vs in zip(faces.COMBINATION, values, strict=True):
        for side in (held, kept):
            counts = Counter(c[a] for c in side)
            assert set(counts) == set(vs) and len(set(counts.values())) == 1, (a, counts)
    for k in range(1, len(faces.COMBINATION)):
        for subset in itertools.combinations(faces.COMBINATION, k):
            assert {tuple(c[a] for a in subset) for c in kept} == {tuple(c[a] for a in subset) for c in combos}
    # a function of the asked attributes only: background and nuisance never move a face across splits
    rng = np.random.default_rng(0)
    for split, other_split in (("train", "test"), ("test", "train")) * 50:
        attrs = faces.sample_attributes(rng, split=split)
        other = dict(faces.sample_attributes(rng, split=other_split), **{a: attrs[a] for a in faces.COMBINATION})
        assert faces.held_out(other) == (split == "test")


def test_sampler_keeps_to_its_split():
    rng = np.random.default_rng(0)
    assert not any(faces.held_out(faces.sample_attributes(rng, split="train")) for _ in range(500))
    assert all(faces.held_out(faces.sample_attributes(rng, split="test")) for _ in range(500))
    assert not any(faces.held_out(faces.sample_attributes(rng)) for _ in range(100))  # the default: train
    with pytest.raises(ValueError, match="unknown split 'val'"):
        faces.sample_attributes(rng, split="val")
