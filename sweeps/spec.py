"""Sweep spec: one YAML file -> a validated `SweepSpec`, and the trials (cell x seed) it stands for.

Every mistake is a `SpecError` raised at load time, before anything launches, and names its YAML path
(`grid.model.varient: unknown key ... (did you mean model.variant?)`). Values are checked by unified/config.py
itself: each key is applied to the preset and every cell's config is resolved.

    name: mutual_benefit                 # [A-Za-z0-9_.-]+; names the MLflow parent run and every trial
    description: Finding 1, mixed vs task-specific training.
    base: smartwatch-cpu                 # a preset of unified.config.PRESETS
    overrides: {train.eval_points: 4}    # dotted config keys applied to the preset
    seeds: [0, 1, 2]                     # or seeds until decided (sweeps/sequential.py, docs/SEQUENTIAL.md):
                                         # {start: 1000, first: 5, step: 5, max: 30, precision: 0.04}
    seed_scope: trial                    # trial: seeds share one stage-0 build (dataset, VQ-VAE, SigLIP, judge);
                                         # data: each seed also sets data.seed, so intervals hold the build's variance
    grid:                                # product of axes ...
      data.tasks: [mixed, understanding, generation]
      zip:                               # ... and zip groups: the axes of one group move together
        - model.variant: [siglip-siglip, vq-vq]
          model.alpha: [1.0, 0.2]        # same length as every other axis of its group
      points:                            # ... and explicit cells, each with keys of its own (a suite's grid)
        - {model.variant: vq-vq, data.tasks: mixed}
    members: {mutual_benefit: [0]}       # written by a suite (sweeps/suite.py): member spec -> its grid.points
    search:                              # optional: Optuna; one study per grid cell, seeds[0] only
      space:
        data.gen_ratio: {uniform: [0.0, 2.0]}   # also loguniform: [lo, hi], int: [lo, hi], choice: [a, b]
      metric: eval/und/total             # or a list, with a list of modes of the same length
      mode: max
      num_samples: 16
      seed: 0                            # the sampler's seed
      asha: {grace_period: 1, reduction_factor: 2}   # single metric only; counted in eval reports
    resources: {workers_per_trial: 1, cpus_per_worker: 1, gpus_per_worker: 0, execution: auto, max_failures: 1}
    tracking: {uri: sqlite:///mlflow.db, experiment: unisweep}  # the flags, then $MLFLOW_TRACKING_URI and
                                         # $MLFLOW_EXPERIMENT_NAME, win over these
    storage: ray_results                 # Ray results and shared caches
    extends: ../other.yaml               # in a file: take every section this file does not set from that spec
    smoke:                               # with --smoke (tests): shrink everything
      seeds: [0]                         # replace `seeds`
      grid: {data.tasks: [mixed]}        # keep only these values of an axis (a subset of the real ones)
      num_samples: 2                     # replace search.num_samples
      train.steps: 4                     # dotted keys apply on top of unified.config.smoke

Config of a trial, in this order: preset -> `overrides` -> (with --smoke: `unified.config.smoke` -> `smoke`)
-> the grid point -> the seed. Grid axes come last, so a smoke sweep runs the real grid's cells (or the subset
`smoke.grid` keeps) at smoke size; a grid axis may not also appear in `overrides` or `smoke` as a dotted key (it
would be overwritten silently). Relative paths in
`tracking.uri` (sqlite) and `storage` resolve against the current directory and are stored absolute, because
Ray runs trials in other directories (docs/PLATFORM.md §4).
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sweeps.defaults import DEFAULT_EXPERIMENT, absolute_tracking_uri, experiment_name, tracking_uri
from sweeps.schema import NAME_PATTERN
from sweeps.sequential import DEFAULT_PRECISION, Sequential
from unified import config as C

DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")
MODES = ("max", "min")
EXECUTIONS = ("auto", "train")
SEED_SCOPES = ("trial", "data")


class SpecError(C.ConfigError):
    """A bad sweep spec; the message starts with the YAML path of the offending value."""

    def __init__(self, path: str, message: str):
        self.path, self.message = path, message
        super().__init__(f"{path}: {message}" if path else message)


@dataclass
class Distribution:
    kind: str  # uniform | loguniform | int | choice
    args: list  # [lo, hi] or the choices


@dataclass
class Asha:
    grace_period: int = 1  # eval reports a trial runs before it can be stopped
    reduction_factor: int = 2


@dataclass
class Search:
    space: dict[str, Distribution]
    metric: list[str]
    mode: list[str]
    num_samples: int
    seed: int = 0
    asha: Asha | None = None


@dataclass
class Resources:
    workers_per_trial: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    execution: str = "auto"  # auto: one-worker trials run in the Tune trial process; train: always Ray Train
    max_failures: int = 1  # Ray Train restarts a trial's workers from its last checkpoint this many times


@dataclass
class Tracking:
    """Where the sweep logs, absent flags: $MLFLOW_TRACKING_URI / $MLFLOW_EXPERIMENT_NAME over the spec's values
    over the defaults (sweeps/defaults.py)."""

    uri: str  # absolute
    experiment: str = DEFAULT_EXPERIMENT


@dataclass
class SweepSpec:
    name: str
    base: str
    description: str = ""
    overrides: dict[str, typing.Any] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    seed_scope: str = "trial"  # "data": a trial's seed also sets data.seed (its own stage-0 build)
    sequential: Sequential | None = None  # seeds until decided; `seeds` then holds its first round's
    axes: dict[str, list] = field(default_factory=dict)  # independent grid axes
    zips: list[dict[str, list]] = field(default_factory=list)  # groups of axes that move together
    points: list[dict[str, typing.Any]] = field(default_factory=list)  # explicit cells, each its own keys
    members: dict[str, list[int]] = field(default_factory=dict)  # a suite's: member spec -> indices into points
    search: Search | None = None
    resources: Resources = field(default_factory=Resources)
    tracking: Tracking | None = None
    storage: str = ""  # absolute
    smoke: dict[str, typing.Any] = field(default_factory=dict)  # dotted keys only
    smoke_seeds: list[int] | None = None  # `smoke.seeds`: fewer seeds keep a smoke sweep short
    smoke_grid: dict[str, list] = field(default_factory=dict)  # `smoke.grid`: axis -> the values kept
    smoke_num_samples: int | None = None  # `smoke.num_samples`: fewer search samples
    # grid point -> its resolved config, kept by validation for `expand` (a big grid resolves each cell once)
    resolved: dict[str, C.ExperimentConfig] = field(default_factory=dict, repr=False, compare=False)

    def seeds_for(self, smoke: bool) -> list[int]:
        return self.smoke_seeds if smoke and self.smoke_seeds else self.seeds

    def num_samples(self, smoke: bool) -> int:
        return self.smoke_num_samples if smoke and self.smoke_num_samples else self.search.num_samples

    def axis_keys(self) -> list[str]:
        keys = list(self.axes) + [k for group in self.zips for k in group]
        return keys + list(dict.fromkeys(k for point in self.points for k in point))


@dataclass
class Trial:
    cell: str  # unified.config.cell_hash(config)
    seed: int
    overrides: dict[str, typing.Any]  # the grid point (and sampled search values): what varies in the sweep
    config: C.ExperimentConfig  # resolved, seed included
    name: str  # {sweep}/{cell}/s{seed}
    members: tuple[str, ...] = ()  # a suite: the member specs that ask for this cell


# ---------------------------------------------------------------- loading


def load_spec(path: str | Path) -> SweepSpec:
    text = spec_text(path)
    try:
        return parse_spec(text)
    except SpecError as e:
        raise SpecError(f"{path}: {e.path}" if e.path else str(path), e.message) from None


def spec_text(path: str | Path, _seen: tuple[Path, ...] = ()) -> str:
    """The spec file's YAML with `extends` resolved: the spec named there (a path relative to this file) supplies
    every top-level section this file does not set, whole. The driver stores this text, so a resume needs
    neither file (sweeps/paper/full/ extends the cpu-scale paper specs to the paper's scale)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(str(path), "no such sweep spec file")
    text = path.read_text()
    raw = _load_yaml(text, str(path))
    if not isinstance(raw, dict) or "extends" not in raw:
        return text
    parent = raw.pop("extends")
    if not isinstance(parent, str):
        raise SpecError(f"{path}: extends", f"expected the path of another spec file, got {parent!r}")
    parent_path = (path.parent / parent).resolve()
    if not parent_path.is_file():
        raise SpecError(f"{path}: extends", f"no such sweep spec file {parent_path}")
    if parent_path in (*_seen, path.resolve()):
        raise SpecError(f"{path}: extends", f"{parent} leads back to this file (a cycle)")
    base = _load_yaml(spec_text(parent_path, (*_seen, path.resolve())), str(parent_path))
    if not isinstance(base, dict):
        raise SpecError(f"{path}: extends", f"{parent_path} is not a sweep spec (a YAML mapping of sections)")
    merged = {**base, **raw}
    return f"# {path.name}, extending {parent}, resolved\n" + yaml.safe_dump(merged, sort_keys=False)


def _load_yaml(text: str, where: str):
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise SpecError(where, f"not valid YAML: {' '.join(str(e).split())}") from None  # one line


def parse_spec(text: str) -> SweepSpec:
    raw = _load_yaml(text, "")
    if isinstance(raw, dict) and "extends" in raw:
        raise SpecError("extends", "resolved only in a spec file (load_spec / unisweep), relative to that file")
    top = _mapping(raw, "", required=("name", "base"), optional=(
        "description", "overrides", "seeds", "seed_scope", "grid", "search", "resources", "tracking", "storage",
        "smoke", "members"))
    name = _typed(top["name"], str, "name")
    if not NAME_PATTERN.match(name):
        raise SpecError("name", f"{name!r} may hold only letters, digits, '_', '.' and '-' (it names runs)")
    base = _typed(top["base"], str, "base")
    if base not in C.PRESETS:
        raise SpecError("base", f"unknown preset {base!r}{_nearest(base, C.PRESETS)}; valid: {', '.join(C.PRESETS)}")
    spec = SweepSpec(name=name, base=base, description=_typed(top.get("description", ""), str, "description"))
    spec.overrides = _dotted(top.get("overrides", {}), "overrides")
    smoke = dict(_typed(top.get("smoke") or {}, dict, "smoke"))
    if "seeds" in smoke:
        spec.smoke_seeds = _seeds(smoke.pop("seeds"), "smoke.seeds")
    smoke_grid = smoke.pop("grid", {})
    smoke_samples = smoke.pop("num_samples", None)
    spec.smoke = _dotted(smoke, "smoke")
    spec.seeds, spec.sequential = _seed_plan(top.get("seeds", [0]))
    spec.seed_scope = _typed(top.get("seed_scope", "trial"), str, "seed_scope")
    if spec.seed_scope not in SEED_SCOPES:
        raise SpecError("seed_scope", f"{spec.seed_scope!r} is not one of {', '.join(SEED_SCOPES)}")
    if spec.seed_scope == "data" and ("data.seed" in spec.overrides or "data.seed" in spec.axis_keys()):
        raise SpecError("seed_scope", "data.seed follows the seed under seed_scope: data; do not also set it")
    spec.axes, spec.zips, spec.points = _grid(top.get("grid", {}))
    spec.members = _members(top.get("members", {}), len(spec.points))
    spec.smoke_grid = _smoke_grid(smoke_grid, spec)
    if "search" in top:
        spec.search = _search(top["search"])
        _known_metrics(spec.search.metric)
        if spec.seed_scope == "data":
            raise SpecError("seed_scope", "a search runs one seed per sample; seed_scope: data is for grids")
        if spec.sequential:
            raise SpecError("seeds", "a search runs one seed per sample; seeds until decided are for grids")
    if smoke_samples is not None:
        if spec.search is None:
            raise SpecError("smoke.num_samples", "only a spec with a `search` has samples")
        spec.smoke_num_samples = _typed(smoke_samples, int, "smoke.num_samples")
        if spec.smoke_num_samples < 1:
            raise SpecError("smoke.num_samples", f"must be >= 1, got {spec.smoke_num_samples}")
    spec.resources = _resources(top.get("resources", {}))
    spec.tracking = _tracking(top.get("tracking", {}))
    spec.storage = _storage(top.get("storage", "ray_results"))
    _validate_config(spec)
    return spec


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (PyYAML keeps the last one silently), and aliases:
    a spec has no use for them, and nested aliases can make a few lines mean billions of values."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, f"an alias (*{event.anchor}): specs do not use YAML "
                                              "anchors and aliases; write the values out", event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


# ---------------------------------------------------------------- sections


def _seeds(raw, path: str) -> list[int]:
    seeds = _typed(raw, list, path)
    if not seeds:
        raise SpecError(path, "needs at least one seed")
    for i, s in enumerate(seeds):
        _typed(s, int, f"{path}[{i}]")
    if len(set(seeds)) != len(seeds):
        raise SpecError(path, f"repeats a seed: {seeds}")
    return list(seeds)


def _seed_plan(raw) -> tuple[list[int], Sequential | None]:
    """`seeds`: a list, or a mapping asking for seeds until decided (its first round's seeds, the schedule)."""
    if not isinstance(raw, dict):
        return _seeds(raw, "seeds"), None
    m = _mapping(raw, "seeds", required=("start", "first", "step", "max"), optional=("precision",))
    start, first, step, most = (_typed(m[k], int, f"seeds.{k}") for k in ("start", "first", "step", "max"))
    precision = float(_typed(m.get("precision", DEFAULT_PRECISION), (int, float), "seeds.precision"))
    if first < 2:
        raise SpecError("seeds.first", f"must be >= 2 (an interval needs two seeds), got {first}")
    if step < 1:
        raise SpecError("seeds.step", f"must be >= 1, got {step}")
    if most < first:
        raise SpecError("seeds.max", f"must be >= seeds.first ({first}), got {most}")
    if precision <= 0:
        raise SpecError("seeds.precision", f"must be > 0, got {precision}")
    plan = Sequential(start, first, step, most, precision)
    return plan.seeds(first), plan


def _grid(raw) -> tuple[dict[str, list], list[dict[str, list]], list[dict]]:
    grid = _typed(raw, dict, "grid")
    axes = {k: _axis(v, f"grid.{k}") for k, v in grid.items() if k not in ("zip", "points")}
    zips: list[dict[str, list]] = []
    for i, group in enumerate(_typed(grid.get("zip", []), list, "grid.zip")):
        path = f"grid.zip[{i}]"
        group = {k: _axis(v, f"{path}.{k}") for k, v in _typed(group, dict, path).items()}
        if not group:
            raise SpecError(path, "an empty zip group; give it axes of equal length")
        lengths = {k: len(v) for k, v in group.items()}
        if len(set(lengths.values())) > 1:
            raise SpecError(path, f"the axes of a zip group move together and need equal lengths, got {lengths}")
        for k in group:
            if k in axes or any(k in g for g in zips):
                raise SpecError(f"{path}.{k}", "this key is already a grid axis")
        zips.append(group)
    raw_points = _typed(grid.get("points", []), list, "grid.points")
    points = [_dotted(p, f"grid.points[{i}]") for i, p in enumerate(raw_points)]
    for i, point in enumerate(points):
        for k in point:
            if k in axes or any(k in g for g in zips):
                raise SpecError(f"grid.points[{i}].{k}", "this key is already a grid axis")
    return axes, zips, points


def _members(raw, n_points: int) -> dict[str, list[int]]:
    """`members`: which of `grid.points` each member spec of a suite asked for (its report analyses them apart)."""
    members = {}
    for name, indices in _typed(raw, dict, "members").items():
        path = f"members.{name}"
        indices = [_typed(i, int, f"{path}[{j}]") for j, i in enumerate(_typed(indices, list, path))]
        bad = [i for i in indices if not 0 <= i < n_points]
        if bad:
            raise SpecError(path, f"{bad} are not indices of grid.points (0..{n_points - 1})")
        members[str(name)] = indices
    return members


def _smoke_grid(raw, spec: SweepSpec) -> dict[str, list]:
    kept = {}
    all_axes = {**spec.axes, **{k: v for group in spec.zips for k, v in group.items()}}
    for point in spec.points:
        for k, v in point.items():
            all_axes.setdefault(k, []).append(v)
    for key, values in _typed(raw, dict, "smoke.grid").items():
        path = f"smoke.grid.{key}"
        if key not in all_axes:
            axes = ", ".join(all_axes) or "none"
            raise SpecError(path, f"not a grid axis{_nearest(str(key), all_axes)}; axes: {axes}")
        values = _axis(values, path)
        extra = [v for v in values if v not in all_axes[key]]
        if extra:
            raise SpecError(path, f"{extra} not among the axis values {all_axes[key]}; smoke.grid keeps a subset")
        kept[key] = values
    return kept


def _axis(raw, path: str) -> list:
    values = _typed(raw, list, path)
    if not values:
        raise SpecError(path, "an empty grid axis; give it at least one value")
    return list(values)


def _search(raw) -> Search:
    s = _mapping(raw, "search", required=("space", "metric", "mode", "num_samples"), optional=("seed", "asha"))
    space = {}
    for key, dist in _typed(s["space"], dict, "search.space").items():
        path = f"search.space.{key}"
        kind, args = _one_entry(_typed(dist, dict, path), path)
        space[key] = Distribution(kind, _dist_args(kind, args, f"{path}.{kind}"))
    if not space:
        raise SpecError("search.space", "an empty search space")
    metric, mode = _str_list(s["metric"], "search.metric"), _str_list(s["mode"], "search.mode")
    if len(metric) != len(mode):
        raise SpecError("search.mode", f"one mode per metric: {len(metric)} metrics, {len(mode)} modes")
    for i, m in enumerate(mode):
        if m not in MODES:
            raise SpecError(f"search.mode[{i}]" if len(mode) > 1 else "search.mode", f"{m!r} is not max or min")
    num_samples = _typed(s["num_samples"], int, "search.num_samples")
    if num_samples < 1:
        raise SpecError("search.num_samples", f"must be >= 1, got {num_samples}")
    asha = None
    if "asha" in s:
        a = _mapping(s["asha"], "search.asha", optional=("grace_period", "reduction_factor"))
        asha = Asha(_typed(a.get("grace_period", 1), int, "search.asha.grace_period"),
                    _typed(a.get("reduction_factor", 2), int, "search.asha.reduction_factor"))
        if asha.grace_period < 1 or asha.reduction_factor < 2:
            raise SpecError("search.asha", "needs grace_period >= 1 and reduction_factor >= 2")
        if len(metric) > 1:
            raise SpecError("search.asha", "ASHA stops on one metric; a multi-objective search cannot use it")
    return Search(space, metric, mode, num_samples, _typed(s.get("seed", 0), int, "search.seed"), asha)


def reported_metrics() -> list[str]:
    """What a trial reports at its eval points, for any domain: what a search may optimise."""
    from unified.data.domains import DOMAINS, get_domain
    from unified.metrics import GEN_KEYS

    und = sorted({"total", *(m for d in DOMAINS for m in get_domain(d).METRICS.values())})
    every_hand = [C.DataConfig(domain=d, hands="hms") for d in DOMAINS]  # the most judge heads a domain has
    heads = sorted({h for cfg in every_hand for h in get_domain(cfg.domain).judge_heads(cfg)})
    per_head = [f"eval/gen/{kind}/{h}" for kind in ("head", "head_shuffled") for h in heads]
    return [f"eval/und/{m}" for m in und] + [f"eval/gen/{m}" for m in GEN_KEYS] + per_head


def _known_metrics(metrics: list[str]) -> None:
    valid = reported_metrics()
    for i, m in enumerate(metrics):
        if m not in valid:
            path = f"search.metric[{i}]" if len(metrics) > 1 else "search.metric"
            raise SpecError(path, f"{m!r} is not a metric trials report{_nearest(m, valid)}; valid: {', '.join(valid)}")


def _one_entry(dist: dict, path: str):
    if len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
        bad = [k for k in dist if k not in DISTRIBUTIONS]
        hint = _nearest(str(bad[0]), DISTRIBUTIONS) if bad else ""
        raise SpecError(path, f"expected one of {', '.join(DISTRIBUTIONS)} with its arguments, got {dist}{hint}")
    return next(iter(dist.items()))


def _dist_args(kind: str, args, path: str) -> list:
    args = _typed(args, list, path)
    if kind == "choice":
        if not args:
            raise SpecError(path, "needs at least one choice")
        return args
    if len(args) != 2:
        raise SpecError(path, f"expected [lo, hi], got {args}")
    for i, a in enumerate(args):
        _typed(a, int if kind == "int" else (int, float), f"{path}[{i}]")
    lo, hi = args
    if not lo < hi:
        raise SpecError(path, f"needs lo < hi, got {args}")
    if kind == "loguniform" and lo <= 0:
        raise SpecError(path, f"needs lo > 0, got {lo}")
    return args


def _resources(raw) -> Resources:
    r = _mapping(raw, "resources", optional=("workers_per_trial", "cpus_per_worker", "gpus_per_worker", "execution",
                                             "max_failures"))
    res = Resources(
        workers_per_trial=_typed(r.get("workers_per_trial", 1), int, "resources.workers_per_trial"),
        cpus_per_worker=float(_typed(r.get("cpus_per_worker", 1.0), (int, float), "resources.cpus_per_worker")),
        gpus_per_worker=float(_typed(r.get("gpus_per_worker", 0.0), (int, float), "resources.gpus_per_worker")),
        execution=_typed(r.get("execution", "auto"), str, "resources.execution"),
        max_failures=_typed(r.get("max_failures", 1), int, "resources.max_failures"))
    if res.max_failures < 0:
        raise SpecError("resources.max_failures", f"must be >= 0, got {res.max_failures}")
    if res.workers_per_trial < 1:
        raise SpecError("resources.workers_per_trial", f"must be >= 1, got {res.workers_per_trial}")
    if res.cpus_per_worker <= 0:
        raise SpecError("resources.cpus_per_worker", f"must be > 0, got {res.cpus_per_worker}")
    if res.gpus_per_worker < 0:
        raise SpecError("resources.gpus_per_worker", f"must be >= 0, got {res.gpus_per_worker}")
    if res.execution not in EXECUTIONS:
        raise SpecError("resources.execution",
                        f"{res.execution!r} is not one of {', '.join(EXECUTIONS)}{_nearest(res.execution, EXECUTIONS)}")
    return res


def _tracking(raw) -> Tracking:
    """The store and experiment a run uses unless a flag names others: the environment's over the spec's."""
    t = _mapping(raw, "tracking", optional=("uri", "experiment"))
    experiment = _typed(t.get("experiment", DEFAULT_EXPERIMENT), str, "tracking.experiment")
    uri = None
    if "uri" in t:
        try:  # checked even where $MLFLOW_TRACKING_URI wins: the spec must hold where to log without it
            uri = absolute_tracking_uri(_typed(t["uri"], str, "tracking.uri"))
        except C.ConfigError as e:
            raise SpecError("tracking.uri", str(e)) from None
    return Tracking(tracking_uri(spec=uri), experiment_name(spec=experiment))


def _storage(raw) -> str:
    storage = _typed(raw, str, "storage")
    if "://" in storage:  # s3://, gs://, ...: Ray reads these itself
        return storage
    return os.path.abspath(os.path.expanduser(storage))


# ---------------------------------------------------------------- config validation


def _validate_config(spec: SweepSpec) -> None:
    """Check every key on the preset, then resolve every cell (real and smoke) and name the first failure."""
    base = C.preset(spec.base)
    for key, value in spec.overrides.items():
        _apply(base, {key: value}, f"overrides.{key}")
    for key, value in spec.smoke.items():
        _apply(C.smoke(base), {key: value}, f"smoke.{key}")
    axis_keys = spec.axis_keys()
    for section, keys in (("overrides", spec.overrides), ("smoke", spec.smoke)):
        for key in keys:
            if key in axis_keys:
                raise SpecError(f"{section}.{key}", "also a grid axis, whose values would overwrite it")
    base = C.override(base, spec.overrides)
    keys = set(C.valid_keys(base))
    for (path, key), values in _axis_paths(spec):
        for i, v in enumerate(values):  # an unknown key is named by its path, a bad value by its index
            _apply(base, {key: v}, path if key not in keys else f"{path}[{i}]")
    if spec.search:
        for key, dist in spec.search.space.items():
            path = f"search.space.{key}"
            if key in axis_keys:
                raise SpecError(path, "also a grid axis; a key is either searched or gridded")
            for v in (dist.args if dist.kind == "choice" else dist.args[:2]):
                _apply(base, {key: v}, path)
    for smoke in (False, True):
        common = common_config(spec, smoke)
        samples = [{}] if not spec.search else [
            {key: v} for key, dist in spec.search.space.items()
            for v in (dist.args if dist.kind == "choice" else dist.args[:2])]
        for point in grid_points(spec, smoke):
            for sample in samples:
                cfg = _cell_config(spec, common, point, sample, smoke)
            if not smoke and not spec.search:
                spec.resolved[_point_key(spec, point)] = cfg


def _cell_config(spec: SweepSpec, common: C.ExperimentConfig, point: dict, sample: dict | None = None,
                 smoke: bool = False) -> C.ExperimentConfig:
    """Resolve one cell; on failure name the axis value (or search bound) that fails on its own, else the cell."""
    sample = sample or {}
    try:
        return C.resolve(C.override(common, {**point, **sample}))
    except C.ConfigError as e:
        error = e
    suffix = " (with --smoke)" if smoke else ""
    if sample:  # a search bound: report it with the grid cell it failed in
        (key, value), = sample.items()
        raise SpecError(f"search.space.{key}", f"{error}{suffix} at {_short({**point, key: value})}")
    for key, value in point.items():
        try:
            C.resolve(C.override(common, {key: value}))
        except C.ConfigError as e:
            raise SpecError(_point_path(spec, key, value), f"{e}{suffix}") from None
    raise SpecError(f"grid (cell {_short(point)})", f"{error}{suffix}")


def _axis_paths(spec: SweepSpec):
    for key, values in spec.axes.items():
        yield (f"grid.{key}", key), values
    for i, group in enumerate(spec.zips):
        for key, values in group.items():
            yield (f"grid.zip[{i}].{key}", key), values
    for i, point in enumerate(spec.points):
        for key, value in point.items():
            yield (f"grid.points[{i}].{key}", key), [value]


def _point_path(spec: SweepSpec, key: str, value) -> str:
    for (path, k), values in _axis_paths(spec):
        if k == key:
            return f"{path}[{values.index(value)}]"
    return key


def _apply(cfg: C.ExperimentConfig, overrides: dict, path: str) -> C.ExperimentConfig:
    try:
        return C.override(cfg, overrides)
    except C.ConfigError as e:
        raise SpecError(path, str(e)) from None


def _short(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


# ---------------------------------------------------------------- cells and trials


def grid_points(spec: SweepSpec, smoke: bool = False) -> list[dict[str, typing.Any]]:
    """The grid's points in a stable order: the product of the axes and of the zip groups (one point without a
    grid); with `smoke`, only those whose values `smoke.grid` keeps."""
    dims = [[{k: v} for v in values] for k, values in spec.axes.items()]
    dims += [[dict(zip(group, values, strict=True)) for values in zip(*group.values(), strict=True)]
             for group in spec.zips]
    dims += [[dict(p) for p in spec.points]] if spec.points else []
    points = [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*dims)]
    keep = spec.smoke_grid if smoke else {}
    return [p for p in points if all(p[k] in values for k, values in keep.items())]


def common_config(spec: SweepSpec, smoke: bool) -> C.ExperimentConfig:
    """Preset -> overrides (-> smoke): what every trial starts from before its grid point; unresolved."""
    cfg = C.override(C.preset(spec.base), spec.overrides)
    return C.override(C.smoke(cfg), spec.smoke) if smoke else cfg


def build_trial(spec: SweepSpec, point: dict[str, typing.Any], seed: int, smoke: bool = False) -> Trial:
    """One trial: the spec's config at a grid point (plus any sampled search values) and a seed."""
    return _trials(spec, point, [seed], common_config(spec, smoke), smoke)[0]


def _point_key(spec: SweepSpec, point: dict) -> str:
    """What a cell's config depends on besides the preset's code: a spec copied with other overrides misses."""
    return repr((spec.base, sorted(spec.overrides.items()), sorted(point.items())))


def _trials(spec: SweepSpec, point: dict, seeds: list[int], common: C.ExperimentConfig, smoke: bool) -> list[Trial]:
    cached = None if smoke else spec.resolved.get(_point_key(spec, point))
    cfg = cached or _cell_config(spec, common, point, smoke=smoke)
    cell = cell_of(cfg, spec.seed_scope)  # once per point: the seed is not part of the cell, nor of resolution
    return [_seeded(spec.name, cfg, cell, point, seed, spec.seed_scope) for seed in seeds]


def cell_of(cfg: C.ExperimentConfig, seed_scope: str = "trial") -> str:
    """The cell hash; under seed_scope "data" data.seed is the seed's, so the scope replaces it in the hash (and
    a cell never matches the same config with a fixed data.seed)."""
    if seed_scope == "trial":
        return C.cell_hash(cfg, resolved=True)
    return C.stable_hash([C.cell_hash(cfg, resolved=True), "data.seed follows the seed"])


def _seeded(sweep: str, cfg: C.ExperimentConfig, cell: str, overrides: dict, seed: int,
            seed_scope: str = "trial") -> Trial:
    # The trials of a cell share its sections (nothing mutates a trial's config): a grid of 100,000 trials must
    # not hold 100,000 copies of one config.
    seeded = dataclasses.replace(cfg, seed=seed)
    if seed_scope == "data":
        seeded.data = dataclasses.replace(cfg.data, seed=seed)
    return Trial(cell, seed, dict(overrides), seeded, f"{sweep}/{cell}/s{seed}")


def reseeded(sweep: str, trial: Trial, seed: int, seed_scope: str = "trial") -> Trial:
    """The same cell at another seed (a sequential sweep's next round)."""
    return dataclasses.replace(_seeded(sweep, trial.config, trial.cell, trial.overrides, seed, seed_scope),
                               members=trial.members)


def sampled_trial(sweep: str, common: C.ExperimentConfig, overrides: dict, seed: int) -> Trial:
    """The trial of one search sample: `overrides` = grid point + sampled values (validated at their bounds)."""
    cfg = C.resolve(C.override(common, overrides))
    return _seeded(sweep, cfg, C.cell_hash(cfg, resolved=True), overrides, seed)


def expand(spec: SweepSpec, smoke: bool = False) -> list[Trial]:
    """The grid x seeds as trials; identical configs (same cell and seed) appear once.

    With a `search`, these are the grid cells at seeds[0], one Optuna study each (docs/DESIGN.md §8: a search uses
    the first seed); the driver turns each sample into a trial with `build_trial(spec, {**point, **sample}, ...)`.
    """
    common = common_config(spec, smoke)
    seeds = spec.seeds_for(smoke)[:1] if spec.search else spec.seeds_for(smoke)
    trials: dict[tuple[str, int], Trial] = {}
    members: dict[str, set[str]] = {}  # a suite: cell -> the members whose points resolve to it
    for point in grid_points(spec, smoke):
        for trial in _trials(spec, point, seeds, common, smoke):
            trials.setdefault((trial.cell, trial.seed), trial)
            members.setdefault(trial.cell, set()).update(_members_of(spec, point))
    return [dataclasses.replace(t, members=tuple(sorted(members[t.cell]))) if members[t.cell] else t
            for t in trials.values()]


def _members_of(spec: SweepSpec, point: dict) -> list[str]:
    return [name for name, indices in spec.members.items()
            if any(spec.points[i].items() <= point.items() for i in indices)]


_UNSET = object()  # a key an explicit grid point does not set


def varying_axes(spec: SweepSpec, smoke: bool = False) -> list[str]:
    """The keys whose value differs between the sweep's trials: grid axes with more than one value (at this smoke
    flag), every searched key, and `seed` when trials run more than one seed. Each trial run is tagged with them."""
    points = grid_points(spec, smoke)
    keys = [k for k in spec.axis_keys() if len({repr(p.get(k, _UNSET)) for p in points}) > 1]
    keys += list(spec.search.space) if spec.search else []
    seeds = spec.seeds_for(smoke)[:1] if spec.search else spec.seeds_for(smoke)
    return keys + (["seed"] if len(seeds) > 1 else [])


# ---------------------------------------------------------------- small checks


def _mapping(raw, path: str, required=(), optional=()) -> dict:
    m = _typed(raw if raw is not None else {}, dict, path or "the spec")
    valid = list(required) + list(optional)
    for key in m:
        if key not in valid:
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(where, f"unknown key {key!r}{_nearest(str(key), valid)}; valid: {', '.join(valid)}")
    for key in required:
        if key not in m:
            raise SpecError(f"{path}.{key}" if path else key, "required key is missing")
    return m


def _dotted(raw, path: str) -> dict[str, typing.Any]:
    m = _typed(raw if raw is not None else {}, dict, path)
    for key, value in m.items():
        _typed(key, str, f"{path}.{key}")
        if isinstance(value, (dict, list)):
            raise SpecError(f"{path}.{key}", f"expected one value for a dotted config key, got {value!r}")
    return dict(m)


def _str_list(raw, path: str) -> list[str]:
    items = [raw] if isinstance(raw, str) else _typed(raw, list, path)
    if not items:
        raise SpecError(path, "needs at least one entry")
    return [_typed(x, str, f"{path}[{i}]") for i, x in enumerate(items)]


def _typed(value, types, path: str):
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        names = " or ".join({"dict": "a mapping", "list": "a list"}.get(t.__name__, t.__name__) for t in types)
        raise SpecError(path, f"expected {names}, got {value!r} ({type(value).__name__})")
    return value


def _nearest(key: str, candidates) -> str:
    near = difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(near)}?)" if near else ""


__all__ = ["SpecError", "SweepSpec", "Trial", "Search", "Distribution", "Asha", "Resources", "Tracking",
           "load_spec", "spec_text", "parse_spec", "grid_points", "build_trial", "sampled_trial", "common_config",
           "expand", "varying_axes", "reseeded"]
