"""One-page HTML summary of a cycle's dosimetry: header, per-VOI table, time-activity fits and
dose-volume histograms, with the figures embedded (no external files)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to PNG
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure


@dataclass(frozen=True)
class CurvePlot:
    """Measured activities of a VOI and its fitted curve (hours, MBq)."""

    name: str
    times_h: npt.ArrayLike
    activity_mbq: npt.ArrayLike
    fit_times_h: npt.ArrayLike
    fit_activity_mbq: npt.ArrayLike
    label: str


@dataclass(frozen=True)
class DvhPlot:
    """Cumulative DVH: volume fraction receiving at least each dose (Gy)."""

    name: str
    dose_gy: npt.ArrayLike
    volume_fraction: npt.ArrayLike


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{encoded}">'


def _curves_figure(curves: Sequence[CurvePlot]) -> str:
    columns = min(3, max(1, len(curves)))
    rows = int(np.ceil(len(curves) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for axis, curve in zip(axes.flat, curves, strict=False):
        axis.plot(
            curve.fit_times_h, curve.fit_activity_mbq, "-", color="tab:blue", label=curve.label
        )
        axis.plot(curve.times_h, curve.activity_mbq, "o", color="tab:red", label="measured")
        axis.set_title(curve.name.replace("_", " "))
        axis.set_xlabel("time after injection (h)")
        axis.set_ylabel("activity (MBq)")
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(curves) :]:
        axis.axis("off")
    figure.tight_layout()
    return _png(figure)


def _dvh_figure(dvhs: Sequence[DvhPlot]) -> str:
    figure, axis = plt.subplots(figsize=(7.0, 4.2))
    for dvh in dvhs:
        axis.plot(
            dvh.dose_gy, 100.0 * np.asarray(dvh.volume_fraction), label=dvh.name.replace("_", " ")
        )
    axis.set_xlabel("absorbed dose (Gy)")
    axis.set_ylabel("volume receiving at least the dose (%)")
    axis.set_ylim(0, 102)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return _png(figure)


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
        sections += ["<h2>Time-activity curves and fits</h2>", _curves_figure(curves)]
    if dvhs:
        sections += ["<h2>Dose-volume histograms</h2>", _dvh_figure(dvhs)]
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
