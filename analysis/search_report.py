"""The report's section on searches: per Optuna study (analysis/studies.py), what it found and its figures
(analysis/search_plots.py), as blocks of analysis/document.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import document as D
from analysis import studies

FIGURES = {"history": "optimisation history", "pareto": "Pareto front", "importance": "parameter importance",
           "parallel": "parallel coordinates"}


def section(specs: dict[str, str], trials: pd.DataFrame, folder: Path, storage: str | None = None,
            recorded: dict[str, str] | None = None) -> tuple[list[D.Block], dict[str, Path]]:
    """Blocks and {figure key: PNG} for every sweep in `specs` ({sweep: stored spec YAML}) that has a `search`.
    Studies are looked for in `storage` (report --storage), else where the sweep's launch recorded its storage
    (`recorded`: {sweep: path}), else in the stored spec's `storage`."""
    from analysis import search_plots  # late: matplotlib

    found, notes = [], []
    for sweep, text in specs.items():
        more, why = studies.for_sweep(sweep, text, trials, storage or (recorded or {}).get(sweep))
        found += more
        notes += why
    if not found and not notes:
        return [], {}
    blocks: list[D.Block] = [D.Heading("Searches")]
    blocks += [D.Bullets(notes)] if notes else []
    figures = {}
    for s in found:
        objectives = ", ".join(f"`{m}` ({mode})" for m, mode in zip(s.metrics, s.modes, strict=True))
        source = f"the study in `{s.url}`" if s.url else "its MLflow runs (the study is out of reach)"
        blocks += [D.Heading(f"Study {s.name}", 3),
                   D.Text(f"{len(s.trials)} complete samples of {', '.join(f'`{k}`' for k in s.keys)} "
                          f"(sweep {s.sweep}), read from {source}; objectives {objectives}.")]
        if not s.trials.empty:
            best = "Pareto-optimal samples" if len(s.metrics) > 1 else "Best sample"
            blocks += [D.Text(f"{best}:"), D.Table(s.trials.iloc[s.front()].reset_index(drop=True))]
        for kind, alt in FIGURES.items():
            path = getattr(search_plots, kind)(s, folder / f"search_{s.name}_{kind}.png")
            if path is not None:
                figures[f"search {s.name} {kind}"] = path
                blocks.append(D.Figure(f"{alt}: {s.name}", path))
    return blocks, figures
