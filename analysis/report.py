"""`unisweep report SWEEP [SWEEP ...]`: the findings of one or more sweeps as a report with figures.

    unisweep report quickstart [--tracking-uri URI] [--experiment NAME] [--out DIR] [--storage DIR]

Writes `report.md` (the verdict table first, then each finding's comparisons and figure, each search's study,
the generated images), the same as one self-contained `report.html` (figures inline: the MLflow UI shows it
whole, analysis/html.py), `findings.csv` and `figures/*.png` under the out directory (default
reports/<sweep>), prints the verdict table, and logs the report and figures as artifacts of each sweep's parent
run under `report/`, with each verdict as a tag and its effect and interval as metrics, so the MLflow UI shows
them beside the sweep and its runs table sorts by them. Both documents are rendered from one list of blocks
(analysis/document.py). Reading MLflow is analysis/query.py's job; the frames it returns are cached under
`<out>/.cache`, so a second report of an unchanged sweep skips the metric histories. Smoke runs (`--smoke`) are
analysed only when a sweep has no other runs. Seconds for a quickstart; see BENCHMARKS.md for 10,000 trials.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import document as D
from analysis import findings as F
from analysis import floors, html, query, search_report
from analysis.sequential import DEFAULT_PRECISION, Schedule
from sweeps import schema
from sweeps.defaults import redact
from sweeps.errors import NotFound

FIGURES = {"1-und": "mutual_benefit_und.png", "1-gen": "mutual_benefit_gen.png", "2": "data_scaling.png",
           "3": "alignment.png", "4": "affine.png", "5": "mix_ratio.png", "6": "concept_transfer.png",
           "7": "llm_vs_adapters.png", "8": "model_scale.png"}
IMAGES = "generated_images.png"
IMAGE_TRIES = 5  # runs per variant asked for images before the figure leaves the variant out


def write_report(uri: str, sweeps: list[str] | str, out_dir: str | Path, experiment: str = "unisweep",
                 cache_dir: str | Path | None = None, attach: bool = True, storage: str | None = None
                 ) -> dict[str, F.Verdict]:
    """Write the report of `sweeps` into `out_dir` and onto each sweep's parent run; return {"1-und": Verdict, ...}
    (keys as F.all_findings). On the parent runs each verdict is also a tag `finding.<key>.verdict` and metrics
    `finding.<key>.effect`, `.ci_low`, `.ci_high` (where finite). `storage`: where the searches' Optuna studies
    live, if not where their specs say (analysis/studies.py)."""
    sweeps = [sweeps] if isinstance(sweeps, str) else list(sweeps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cache = Path(cache_dir or out / ".cache")
    data = query.load(uri, sweeps, experiment, cache_dir=cache)
    # Verdicts and figures are a pure function of the runs and of this code: kept beside the Parquet frames, as
    # Parquet and JSON (data only: a cache on shared storage must not be able to run code, as a pickle could).
    derived = cache / f"report-{data.key}-{_code_hash()}"
    analysed = load_analysis(derived, data.trials)
    if analysed is None or not all(p.is_file() for p in analysed[2].values()):
        analysed = analyse(uri, sweeps, data, out, cache, schedules(query.spec_texts(uri, data.parents)))
        save_analysis(derived, *analysed)
    trials, verdicts, figures, notes = analysed
    # Searches are drawn afresh each time: their studies live outside MLflow, so its cache key cannot vouch for them.
    searches, search_figures = search_report.section(
        query.spec_texts(uri, data.parents), trials, out / "figures", storage,
        recorded=query.parent_tag(uri, data.parents, schema.STORAGE))

    doc = blocks(sweeps, uri, trials, verdicts, figures, notes, data.cached, searches)
    (out / "report.md").write_text(D.markdown(doc))
    (out / "report.html").write_text(html.render(doc, f"unisweep report: {', '.join(sweeps)}"))
    pd.DataFrame([v.row() for v in verdicts.values()]).to_csv(out / "findings.csv", index=False)
    pd.concat([v.comparisons.assign(finding=k) for k, v in verdicts.items() if not v.comparisons.empty]
              or [pd.DataFrame()]).to_csv(out / "comparisons.csv", index=False)
    if attach and data.parents:
        files = [out / name for name in ("report.md", "report.html", "findings.csv", "comparisons.csv")]
        query.attach_report(uri, list(data.parents.values()), [*files, *figures.values(), *search_figures.values()],
                            out, tags={f"finding.{k}.verdict": v.verdict for k, v in verdicts.items()},
                            metrics=verdict_metrics(verdicts))
    return verdicts


def verdict_metrics(verdicts: dict[str, F.Verdict]) -> dict[str, float]:
    """`finding.<key>.effect`, `.ci_low`, `.ci_high` of every verdict where finite (a NaN would sort as a value)."""
    return {f"finding.{k}.{name}": float(getattr(v, name)) for k, v in verdicts.items()
            for name in ("effect", "ci_low", "ci_high")
            if getattr(v, name) is not None and math.isfinite(getattr(v, name))}


def analyse(uri: str, sweeps: list[str], data: query.SweepData, out: Path, cache: Path,
            schedule: tuple[Schedule, float] | None = None):
    """(trials used, verdicts, {figure name: path}, notes): what the report shows. A suite's members are analysed
    apart, each on the cells it asked for (key "<member>/<finding>"); `schedule`: seeds until decided's rule."""
    trials, notes = select_trials(data.trials)
    if trials.empty:
        raise NotFound(f"sweep(s) {', '.join(sweeps)} have no FINISHED trial runs yet in {uri}")
    if schedule:
        notes.append(f"Seeds until decided (docs/SEQUENTIAL.md): looks at {', '.join(map(str, schedule[0].looks))} "
                     f"seeds; a comparison stops when decided or when its interval is within ±{schedule[1]:g}.")
    verdicts, figures = {}, {}
    for member, rows in member_rows(trials):
        found = F.all_findings(rows, data.histories, **_rule(schedule))
        drawn = draw_figures(found, rows, data.histories, out / "figures" / member)
        if member:
            found = {f"{member}/{k}": v for k, v in found.items() if v.verdict != "not run"}
            drawn = {f"{member}/{k}": p for k, p in drawn.items()}
        verdicts |= found
        figures |= drawn
    image_path = _plots().image_grid(shown_images(uri, trials, cache / "images"), out / "figures" / IMAGES)
    if image_path is None:
        notes.append("No trial logged a `generated.png` artifact: the figure of generated images is left out.")
    else:
        figures["images"] = image_path
    return trials, verdicts, figures, notes


