"""report.html: a report's report.md as one web page with its plots, for a person reading it in a browser.

`evaluate` writes it beside report.md, and the service renders it from a version's report.md when asked for
(so versions published before the page existed have it too, and its style always matches the policy the
service sends). The evaluation writes report.md in a small subset of Markdown (headings, paragraphs, **bold**,
`code`, pipe tables), and only that subset is read. Every piece of text is escaped: the report quotes the names
of a user's test images, which could hold markup. No TensorFlow here: the service imports it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:75rem;margin:1.5rem auto;padding:0 1rem;color:#222}"
          "table{border-collapse:collapse;margin:.5rem 0 1.2rem}th,td{border:1px solid #ccc;padding:.2rem .5rem}"
          "th{background:#f2f2f2;text-align:left}td{font-variant-numeric:tabular-nums}"
          "code{background:#f2f2f2;padding:0 .2rem}figure{margin:.8rem 0}img{max-width:100%;height:auto}"
          "figcaption{color:#555;font-size:.9rem}")
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
# Its own style and the report's plots, nothing else: no script runs, and nothing is sent anywhere.
CONTENT_SECURITY_POLICY = (f"default-src 'none'; img-src 'self'; style-src 'sha256-{_STYLE_HASH}'; "
                           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PLOT_CAPTIONS = {
    "histogram.png": "Scores of the normal and the anomalous test images, with the threshold",
    "roc.png": "ROC curve of every score method",
    "grid.png": "Sample test images: original, reconstruction and difference, with score and verdict",
    "misjudged.png": "The worst false alarms and missed anomalies at the threshold",
}
REPORT_PAGE = "report.html"
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")  # report.md writes a | inside a cell as \|


def render_report_page(markdown: str, plots: list[str], plot_query: str = "") -> str:
    """The page: report.md's blocks, with the `plots` (file names beside report.md) shown before its first
    section, so that the distributions are seen at a glance. `plot_query` follows each plot's name in its
    link (the service's `?access=` of a report link, which the plots need as the page did)."""
    blocks = [block for block in markdown.split("\n\n") if block.strip()]
    title = next((block[2:].strip() for block in blocks if block.startswith("# ")), "Evaluation report")
    body, figures_placed = [], False
    for block in blocks:
        if block.startswith("## ") and not figures_placed:
            body.append(_figures(plots, plot_query))
            figures_placed = True
        body.append(_block(block.strip("\n")))
    if not figures_placed:
        body.append(_figures(plots, plot_query))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>\n'
            f'<body>\n{chr(10).join(body)}\n</body></html>\n')


def _figures(plots: list[str], plot_query: str) -> str:
    return "\n".join(f'<figure><img src="{html.escape(name + plot_query)}" alt="{html.escape(PLOT_CAPTIONS[name])}">'
                     f"<figcaption>{html.escape(PLOT_CAPTIONS[name])} ({html.escape(name)})</figcaption></figure>"
                     for name in plots if name in PLOT_CAPTIONS)


def _block(block: str) -> str:
    if block.startswith("# "):
        return f"<h1>{_inline(block[2:])}</h1>"
    if block.startswith("## "):
        return f"<h2>{_inline(block[3:])}</h2>"
    lines = block.split("\n")
    if all(line.startswith("|") for line in lines):
        return _table(lines)
    return f"<p>{_inline(' '.join(lines))}</p>"


def _table(lines: list[str]) -> str:
    rows = [[cell.strip().replace("\\|", "|") for cell in _CELL_SEPARATOR.split(line.strip().strip("|"))]
            for line in lines]
    header, body = rows[0], [row for row in rows[1:] if not all(set(cell) <= {"-", " ", ":"} for cell in row)]
    head = "".join(f"<th>{_inline(cell)}</th>" for cell in header)
    cells = "\n".join("<tr>" + "".join(f"<td>{_inline(cell)}</td>" for cell in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{head}</tr></thead><tbody>\n{cells}\n</tbody></table>"


def _inline(text: str) -> str:
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
