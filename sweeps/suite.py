"""A suite: several sweep specs run as one sweep into one store, so a cell two specs share trains once.

    unisweep plan sweeps/paper/                 # a folder runs as the suite its suite.yaml describes
    unisweep run sweeps/paper/suite.yaml
    unisweep report paper                       # one report, each member analysed on its own cells

    suite: paper                                # names the sweep (its MLflow parent run and every trial)
    description: every verdict spec of the paper at cpu scale
    specs: [mutual_benefit.yaml, alignment.yaml] # member specs, relative to this file
    seeds: {start: 1000, first: 5, step: 5, max: 30}   # every member's seeds: a list, or seeds until decided
    tracking: {experiment: unisweep}            # optional, as in a spec; so are storage and smoke

A suite compiles to one ordinary spec (`compile_suite`): each member's grid points, with the member's overrides
folded in, become explicit `grid.points`; `members` records which points each member asked for. Identical
configurations resolve to one cell (sweeps/spec.py `expand`), which trains once and is tagged with every member
that wants it (`unisweep.members`). The compiled text is what the parent run stores, so `resume` needs none of
the files. Members must share the base preset, seed scope and resources (one Tuner runs them all) and be grids:
a search finds where to look and stays a sweep of its own.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from sweeps.spec import SpecError, SweepSpec, grid_points, load_spec, parse_spec

SUITE_FILE = "suite.yaml"
KEYS = ("suite", "description", "specs", "seeds", "tracking", "storage", "smoke")


def is_suite(path: str | Path) -> bool:
    path = Path(path)
    if path.is_dir():
        return True
    try:
        raw = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (yaml.YAMLError, UnicodeDecodeError):
        return False  # not a suite; the spec loader reports what is wrong with it
    return isinstance(raw, dict) and "suite" in raw


def load(path: str | Path) -> tuple[SweepSpec, str]:
    """A spec file, or a suite (a folder or a suite file), as (spec, the text its parent run keeps)."""
    from sweeps.spec import spec_text

    if not is_suite(path):
        return load_spec(path), spec_text(path)
    text = compile_suite(path)
    try:
        return parse_spec(text), text
    except SpecError as e:
        raise SpecError(f"{path}: {e.path}" if e.path else str(path), e.message) from None


def compile_suite(path: str | Path) -> str:
    path = Path(path)
    if path.is_dir():
        path = path / SUITE_FILE
        if not path.is_file():
            raise SpecError(str(path.parent), f"a folder runs as a suite: it needs a {SUITE_FILE} listing its specs")
    try:
        raw = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise SpecError(str(path), f"not a readable YAML suite: {' '.join(str(e).split())[:200]}") from None
    if not isinstance(raw, dict):
        raise SpecError(str(path), "a suite is a YAML mapping (suite, specs, seeds, ...)")
    for key in raw:
        if key not in KEYS:
            raise SpecError(f"{path}: {key}", f"unknown key {key!r}; valid: {', '.join(KEYS)}")
    for key in ("suite", "specs"):
        if key not in raw:
            raise SpecError(f"{path}: {key}", "required key is missing")
    if not isinstance(raw["specs"], list) or not raw["specs"]:
        raise SpecError(f"{path}: specs", "a list of at least one spec file, relative to the suite file")
    members = {}
    for i, name in enumerate(raw["specs"]):
        member = load_spec(path.parent / str(name))
        _check_member(member, f"{path}: specs[{i}]", next(iter(members.values()), None))
        members[member.name] = member
    points, asked = _points(members)
    first = next(iter(members.values()))
    compiled = {"name": raw["suite"], "description": raw.get("description", ""), "base": first.base,
                "seeds": raw.get("seeds", first.seeds), "seed_scope": first.seed_scope,
                "grid": {"points": points}, "members": asked,
                "resources": dataclasses.asdict(first.resources)}
    compiled |= {k: raw[k] for k in ("tracking", "storage", "smoke") if k in raw}
    header = f"# the suite {path.name} ({', '.join(members)}), compiled by sweeps/suite.py\n"
    return header + yaml.safe_dump(compiled, sort_keys=False)


def _check_member(member: SweepSpec, where: str, first: SweepSpec | None) -> None:
    if member.search:
        raise SpecError(where, f"{member.name} is a search; a suite runs grids (run the search on its own)")
    if first is None:
        return
    for what in ("base", "seed_scope", "resources"):
        if getattr(member, what) != getattr(first, what):
            raise SpecError(where, f"{member.name}'s {what} differs from {first.name}'s; a suite's members share it "
                                   "(run that spec on its own)")


def _points(members: dict[str, SweepSpec]) -> tuple[list[dict], dict[str, list[int]]]:
    """Every member's grid points with its overrides folded in, each distinct point once; member -> indices."""
    points: list[dict] = []
    index: dict[str, int] = {}
    asked: dict[str, list[int]] = {}
    for name, member in members.items():
        for point in grid_points(member):
            full = {**member.overrides, **point}
            key = repr(sorted(full.items()))
            if key not in index:
                index[key] = len(points)
                points.append(full)
            asked.setdefault(name, []).append(index[key])
    return points, asked
