"""One-page HTML summary of a cycle's dosimetry: header, per-VOI table, time-activity fits and
dose-volume histograms, with the figures embedded (no external files)."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.figure import Figure

from startrt.dosimetry.figures import CurvePlot, DvhPlot, curves_figure, dvh_figure, png_bytes


def _png(figure: Figure) -> str:
    encoded = base64.b64encode(png_bytes(figure)).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def _table(rows: Sequence[Mapping[str, object]]) -> str:
    if not rows:
        return "<p>No VOI.</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_text(row.get(c)))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th { background: #eef; } td:first-child { text-align: left; }
dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; }
"""


def write_summary_html(
    path: Path,
    *,
    title: str,
    header: Mapping[str, str],
    rows: Sequence[Mapping[str, object]],
    curves: Sequence[CurvePlot],
    dvhs: Sequence[DvhPlot],
    notes: Sequence[str] = (),
) -> Path:
    """Write the summary page to `path` and return it."""
    facts = "".join(
        f"<dt>{html.escape(key)}</dt><dd>{html.escape(value)}</dd>" for key, value in header.items()
    )
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<dl>{facts}</dl>",
        "<h2>Volumes of interest</h2>",
        _table(rows),
    ]
    if curves:
        sections += ["<h2>Time-activity curves and fits</h2>", _png(curves_figure(curves))]
    if dvhs:
        sections += ["<h2>Dose-volume histograms</h2>", _png(dvh_figure(dvhs))]
    if notes:
        items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
        sections += ["<h2>Notes</h2>", f"<ul>{items}</ul>"]
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(sections)
        + "</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path
