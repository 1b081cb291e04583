"""Writers of a TrialReport: one self-contained HTML file (figures embedded), the same page as
PDF (WeasyPrint), a CSV file per table and one JSON file with every number.

Headers for people come from the field registry (`startrt.fields`), with units; the CSV and
JSON keep the machine names. In the PDF no table may leave its page: the page is laid out,
every table wider than its page's content area is set on a landscape page, then, if still too
wide, split into pieces of columns each repeating the row's key columns, and laid out again
(`print_layout`).

Everything is rendered in memory first; files are then written each through a temporary file
and a rename, so an error never leaves a half-written file.
"""

from __future__ import annotations

import base64
import csv
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from startrt import fields
from startrt.analysis.figures import SOURCE_LABELS
from startrt.analysis.report import SECTIONS, ReportTable, TrialReport
from startrt.spreadsheet_safe import safe_cell
from startrt.validation import InvalidInputError

HTML_FILE = "report.html"
PDF_FILE = "report.pdf"
JSON_FILE = "report.json"
TABLES_FOLDER = "tables"
THOUSANDS_SEPARATOR = "\u202f"  # narrow no-break space (SI): 4 050 never breaks
MOST_PIECES = 6
"""A table still too wide in this many pieces on a landscape page is refused."""


@dataclass(frozen=True)
class TableLayout:
    """How a table is set in print: on a landscape page or not, in how many column pieces."""

    landscape: bool = False
    pieces: int = 1

    def wider(self) -> TableLayout:
        """The next layout to try for a table too wide in this one."""
        return TableLayout(True, self.pieces + 1 if self.landscape else 1)


PORTRAIT = TableLayout()
Layouts = Mapping[str, TableLayout]


def heading(column: object) -> str:
    """A column's header for people: its label with unit from the field registry; a name
    already written for people (with a space) as it is."""
    name = str(column)
    return name if " " in name else fields.label(name)


def table_pieces(table: ReportTable, layout: TableLayout) -> list[pd.DataFrame]:
    """The table's columns in `layout.pieces` pieces, each led by the key columns: the table's
    `keys`, else the leading text columns naming a row (at least the first, never all)."""
    frame = table.frame
    columns = [str(column) for column in frame.columns]
    keys = table.keys
    while not table.keys and keys < len(columns) - 1 and frame[columns[keys]].dtype == object:
        keys += 1
    keys = max(keys, 1)
    rest = columns[keys:]
    count = max(1, min(layout.pieces, len(rest)))
    size = -(-len(rest) // count)
    chunks = [rest[start : start + size] for start in range(0, len(rest), size)] or [[]]
    return [frame[columns[:keys] + chunk] for chunk in chunks]


FIELD_COLUMNS = frozenset({"measure"})
"""Columns whose cells name a field (`activity_gbq`): shown as its label with unit."""
VALUE_LABELS = {"source": SOURCE_LABELS, "unit": fields.UNITS_FOR_PEOPLE}
"""Columns whose values have their own words, as in the figures."""


def shown(value: Any, column: object) -> str:
    """A cell for people: a field's name as its label, a stored choice (`adverse_event`) as
    words (`startrt.fields`), anything else as `display` writes it."""
    if isinstance(value, str) and str(column) in FIELD_COLUMNS:
        return fields.label(value)
    if isinstance(value, str) and value in VALUE_LABELS.get(str(column), {}):
        return VALUE_LABELS[str(column)][value]
    if isinstance(value, str) and "_" in value and " " not in value:
        return fields.choice_label(value)
    return display(value)


def display(value: Any) -> str:
    """A table cell as text: '-' when missing, dates as ISO, yes / no, numbers rounded for reading
    (whole numbers as such, thousands with a narrow no-break space, else 3 significant digits)."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "-"
    if isinstance(value, date):  # pandas Timestamps are datetimes, so dates too
        return value.strftime("%Y-%m-%d")
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if not isinstance(value, int | float | np.number):
        return str(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}".replace(",", THOUSANDS_SEPARATOR)
    if abs(number) >= 1000:
        return f"{number:,.0f}".replace(",", THOUSANDS_SEPARATOR)
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
    environment.filters["cell"] = shown
    environment.filters["css_text"] = css_text
    environment.filters["heading"] = heading
    environment.filters["svg_data"] = lambda svg: (
        "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    )
    return environment


def render_html(report: TrialReport, layouts: Layouts | None = None) -> str:
    """The report as one HTML page with every figure embedded; `layouts`: the print layout
    of the tables not set in portrait in one piece."""
    chosen = dict(layouts or {})
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        sections=SECTIONS,
        consort_svg=Markup(report.consort_svg),
        layout=lambda table: chosen.get(table.name, PORTRAIT),
        pieces=lambda table: table_pieces(table, chosen.get(table.name, PORTRAIT)),
    )


def print_layout(report: TrialReport) -> tuple[str, bytes]:
    """The HTML page with every table fitting its printed page, and that page as PDF
    (WeasyPrint, A4): laid out again with each too wide table set wider (`TableLayout`)."""
    import weasyprint  # imported here: loading its fonts takes a second

    layouts: dict[str, TableLayout] = {}
    while True:
        html = render_html(report, layouts)
        document = weasyprint.HTML(string=html).render()
        wide = overflowing_tables(document)
        if not wide:
            pdf = document.write_pdf()
            assert isinstance(pdf, bytes)
            return html, pdf
        for name in wide:
            layouts[name] = layouts.get(name, PORTRAIT).wider()
            if layouts[name].pieces > MOST_PIECES:
                raise InvalidInputError(
                    "table", name, f"does not fit a landscape page in {MOST_PIECES} pieces"
                )


def overflowing_tables(document: Any) -> set[str]:
    """The names (data-table) of the tables of a laid-out WeasyPrint document whose box
    leaves its page's content area (half a point of tolerance)."""
    wide: set[str] = set()
    for page in document.pages:
        page_box = page._page_box  # WeasyPrint's layout tree: no public API measures boxes
        right = page_box.content_box_x() + page_box.width + 0.5
        for box in _descendants(page_box):
            element = box.element
            name = element.get("data-table") if element is not None else None
            if name and box.element_tag == "table" and box.position_x + box.margin_width() > right:
                wide.add(name)
    return wide


def _descendants(box: Any) -> Iterator[Any]:
    yield box
    for child in getattr(box, "children", None) or ():
        yield from _descendants(child)


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
        "report": report.kind.value,
        "marking": report.kind.banner,
        "consort": asdict(report.consort),
        "tables": {
            table.name: {
                "number": table.number or None,
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
        "figures": [
            {"number": 1, "name": "consort", "title": "CONSORT flow diagram"},
            *(
                {"number": figure.number, "name": figure.name, "title": figure.title}
                for figure in report.figures
            ),
        ],
        "rules": list(report.rules),
        "notes": list(report.notes),
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def write_report(report: TrialReport, out: Path, *, pdf: bool = True) -> list[Path]:
    """Write report.html, report.pdf (unless `pdf` is False), report.json and tables/*.csv
    into `out` (created if needed); return the files written. With the PDF, the HTML is the
    page the PDF was printed from (`print_layout`)."""
    contents: dict[str, str | bytes] = {JSON_FILE: report_json(report)}
    if pdf:
        contents[HTML_FILE], contents[PDF_FILE] = print_layout(report)
    else:
        contents[HTML_FILE] = render_html(report)
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
