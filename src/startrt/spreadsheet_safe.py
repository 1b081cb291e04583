"""CSV files meant to be opened in a spreadsheet, made safe from formula ("CSV") injection.

OWASP, CSV Injection (https://owasp.org/www-community/attacks/CSV_Injection): a cell whose text
starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel, LibreOffice and
Google Sheets as a formula (`=HYPERLINK(...)`, `@SUM(...)`, DDE `+cmd|...`). Every such text cell
gets a leading single quote, which the spreadsheet shows as text, and every field is quoted
(`csv.QUOTE_ALL`, or QUOTE_NONNUMERIC where numbers are numbers), so that a separator inside a
value (`,`, or the `;` of locales that split on it) cannot start a new cell.

Numbers stay numbers: only text is neutralised, and a text that is a plain decimal number
(`-1.5`, `+2`, `-3e-4`, as the exports write numbers) is left as it is. `-2+3` or `-inf` are not
plain numbers and are neutralised.

Used by every CSV written for people: the web exports (`web/exports/csv_export.py`), the
per-patient audit trail CSV (`web/pages/views.py`) and the report's tables
(`analysis/report_files.py`). The analysis dataset folder (`analysis/dataset.py`) is a machine
contract read back by `read_dataset` and keeps raw values (see the README).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, TypeVar

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
QUOTING: Final = csv.QUOTE_ALL

Cell = TypeVar("Cell")


def safe_cell(value: Cell) -> Cell | str:
    """`value` with a leading `'` if it is text a spreadsheet would read as a formula; any
    other value (numbers, None, booleans, plain decimal numbers as text) unchanged."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    if _PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """A row of cells, each through `safe_cell`."""
    return [safe_cell(value) for value in values]


def safe_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """A {column: value} row, each value through `safe_cell`."""
    return {name: safe_cell(value) for name, value in row.items()}