def member_rows(trials: pd.DataFrame):
    """("", every trial) for a sweep; (member, its trials) for each member of a suite, in the suite's order."""
    if "members" not in trials or trials["members"].isna().all():
        yield "", trials
        return
    listed = trials["members"].fillna("").str.split(",")
    for member in dict.fromkeys(m for names in listed for m in names if m):
        yield member, trials[listed.map(lambda names, m=member: m in names)]


def schedules(spec_texts: dict[str, str]) -> tuple[Schedule, float] | None:
    """The seeds-until-decided schedule of the sweeps' specs (`seeds: {first, step, max, precision}`), if any.
    Several sweeps with different schedules cannot share one rule: each must be reported on its own."""
    found = set()
    for text in spec_texts.values():
        seeds = (yaml.safe_load(text) or {}).get("seeds")
        if isinstance(seeds, dict):
            found.add((Schedule(seeds["first"], seeds["step"], seeds["max"]),
                       float(seeds.get("precision", DEFAULT_PRECISION))))
    if len(found) > 1:
        raise ValueError("these sweeps ran different seeds-until-decided schedules: report each on its own")
    return found.pop() if found else None


def _rule(schedule: tuple[Schedule, float] | None) -> dict:
    return {"schedule": schedule[0], "precision": schedule[1]} if schedule else {}


def save_analysis(folder: Path, trials: pd.DataFrame, verdicts: dict[str, F.Verdict], figures: dict, notes: list):
    """The analysis as data: the run ids it used, each verdict's row and comparisons, figure paths, notes."""
    tmp = folder.with_name(f".tmp-{folder.name}")
    tmp.mkdir(parents=True, exist_ok=True)
    pd.concat([v.comparisons.assign(verdict_key=k) for k, v in verdicts.items()] or [pd.DataFrame()]
              ).to_parquet(tmp / "comparisons.parquet", index=False)
    (tmp / "analysis.json").write_text(json.dumps({
        "run_ids": list(trials["run_id"]), "verdicts": {k: v.row() for k, v in verdicts.items()},
        "columns": {k: list(v.comparisons.columns) for k, v in verdicts.items()},
        "figures": {k: str(p) for k, p in figures.items()}, "notes": notes}, default=_plain))
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)


def load_analysis(folder: Path, all_trials: pd.DataFrame):
    """What `save_analysis` wrote, or None when it is missing or unreadable (then the report recomputes)."""
    try:
        saved = json.loads((folder / "analysis.json").read_text())
        comparisons = pd.read_parquet(folder / "comparisons.parquet")
    except (OSError, ValueError):
        return None
    verdicts = {}
    for key, row in saved["verdicts"].items():
        columns = saved["columns"][key]
        table = comparisons.loc[comparisons["verdict_key"].eq(key), columns].reset_index(drop=True) \
            if columns else pd.DataFrame()
        verdicts[key] = F.Verdict(**{k: (np.nan if v is None else v) for k, v in row.items()}, comparisons=table)
    trials = all_trials[all_trials["run_id"].isin(saved["run_ids"])]
    return trials, verdicts, {k: Path(p) for k, p in saved["figures"].items()}, saved["notes"]


