"""The report as a list of blocks, written out as Markdown here and as HTML by analysis/html.py.

One structure, two renderers: report.md and report.html cannot drift apart. Text blocks hold inline Markdown
(`code` and **bold** only); table cells are plain text, formatted once by `cells`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

SIGNED = {"effect", "ci_low", "ci_high"}  # shown with a sign: the direction is the point


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Text:
    text: str  # inline Markdown
    emphasis: bool = False  # the whole paragraph in italics


@dataclass
class Bullets:
    items: list[str]  # inline Markdown each


@dataclass
class Table:
    frame: pd.DataFrame
    name: str = ""  # an id in HTML (the verdict table is "verdicts"), nothing in Markdown


@dataclass
class Figure:
    alt: str
    path: Path  # the PNG on disk; documents refer to it as figures/<name>


Block = Heading | Text | Bullets | Table | Figure


def markdown(blocks: list[Block]) -> str:
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Text):
            out.append(f"_{b.text}_" if b.emphasis else b.text)
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            out.append(markdown_table(b.frame))
        elif isinstance(b, Figure):
            out.append(f"![{b.alt}](figures/{b.path.name})")
    return "\n\n".join(out) + "\n"


def markdown_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells(frame)]
    return "\n".join([head, rule, *body])


def cells(frame: pd.DataFrame) -> list[list[str]]:
    """Each row's cells as text: effects and bounds signed to 4 significant digits, other floats to 4."""
    def cell(column, v) -> str:
        if isinstance(v, float):
            return num(v) if column in SIGNED or not math.isfinite(v) else f"{v:.4g}"
        return str(v)

    return [[cell(c, v) for c, v in zip(frame.columns, row, strict=True)] for row in frame.itertuples(index=False)]


def num(v) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:+.4g}"
