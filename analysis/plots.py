"""Figures of the report (matplotlib, Agg, PNG): DataFrames and verdicts in, one PNG per figure out.

Each function returns the path it wrote, or None when the sweep holds nothing to draw (the report says so).
Colours carry the verdict (green reproduced, red contradicted, grey inconclusive); whiskers are the Holm-level
intervals of analysis/findings.py, so a bar whose whisker clears 0 is a reproduced comparison.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display here, and none needed on a cluster head node

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from analysis import findings as F  # noqa: E402
from analysis import floors, stats  # noqa: E402

COLOURS = {"reproduced": "#2a9d4b", "contradicted": "#c8372d", "inconclusive": "#8c8c8c", "untestable": "#e3c16f"}
ARM_COLOURS = {"mixed": "#1f5fa8", "understanding": "#e07b22", "generation": "#8e44ad"}
DPI = 110


def effect_bars(verdict: F.Verdict, path: Path, xlabel: str = "effect (paired by seed)") -> Path | None:
    """Horizontal bars: each comparison's effect with its interval, coloured by its verdict."""
    table = verdict.comparisons
    if table.empty:
        return None
    labels = list(table["comparison"])
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * len(table)))
    lo = (table["effect"] - table["ci_low"]).clip(lower=0).fillna(0)
    hi = (table["ci_high"] - table["effect"]).clip(lower=0).fillna(0)
    ax.barh(y, table["effect"], color=[COLOURS.get(v, "#8c8c8c") for v in table["verdict"]], height=0.6)
    ax.errorbar(table["effect"], y, xerr=[lo, hi], fmt="none", ecolor="black", capsize=3, lw=1)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{label} (n={n})" for label, n in zip(labels, table["n"], strict=True)], fontsize=8)
    ax.set_xlabel(xlabel)
    side = f" ({verdict.side} side)" if verdict.side else ""
    ax.set_title(f"Finding {verdict.finding}{side}: {verdict.verdict}", fontsize=10)
    return _save(fig, path)


def data_scaling(trials: pd.DataFrame, histories: pd.DataFrame, path: Path) -> Path | None:
    """Each side's metric vs % of data, mixed vs the single-task arm, mean over seeds ± 95 % band, per variant."""
    rows = F.baseline(trials)
    if histories.empty or "data.tasks" not in rows or "model.variant" not in rows:
        return None
    variants = sorted(rows["model.variant"].dropna().unique())
    fig, axes = plt.subplots(2, len(variants), figsize=(3.6 * len(variants), 6), squeeze=False)
    drawn = False
    for col, variant in enumerate(variants):
        for r, (side, (metric, control)) in enumerate(F.SIDES.items()):
            ax = axes[r, col]
            sub = rows[rows["model.variant"].eq(variant) & rows["data.tasks"].isin(["mixed", control])]
            long = sub[["run_id", "seed", "data.tasks"]].merge(histories[histories["key"].eq(metric)], on="run_id")
            for arm, g in long.groupby("data.tasks"):
                table = g.pivot_table(index="seed", columns="step", values="value", aggfunc="mean")
                ax.plot(table.columns, table.mean(axis=0), "o-", color=ARM_COLOURS[arm], label=arm, ms=3)
                if len(table) > 1:  # the band of the mean over seeds at each step
                    low, high = _mean_band(table.to_numpy())
                    ax.fill_between(table.columns, low, high, color=ARM_COLOURS[arm], alpha=0.2, lw=0)
                drawn = True
            chance = floors.chance_metric(metric)
            if chance in sub and sub[chance].notna().any():  # the runs' own chance level, at their last eval
                ax.axhline(sub[chance].mean(), color="black", ls="--", lw=1, label=f"chance ({chance})")
            ax.set_title(f"{variant} — {side} (band: 95 % of the mean over seeds)", fontsize=8)
            ax.set_xlabel("% of training data")
            ax.set_ylabel(metric, fontsize=8)
            ax.legend(fontsize=6)
    return _save(fig, path) if drawn else _discard(fig)