def _plain(value):
    """JSON for numpy scalars (NaN becomes null)."""
    value = value.item() if hasattr(value, "item") else value
    return None if isinstance(value, float) and math.isnan(value) else value


def _code_hash() -> str:
    """Hash of analysis/*.py: a changed rule or figure invalidates cached verdicts and figures."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def select_trials(trials: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """FINISHED runs that ran to the end; smoke runs only where a sweep has nothing else. Returns rows and notes."""
    notes = []
    unfinished = trials[~trials["status"].eq("FINISHED")]
    if len(unfinished):
        counts = unfinished["status"].value_counts()
        notes.append("Left out (not FINISHED): " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")
    rows = trials[trials["status"].eq("FINISHED")]
    if rows["stopped_early"].any():  # FINISHED, but its last metrics are from an earlier eval point than the others
        notes.append(f"Left out: {int(rows['stopped_early'].sum())} run(s) ASHA stopped early.")
        rows = rows[~rows["stopped_early"]]
    keep = []
    for sweep, g in rows.groupby("sweep"):
        real = g[~g["smoke"]]
        if real.empty:
            notes.append(f"Sweep {sweep}: only smoke runs (--smoke): verdicts at smoke size say nothing of science.")
        keep.append(real if len(real) else g)
    return (pd.concat(keep) if keep else rows.iloc[:0]), notes


def draw_figures(verdicts, trials, histories, folder: Path) -> dict[int, Path]:
    plots = _plots()
    bars = {"1-und": "mixed − understanding-only (paired by seed)", "1-gen": "mixed − generation-only (paired by seed)",
            "3": "aligned gain − misaligned gain", "6": "mixed − understanding-only on the rare concept",
            "7": "difference in gain", "8": "gain at each backbone size"}
    drawn = {k: plots.effect_bars(verdicts[k], folder / FIGURES[k], label) for k, label in bars.items()}
    drawn |= {"2": plots.data_scaling(trials, histories, folder / FIGURES["2"]),
              "4": plots.gain_vs_axis(trials, "model.affine_strength", folder / FIGURES["4"]),
              "5": plots.mix_ratio(trials, folder / FIGURES["5"])}
    return {k: p for k, p in drawn.items() if p is not None and verdicts[k].verdict != "not run"}


def shown_images(uri: str, trials: pd.DataFrame, dst: Path) -> dict[str, dict[str, Path]]:
    """{variant: its image files}: per variant, the mixed run of the lowest seed that logged `generated.png`;
    runs logged without images are passed over, looking at no more than `IMAGE_TRIES` runs per variant."""
    mixed = trials[trials.get("data.tasks", pd.Series(index=trials.index, dtype=object)).eq("mixed")]
    shown = {}
    for variant, runs in mixed.sort_values(["seed", "run_id"]).groupby("variant", sort=True, dropna=False):
        for run_id in list(runs["run_id"])[:IMAGE_TRIES]:
            files = query.download_images(uri, [run_id], dst).get(run_id, {})
            if "generated.png" in files:
                shown[variant if isinstance(variant, str) else run_id] = files
                break
    return shown


# ---------------------------------------------------------------- the document (analysis/document.py)


def machines_line(trials: pd.DataFrame) -> str:
    """Which CPUs the trials trained on (`unisweep.cpu`), and a warning when there were several: one seed gives
    other floats on another CPU, so paired arms that trained on different CPUs differ by that too."""
    if "cpu" not in trials or trials["cpu"].isna().all():
        return ""
    counts = trials["cpu"].fillna("not recorded").value_counts()
    kinds = ", ".join(f"{cpu} ({n} run{'s' if n != 1 else ''})" for cpu, n in counts.items())
    if len(counts) == 1:
        return f"Trained on {kinds}."
    return (f"Trained on {len(counts)} kinds of CPU: {kinds}. The same seed gives other floats on another CPU, so "
            "arms paired across CPUs differ by that as well; rerun on one kind of machine to remove it.")


def blocks(sweeps, uri, trials, verdicts, figures, notes, cached, searches=()) -> list[D.Block]:
    """What report.md and report.html show, in order; `searches`: the blocks of analysis/search_report.py."""
    seeds = sorted({int(s) for s in trials["seed"].dropna()})
    out = [D.Heading(f"unisweep report: {', '.join(sweeps)}", 1),
           D.Text(f"{len(trials)} FINISHED trial runs from `{redact(uri)}`; seeds {seeds}. "
                  "Effects are means over seeds of per-seed paired numbers; intervals are percentile bootstraps over "
                  "seeds widened to Student's t where wider, at each finding's Holm level (rules: "
                  "`analysis/findings.py`)."),
           D.Table(verdict_frame(verdicts), "verdicts")]
    out += [D.Bullets(list(notes))] if notes else []
    out += [D.Text(line)] if (line := machines_line(trials)) else []
    chance = chance_table(trials)
    if not chance.empty:
        out += [D.Heading("Every arm against its chance level"),
                D.Text("Did each arm learn anything? Its final score beside the chance level its own runs measured "
                       "(understanding: the best constant answer per question type, chosen on the training images; "
                       "generation: the judge's accuracy against another item's prompt), and the mean excess over "
                       "seeds with its 95 % interval. A comparison between arms that both sit at chance is "
                       "`untestable`."),
                D.Table(chance)]
    for k, v in verdicts.items():
        out += [D.Heading(f"Finding {k}: {v.claim}"), D.Text(f"**{v.verdict}** — {v.detail}")]
        if not v.comparisons.empty:
            out += [D.Text("Arms against their own chance level (score vs chance: mean excess [95 % interval]):"),
                    D.Bullets([f"{r.comparison}: {r.arms_vs_chance or 'no chance level for this metric'}"
                               for r in v.comparisons.itertuples()]),
                    D.Table(v.comparisons.drop(columns=["arms_vs_chance", "cells"], errors="ignore"))]
        if k in figures:
            out.append(D.Figure(f"finding {k}", figures[k]))
    out += list(searches)
    if "images" in figures:
        out += [D.Heading("Generated images"),
                D.Text("One mixed run per variant (the lowest seed); real images where logged."),
                D.Figure("generated images", figures["images"])]
    out.append(D.Text(f"Runs read {'from the Parquet cache' if cached else 'from MLflow'}.", emphasis=True))
    return out


def chance_table(trials: pd.DataFrame) -> pd.DataFrame:
    """One row per arm (configuration) and side: score, chance, excess [interval], seeds, at chance or not."""
    rows = F.baseline(trials)
    if "shared_control" in rows:  # a lent control is the same runs again under another variant's name
        rows = rows[rows["shared_control"].isna()]
    if "shared_mixed" in rows:  # a lent mixed arm is the same runs again under another design's name
        rows = rows[rows["shared_mixed"].isna()]
    by = [*F.shown_keys(rows, F.context_keys(rows)), "data.tasks"] if "data.tasks" in rows else []
    out = []
    for metric in (F.UND, F.GEN):
        for group in floors.arms(rows, metric, by, group_by=[]) if by else []:
            for arm in group:
                if not arm.measured:
                    continue
                est = arm.excess
                lo, hi = est.interval(1 - 0.05)
                out.append({"arm": arm.name, "metric": metric, "score": float(np.nanmean(arm.score)),
                            "chance": float(np.nanmean(arm.chance)), "excess": est.effect,
                            "ci_low": lo, "ci_high": hi, "n": est.n,
                            "learned": "no (at chance)" if arm.at_chance() else "yes"})
    return pd.DataFrame(out)


def verdict_frame(verdicts: dict[str, F.Verdict]) -> pd.DataFrame:
    return pd.DataFrame([{"#": k, "verdict": v.verdict, "effect": D.num(v.effect), "interval": _interval(v), "n": v.n,
                          "claim": v.claim} for k, v in verdicts.items()])


def verdict_table(verdicts: dict[str, F.Verdict]) -> str:
    """The verdicts as plain text for the terminal (report.md and report.html hold them as a table)."""
    cells = verdict_frame(verdicts).astype(str).map(lambda v: v if len(v) <= 80 else v[:77] + "...")
    widths = {c: max(len(c), *cells[c].str.len()) for c in cells}
    lines = [[c for c in cells], *cells.itertuples(index=False)]
    return "\n".join("  ".join(str(v).ljust(widths[c]) for c, v in zip(cells, row, strict=True)).rstrip()
                     for row in lines)  # every column left-aligned: finding keys are text ("1-und")


def _interval(v: F.Verdict) -> str:
    if v.verdict == "not run":
        return "—"
    return "unavailable" if not math.isfinite(v.ci_low) else f"[{v.ci_low:+.4g}, {v.ci_high:+.4g}]"


def _plots():
    from analysis import plots  # late: matplotlib takes a second to import, and `--help` should not wait

    return plots
