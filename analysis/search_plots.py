"""Figures of a search's Optuna study (analysis/studies.py): history, Pareto front, parameter importance and
parallel coordinates, drawn with matplotlib in the style of analysis/plots.py (Optuna's own are plotly, or
experimental matplotlib ones in another style).

Each function returns the path it wrote, or None when the study holds nothing to draw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.plots import _save, plt  # Agg, the report's DPI and layout
from analysis.studies import Study

SAMPLE, BEST, FRONT = "#1f5fa8", "#c8372d", "black"


def history(s: Study, path: Path) -> Path | None:
    """Each objective per sample in the order sampled, with the best so far."""
    if s.trials.empty:
        return None
    fig, axes = plt.subplots(1, len(s.metrics), figsize=(5 * len(s.metrics), 3.4), squeeze=False)
    for ax, metric, mode in zip(axes[0], s.metrics, s.modes, strict=True):
        x, y = s.trials["number"], s.trials[metric]
        best = y.cummax() if mode == "max" else y.cummin()
        ax.scatter(x, y, s=16, color=SAMPLE, label="sample")
        ax.step(x, best, where="post", color=BEST, lw=1.2, label=f"best so far ({mode})")
        ax.set_xlabel("sample (order sampled)")
        ax.set_ylabel(metric, fontsize=8)
        ax.set_title(f"{s.name}: optimisation history", fontsize=9)
        ax.legend(fontsize=7)
    return _save(fig, path)


def pareto(s: Study, path: Path) -> Path | None:
    """The first two objectives of every sample, the non-dominated ones (over all objectives) joined."""
    if len(s.metrics) < 2 or s.trials.empty:
        return None
    a, b = s.metrics[:2]
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    points = ax.scatter(s.trials[a], s.trials[b], c=s.trials["number"], cmap="viridis", s=18)
    fig.colorbar(points, ax=ax, label="sample")
    front = s.trials.iloc[s.front()].sort_values(a)
    ax.plot(front[a], front[b], "o--", color=FRONT, mfc="none", ms=9, lw=1, label="Pareto front")
    ax.set_xlabel(f"{a} ({s.modes[0]})", fontsize=8)
    ax.set_ylabel(f"{b} ({s.modes[1]})", fontsize=8)
    more = f" (front over all {len(s.metrics)} objectives)" if len(s.metrics) > 2 else ""
    ax.set_title(f"{s.name}: Pareto front{more}", fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def importance(s: Study, path: Path) -> Path | None:
    """Optuna's fANOVA importance of each searched key, per objective."""
    if not s.importance:
        return None
    fig, axes = plt.subplots(1, len(s.importance), figsize=(4.5 * len(s.importance), 1.8 + 0.4 * len(s.keys)),
                             squeeze=False)
    for ax, (metric, shares) in zip(axes[0], s.importance.items(), strict=True):
        keys = sorted(shares, key=shares.get)
        ax.barh(range(len(keys)), [shares[k] for k in keys], color=SAMPLE, height=0.6)
        ax.set_yticks(range(len(keys)), keys, fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of the variance (fANOVA)", fontsize=8)
        ax.set_title(f"for {metric}", fontsize=8)
    fig.suptitle(f"{s.name}: parameter importance over {len(s.trials)} samples", fontsize=9)
    return _save(fig, path)


def parallel(s: Study, path: Path) -> Path | None:
    """Every sample as a line across the searched keys and the objectives, each axis scaled to its own range
    (log keys on a log scale), coloured by the first objective; the Pareto-optimal (best) samples in black."""
    if s.trials.empty:
        return None
    columns = [*s.keys, *s.metrics]
    scaled, ranges = {}, {}
    for c in columns:
        values, labels = _axis(s.trials[c], c in s.log_keys)
        lo, hi = np.nanmin(values), np.nanmax(values)
        scaled[c] = (values - lo) / (hi - lo) if hi > lo else np.full(len(values), 0.5)
        ranges[c] = labels
    x = np.arange(len(columns))
    ys = np.array([scaled[c] for c in columns]).T  # [samples, axes]
    colour = s.trials[s.metrics[0]].to_numpy(dtype=float)
    norm = plt.Normalize(np.nanmin(colour), np.nanmax(colour))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(columns)), 4.2))
    for row, value in zip(ys, colour, strict=True):
        ax.plot(x, row, color=plt.cm.viridis(norm(value)), alpha=0.75, lw=1)
    for row in ys[s.front()]:
        ax.plot(x, row, color=FRONT, lw=2)
    for i, c in enumerate(columns):
        ax.axvline(i, color="#999", lw=0.8)
        ax.text(i, 1.03, ranges[c][1], ha="center", va="bottom", fontsize=7)
        ax.text(i, -0.03, ranges[c][0], ha="center", va="top", fontsize=7)
    ax.set_xticks(x, [*s.keys, *(f"{m}\n({mode})" for m, mode in zip(s.metrics, s.modes, strict=True))], fontsize=8)
    ax.tick_params(axis="x", pad=14)
    ax.set_yticks([])
    ax.set_ylim(-0.12, 1.12)
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=ax, label=s.metrics[0])
    best = "Pareto-optimal" if len(s.metrics) > 1 else "best"
    ax.set_title(f"{s.name}: parallel coordinates (black: {best}; each axis min to max)", fontsize=9)
    return _save(fig, path)


def _axis(column: pd.Series, log: bool) -> tuple[np.ndarray, tuple[str, str]]:
    """A column as numbers to scale (category codes for a choice), and the labels of its two ends."""
    if column.dtype.kind not in "iuf":
        names = sorted(column.astype(str).unique())
        codes = column.astype(str).map({n: i for i, n in enumerate(names)}).to_numpy(dtype=float)
        return codes, (names[0], names[-1])
    values = column.to_numpy(dtype=float)
    ends = (f"{np.nanmin(values):.3g}", f"{np.nanmax(values):.3g}")
    return (np.log10(values) if log else values), ends