def gain_vs_axis(trials: pd.DataFrame, axis: str, path: Path) -> Path | None:
    """Paired gain (mixed − single-task) vs a numeric axis (affine strength), per variant and side, with bands."""
    rows = F.baseline(trials, vary=axis)
    if axis not in rows or rows[axis].nunique() < 2:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), squeeze=False)
    drawn = False
    for ax, (side, (metric, control)) in zip(axes[0], F.SIDES.items(), strict=True):
        keys = [*[k for k in F.context_keys(rows) if k != "model.variant"], "model.variant"]
        gains = F.paired_gains(rows, metric, control, keys=keys)
        if gains.empty:
            ax.text(0.5, 0.5, f"no mixed / {control}-only pairs", ha="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        for variant, g in gains.groupby("model.variant"):
            table = g.pivot_table(index="seed", columns=axis, values="gain", aggfunc="mean")
            x = F.axis_positions(axis, table.columns)
            points = ax.plot(x, table.mean(axis=0), "o", label=f"{variant} (mean of seeds)", ms=4)[0]
            grid = np.linspace(np.nanmin(x), np.nanmax(x), 30)
            fit = stats.line_band(x, table.to_numpy(), grid)  # the per-seed slopes finding 4 averages
            ax.plot(grid, fit["mean"], color=points.get_color(), lw=1)
            ax.fill_between(grid, fit["low"], fit["high"], color=points.get_color(), alpha=0.15, lw=0)
            drawn = True
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(axis)
        ax.set_ylabel(f"gain in {metric}", fontsize=8)
        ax.set_title(f"{side}: mixed − {control}-only", fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, path) if drawn else _discard(fig)


def mix_ratio(trials: pd.DataFrame, path: Path) -> Path | None:
    """Each metric vs log2(gen/und) among mixed runs with the quadratic fit and its optimum; the Pareto front."""
    rows = F.baseline(trials)
    if not {"data.tasks", "data.gen_samples", "data.und_samples"} <= set(rows.columns):
        return None
    rows = rows[rows["data.tasks"].eq("mixed")].copy()
    rows["ratio"] = F.mix_ratios(rows)
    if rows["ratio"].nunique() < 3:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (side, (metric, _)) in zip(axes[:2], F.SIDES.items(), strict=True):
        for variant, g in rows[rows[metric].notna()].groupby("model.variant") if metric in rows else []:
            x = F.ratio_axis(g["ratio"])
            points = ax.scatter(x, g[metric], s=12, alpha=0.6, label=variant)
            table = g.pivot_table(index="seed", columns="ratio", values=metric, aggfunc="mean")
            if table.shape[1] >= 3:
                tx = F.ratio_axis(table.columns.to_numpy())
                grid = np.linspace(tx.min(), tx.max(), 50)
                fit = stats.quadratic_fit(tx, table.to_numpy(), grid)
                ax.plot(grid, fit["mean"], color=points.get_facecolor()[0])
                ax.fill_between(grid, fit["low"], fit["high"], color=points.get_facecolor()[0], alpha=0.15, lw=0)
                if tx.min() < fit["optimum"] < tx.max():
                    ax.axvline(fit["optimum"], color=points.get_facecolor()[0], ls=":", lw=1)
        ax.set_xlabel("log2(generation / understanding samples)")
        ax.set_ylabel(metric, fontsize=8)
        ax.set_title(f"{side} vs mix ratio", fontsize=9)
        ax.legend(fontsize=7)
    _pareto(axes[2], rows)
    return _save(fig, path)


def _pareto(ax, rows: pd.DataFrame) -> None:
    """Understanding vs generation score of every mixed run, the non-dominated ones joined (a search's front)."""
    if not {F.UND, F.GEN} <= set(rows.columns):
        ax.set_axis_off()
        return
    both = rows[rows[F.UND].notna() & rows[F.GEN].notna()]
    ax.scatter(both[F.UND], both[F.GEN], c=np.log2(both["ratio"].clip(lower=1e-3)), cmap="viridis", s=14)
    front = stats.pareto_front(both[[F.UND, F.GEN]].to_numpy())
    if front.size:
        ax.plot(both[F.UND].to_numpy()[front], both[F.GEN].to_numpy()[front], "k--", lw=1, label="Pareto front")
        ax.legend(fontsize=7)
    ax.set_xlabel(F.UND)
    ax.set_ylabel(F.GEN)
    ax.set_title("mixed runs (colour: log2 gen/und)", fontsize=9)


def image_grid(images: dict[str, dict[str, Path]], path: Path, shown: int = 8) -> Path | None:
    """Per variant, its first `shown` prompts: the real image the prompt describes beside the generated one, with
    what the prompt asked for written under the pair. Runs that logged no prompts.json show the two grids whole."""
    if not images:
        return None
    cols = 4
    rows_per = {v: -(-min(shown, len(_prompts(f))) // cols) or 1 for v, f in images.items()}
    fig, axes = plt.subplots(sum(rows_per.values()), cols, figsize=(2.6 * cols, 2.2 * sum(rows_per.values())),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    row = 0
    for variant, files in sorted(images.items()):
        prompts = _prompts(files)[:shown]
        grids = {n: np.asarray(Image.open(files[n]).convert("RGB"))
                 for n in ("generated.png", "real.png") if n in files}
        if prompts and len(grids) == 2:
            n_logged = len(_prompts(files))
            real, generated = (_tiles(grids[n], n_logged) for n in ("real.png", "generated.png"))
            for i, prompt in enumerate(prompts):
                ax = axes[row + i // cols, i % cols]
                gap = np.full((real[i].shape[0], 2, 3), 255, np.uint8)
                ax.imshow(np.concatenate([real[i], gap, generated[i]], axis=1), interpolation="nearest")
                ax.set_title(f"{variant}: real | generated" if i == 0 else "", fontsize=7, loc="left")
                ax.text(0.5, -0.04, "\n".join(_wrap(prompt or "(nothing asked)", 34)), transform=ax.transAxes,
                        ha="center", va="top", fontsize=6)
        else:
            for ax, (name, grid) in zip(axes[row], grids.items(), strict=False):
                ax.imshow(grid, interpolation="nearest")
                ax.set_title(f"{variant} — {name.removesuffix('.png')}", fontsize=8)
        row += rows_per[variant]
    return _save(fig, path)


def _prompts(files: dict[str, Path]) -> list[str]:
    import json

    return json.loads(files["prompts.json"].read_text()) if "prompts.json" in files else []


def _tiles(grid: np.ndarray, n: int, gap: int = 2) -> list[np.ndarray]:
    """The n images of a grid sweeps.tracking.log_image_grid tiled (ceil(sqrt n) columns, 2-pixel gaps)."""
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    h, w = (grid.shape[0] + gap) // rows - gap, (grid.shape[1] + gap) // cols - gap
    return [grid[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w]
            for r, c in (divmod(i, cols) for i in range(n))]


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [text]


def _mean_band(values: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise bootstrap band of the mean over seeds (rows), NaNs ignored."""
    values = np.asarray(values, dtype=float)
    idx = np.random.default_rng(stats.RNG_SEED).integers(0, len(values), size=(1000, len(values)))
    boot = np.nanmean(values[idx], axis=1)
    tail = (1 - level) / 2 * 100
    return np.nanpercentile(boot, tail, axis=0), np.nanpercentile(boot, 100 - tail, axis=0)


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _discard(fig) -> None:
    plt.close(fig)
    return None
