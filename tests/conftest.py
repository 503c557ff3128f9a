"""Shared fixtures: one smoke-size dataset, tokenizer and stage-0 build per test session."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest

from unified import config


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("unisweep-cache")


@pytest.fixture(scope="session")
def smoke_cfg():
    return config.resolve(config.smoke(config.preset("smartwatch-cpu")))


@pytest.fixture(scope="session")
def pool(smoke_cfg, cache_dir):
    from unified.data.dataset import load_pool

    return load_pool(smoke_cfg.data, cache_dir)


@pytest.fixture(scope="session")
def tokenizer(smoke_cfg):
    from unified.data.tokenizer import build_tokenizer

    return build_tokenizer(smoke_cfg.data.domain)


@pytest.fixture(scope="session")
def spaces(smoke_cfg, pool, tokenizer, cache_dir):
    from unified.vision.stage0 import build_spaces

    return build_spaces(smoke_cfg, pool, tokenizer, cache_dir)


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the session (PLATFORM.md §10: define it once, here)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}})
    yield ray
    ray.shutdown()
