"""Render one report (a list of blocks) as Markdown, as self-contained HTML, and tables as CSV and LaTeX.

The HTML needs no server and no network: CSS is inline and every figure is a base64 ``data:`` URI.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Table:
    """A displayed table (strings), which rows to highlight, and the machine-readable frame saved as CSV."""

    name: str  # file stem under tables/
    display: pd.DataFrame
    data: pd.DataFrame
    bold: list[bool] = field(default_factory=list)
    caption: str = ""
    best: dict[str, int] = field(default_factory=dict)  # column → the row of its best value (bold in LaTeX)


@dataclass
class Figure:
    name: str  # file stem under plots/
    png: bytes
    caption: str


@dataclass
class Block:
    kind: str  # h1 | h2 | h3 | p | note | verdict | table | figure | list
    text: str = ""
    table: Table | None = None
    figure: Figure | None = None
    items: list[str] = field(default_factory=list)
    anchor: str = ""


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("_") or "x"


def num(x: Any) -> str:
    """Compact human number: 3 significant digits below 100, thousands separators above; ``—`` when missing."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(x):
        return "—"
    a = abs(x)
    if a >= 100:
        return f"{x:,.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


# -- Markdown ----------------------------------------------------------------------------------------------------
def _md_cell(s: Any) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def md_table(t: Table) -> str:
    cols = list(t.display.columns)
    lines = ["| " + " | ".join(_md_cell(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for i, (_, row) in enumerate(t.display.iterrows()):
        cells = [_md_cell(v) for v in row]
        if t.bold and t.bold[i]:
            cells = [f"**{c}**" if c and c != "—" else c for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append("#" * int(b.kind[1]) + " " + b.text)
        elif b.kind == "p":
            out.append(b.text)
        elif b.kind == "note":
            out.append(f"> **Note:** {b.text}")
        elif b.kind == "verdict":
            out.append(f"> **Verdict.** {b.text}")
        elif b.kind == "list":
            out.append("\n".join(f"- {it}" for it in b.items))
        elif b.kind == "table" and b.table is not None:
            if b.table.caption:
                out.append(f"*{b.table.caption}*")
            out.append(md_table(b.table) + f"\n\n(CSV: `tables/{b.table.name}.csv`, LaTeX: `tables/{b.table.name}.tex`)")
        elif b.kind == "figure" and b.figure is not None:
            out.append(f"![{b.figure.caption}](plots/{b.figure.name}.png)\n\n*{b.figure.caption}*")
    return "\n\n".join(out) + "\n"


# -- HTML --------------------------------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1280px;margin:2em auto;padding:0 1.5em;
color:#1d1d1f;line-height:1.45}
h1{border-bottom:2px solid #444;padding-bottom:.2em}h2{margin-top:2.2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;font-size:13px;margin:.6em 0 1.2em}
th,td{border:1px solid #d0d0d0;padding:3px 7px;text-align:left;white-space:nowrap}
th{background:#f0f0f0;white-space:normal;vertical-align:bottom;max-width:9em}td.n{text-align:right}td.w{white-space:normal;min-width:12em;max-width:26em}
.tw{overflow-x:auto}
tr.best td{font-weight:700;background:#fff7d6}
blockquote{margin:1em 0;padding:.6em 1em;background:#eef5ff;border-left:4px solid #2b6cb0}
.note{background:#fff3f0;border-left-color:#c0392b}
figure{margin:1em 0 2em}figure img{max-width:100%;border:1px solid #e5e5e5}
figcaption{font-size:13px;color:#555}.files{font-size:12px;color:#666}
nav a{margin-right:1em}
"""


_NUMERIC = re.compile(r"^[+−-]?(1/)?\d[\d,]*(\.\d+)?( ± [\d.]+)?( \(n=\d+\))?×?$|^—$")


def _img_tag(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def html_table(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(c))}</th>" for c in t.display.columns)
    rows = []
    for i, (_, row) in enumerate(t.display.iterrows()):
        cls = ' class="best"' if t.bold and t.bold[i] else ""
        rows.append(f"<tr{cls}>" + "".join(f'<td class="n">{e(str(v))}</td>' if _NUMERIC.match(str(v))
                                            else f'<td class="w">{e(str(v))}</td>' if len(str(v)) > 32
                                            else f"<td>{e(str(v))}</td>" for v in row) + "</tr>")
    cap = f"<caption>{e(t.caption)}</caption>" if t.caption else ""
    return (f'<div class="tw"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
            f'<div class="files">CSV: tables/{e(t.name)}.csv · LaTeX: tables/{e(t.name)}.tex</div>')


def to_html(blocks: list[Block], title: str) -> str:
    e = html.escape
    body: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            anchor = f' id="{e(b.anchor)}"' if b.anchor else ""
            body.append(f"<{b.kind}{anchor}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "note":
            body.append(f'<blockquote class="note"><b>Note:</b> {e(b.text)}</blockquote>')
        elif b.kind == "verdict":
            body.append(f"<blockquote><b>Verdict.</b> {e(b.text)}</blockquote>")
        elif b.kind == "list":
            body.append("<ul>" + "".join(f"<li>{e(it)}</li>" for it in b.items) + "</ul>")
        elif b.kind == "table" and b.table is not None:
            body.append(html_table(b.table))
        elif b.kind == "figure" and b.figure is not None:
            body.append(f"<figure>{_img_tag(b.figure.png, b.figure.caption)}"
                        f"<figcaption>{e(b.figure.caption)}</figcaption></figure>")
        elif b.kind == "nav":
            body.append("<nav>" + "".join(f'<a href="#{e(a)}">{e(t)}</a>' for t, a in
                                          (it.split("\0") for it in b.items)) + "</nav>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


# -- LaTeX -------------------------------------------------------------------------------------------------------
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "×": r"$\times$",
        "−": "-", "—": "--"}


def tex_escape(s: Any) -> str:
    return "".join(_TEX.get(ch, ch) for ch in str(s))


def _numeric(cells: pd.Series) -> bool:
    vals = [str(v).replace(",", "").split(" ")[0] for v in cells if str(v).strip() not in ("", "—")]
    try:
        return bool(vals) and all(float(v) == float(v) for v in vals)
    except ValueError:
        return False


def to_latex(t: Table) -> str:
    """Numbers right-aligned; bold only on each column's best cell (``t.best``), never on whole rows."""
    d = t.display.map(tex_escape)
    for col, i in t.best.items():
        if col in d and d[col].iloc[i]:
            d.loc[d.index[i], col] = rf"\textbf{{{d[col].iloc[i]}}}"
    align = "".join("r" if _numeric(t.display[c]) else "l" for c in t.display.columns)
    d.columns = [tex_escape(c) for c in d.columns]
    cap = {"caption": tex_escape(t.caption)} if t.caption else {}
    return d.to_latex(index=False, escape=False, column_format=align, label=f"tab:{slug(t.name)}", **cap)
