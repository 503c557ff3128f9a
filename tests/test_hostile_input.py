"""Hostile and malformed input: for any spec text and any `key=value` arguments, a valid result or a one-line
`ConfigError` (what the command line prints as `unisweep: error: ...` with exit 2), never a traceback. Property
tests (hypothesis) over arbitrary text and over spec-shaped YAML, plus the known attacks one by one."""

import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweeps import spec as S
from unified import config as C
from unisweep import cli

SECTIONS = ["name", "base", "description", "overrides", "seeds", "seed_scope", "grid", "search", "resources",
            "tracking", "storage", "smoke", "extends", "nosuch"]
KEYS = ["model.variant", "data.tasks", "train.lr", "backbone.size", "data.freq.vqa.time", "nosuch.key", "seed",
        "model", "data.und_samples", "train.eval_points"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["smartwatch-cpu", "vq-vq", "mixed", "tiny", "quick"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)),
                      max_leaves=12)
specs = st.fixed_dictionaries({"name": st.one_of(st.just("ok"), scalars), "base": st.one_of(
    st.just("smartwatch-cpu"), scalars)}, optional={k: values for k in SECTIONS if k not in ("name", "base")})
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _valid_or_one_line(parse, *args):
    try:
        return parse(*args)
    except C.ConfigError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))
        return None


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_is_a_spec_or_a_one_line_error(text):
    result = _valid_or_one_line(S.parse_spec, text)
    assert result is None or isinstance(result, S.SweepSpec)


@SETTINGS
@given(specs)
def test_any_spec_shaped_yaml_is_a_spec_or_a_one_line_error(raw):
    result = _valid_or_one_line(S.parse_spec, yaml.safe_dump(raw))
    assert result is None or (isinstance(result, S.SweepSpec) and result.name == raw["name"])


@SETTINGS
@given(st.lists(st.one_of(st.text(max_size=30), st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS),
                                                         st.text(max_size=12))), max_size=4), st.booleans())
def test_any_key_value_arguments_are_a_config_or_a_one_line_error(pairs, smoke):
    def build(pairs, smoke):
        return cli.build_config("smartwatch-cpu", smoke, cli.parse_overrides(pairs))

    result = _valid_or_one_line(build, pairs, smoke)
    assert result is None or isinstance(result, C.ExperimentConfig)


def test_a_yaml_alias_bomb_is_refused_at_once():
    lines = ["name: bomb", "base: smartwatch-cpu", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1},"
              f" *a{i - 1}, *a{i - 1}]" for i in range(1, 10)]  # 10^10 values, if expanded
    t0 = time.perf_counter()
    with pytest.raises(S.SpecError, match=r"an alias \(\*a0\)"):
        S.parse_spec("\n".join(lines))
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize("target, why", [("/etc/passwd", "not a sweep spec"), ("/nonexistent.yaml", "no such"),
                                         ("/", "no such")])
def test_extends_to_anything_but_a_spec_is_a_one_line_error(tmp_path, target, why, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text(f"extends: {target}\nname: x\n")
    assert cli.main(["plan", str(spec)]) == 2
    err = capsys.readouterr().err
    assert why in err and err.count("\n") == 1 and "Traceback" not in err
