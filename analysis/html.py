"""report.html: the report's blocks (analysis/document.py) as one self-contained page.

The MLflow UI shows an HTML artifact in a sandboxed frame that can fetch nothing else, and it squeezes wide
Markdown tables: so figures are inlined as base64 data: URIs, the CSS sits in the page, wide tables scroll
sideways, and there is no JavaScript.
"""

from __future__ import annotations

import base64
import html
import re

from analysis.document import Block, Bullets, Figure, Heading, Table, Text, cells

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #1d1d1d; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; font-size: .92em; }
.scroll { overflow-x: auto; margin: .8em 0; }
table { border-collapse: collapse; font-size: 12.5px; }
th, td { border: 1px solid #d6d6d6; padding: .25em .55em; text-align: left; vertical-align: top; }
th { background: #f5f5f5; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
#verdicts td:nth-child(-n+2) { white-space: nowrap; }
td.verdict-reproduced { background: #dff3e4; } td.verdict-contradicted { background: #f8dcd9; }
td.verdict-split { background: #fbe9d0; } td.verdict-untestable { background: #fbf1d4; }
td.verdict-inconclusive { background: #eeeeee; } td.verdict-not-run { color: #888; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
"""


def render(blocks: list[Block], title: str) -> str:
    body = "\n".join(_block(b) for b in blocks)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def _block(b: Block) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{inline(b.text)}</h{b.level}>"
    if isinstance(b, Text):
        return f"<p><em>{inline(b.text)}</em></p>" if b.emphasis else f"<p>{inline(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{inline(item)}</li>" for item in b.items) + "\n</ul>"
    if isinstance(b, Table):
        return _table(b)
    if isinstance(b, Figure):
        data = base64.b64encode(b.path.read_bytes()).decode("ascii")
        return f'<p><img alt="{html.escape(b.alt)}" src="data:image/png;base64,{data}"></p>'
    raise TypeError(f"not a report block: {b!r}")


def _table(t: Table) -> str:
    columns = list(map(str, t.frame.columns))
    numeric = [t.frame[c].dtype.kind in "iuf" or c in ("effect", "interval") for c in t.frame.columns]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for row in cells(t.frame):
        tds = []
        for column, value, right in zip(columns, row, numeric, strict=True):
            cls = f"verdict-{value.replace(' ', '-')}" if column == "verdict" else ("num" if right else "")
            tds.append(f'<td class="{cls}">{html.escape(value)}</td>' if cls else f"<td>{html.escape(value)}</td>")
        rows.append("<tr>" + "".join(tds) + "</tr>")
    name = f' id="{html.escape(t.name)}"' if t.name else ""
    return (f'<div class="scroll"><table{name}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n' + "\n".join(rows)
            + "\n</tbody></table></div>")


def inline(text: str) -> str:
    """Escaped text with the Markdown the report uses inline: `code` and **bold**."""
    parts = re.split(r"(`[^`]+`)", text)
    out = []
    for part in parts:
        if len(part) > 1 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{html.escape(part[1:-1])}</code>")
        else:
            out.append(re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(part)))
    return "".join(out)
