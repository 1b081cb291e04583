"""Writers of a TrialReport: one self-contained HTML file (figures embedded), the same page as
PDF (WeasyPrint), a CSV file per table and one JSON file with every number.

Everything is rendered in memory first; files are then written each through a temporary file
and a rename, so an error never leaves a half-written file.
"""

from __future__ import annotations

import base64
import csv
import json
import os
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from startrt.analysis.report import SECTIONS, ReportTable, TrialReport
from startrt.spreadsheet_safe import safe_cell
from startrt.validation import InvalidInputError

HTML_FILE = "report.html"
PDF_FILE = "report.pdf"
JSON_FILE = "report.json"
TABLES_FOLDER = "tables"
THIN_SPACE = "\u2009"


def display(value: Any) -> str:
    """A table cell as text: '-' when missing, dates as ISO, numbers rounded for reading
    (whole numbers as such, thousands with a thin space, else 3 significant digits)."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "-"
    if isinstance(value, date):  # pandas Timestamps are datetimes, so dates too
        return value.strftime("%Y-%m-%d")
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        return str(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}".replace(",", THIN_SPACE)
    if abs(number) >= 1000:
        return f"{number:,.0f}".replace(",", THIN_SPACE)
    return f"{number:.1f}" if abs(number) >= 10 else f"{number:.3g}"


def css_text(value: str) -> Markup:
    """`value` safe inside a double-quoted CSS string in a <style> element."""
    escaped = "".join(
        character if character.isalnum() or character in " .,-_:/()" else f"\\{ord(character):X} "
        for character in value
    )
    return Markup(escaped)


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("startrt.analysis", "templates"),
        autoescape=jinja2.select_autoescape(("html", "j2")),
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["cell"] = display
    environment.filters["css_text"] = css_text
    environment.filters["svg_data"] = lambda svg: (
        "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    )
    return environment


def render_html(report: TrialReport) -> str:
    """The report as one HTML page with every figure embedded."""
    template = _environment().get_template("report.html.j2")
    return template.render(report=report, sections=SECTIONS, consort_svg=Markup(report.consort_svg))


def render_pdf(html: str) -> bytes:
    """The HTML page printed to PDF by WeasyPrint (A4, page numbers from the page's CSS)."""
    import weasyprint  # imported here: loading its fonts takes a second

    pdf = weasyprint.HTML(string=html).write_pdf()
    assert isinstance(pdf, bytes)
    return pdf


def table_csv(table: ReportTable) -> str:
    """The table as CSV for spreadsheets: text cells a spreadsheet would read as a formula are
    neutralised (`startrt.spreadsheet_safe`), text quoted, numbers left as numbers."""
    frame = table.frame.rename(columns=lambda name: safe_cell(str(name)))
    text = frame.select_dtypes(include=["object", "string", "category"]).columns
    frame = frame.astype(dict.fromkeys(text, object))
    for name in text:
        frame[name] = frame[name].map(safe_cell)
    return str(frame.to_csv(index=False, date_format="%Y-%m-%d", quoting=csv.QUOTE_NONNUMERIC))


def report_json(report: TrialReport) -> str:
    """Every number of the report, tables as lists of rows (NaN as null)."""
    data = {
        "title": report.title,
        "protocol": report.protocol,
        "cut_off": report.cut_off.isoformat(),
        "source": report.source,
        "generated_on": report.generated_on.isoformat(),
        "consort": asdict(report.consort),
        "tables": {
            table.name: {
                "section": table.section,
                "title": table.title,
                "note": table.note,
                "listing": table.listing,
                "rows": json.loads(
                    table.frame.to_json(orient="records", date_format="iso", date_unit="s")
                ),
            }
            for table in report.tables
        },
        "figures": [figure.name for figure in report.figures],
        "rules": list(report.rules),
        "notes": list(report.notes),
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_report(report: TrialReport, out: Path, *, pdf: bool = True) -> list[Path]:
    """Write report.html, report.pdf (unless `pdf` is False), report.json and tables/*.csv
    into `out` (created if needed); return the files written."""
    html = render_html(report)
    contents: dict[str, str | bytes] = {HTML_FILE: html, JSON_FILE: report_json(report)}
    if pdf:
        contents[PDF_FILE] = render_pdf(html)
    for table in report.tables:
        contents[f"{TABLES_FOLDER}/{table.name}.csv"] = table_csv(table)
    try:
        (out / TABLES_FOLDER).mkdir(parents=True, exist_ok=True)
        return [_write(out / name, content) for name, content in contents.items()]
    except OSError as error:
        raise InvalidInputError("--out", str(out), f"cannot be written: {error}") from None


def _write(path: Path, content: str | bytes) -> Path:
    data = content.encode("utf-8") if isinstance(content, str) else content
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path
