"""Turning library results (dataclasses, pydantic models, enums, dates) into JSON and tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

# rich is imported by the functions that draw tables, so that `--json` output starts faster.
if TYPE_CHECKING:
    from rich.table import Table


def plain(value: Any) -> Any:
    """A JSON-ready copy of `value`: dicts, lists, str, numbers, bools and None only."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(plain(key)): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(value: Any) -> str:
    """One JSON object as the CLI prints it."""
    return json.dumps(plain(value), ensure_ascii=False)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    if isinstance(value, list):
        return ", ".join(_cell(item) for item in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_cell(item)}" for key, item in value.items()) or "-"
    return str(value)


def key_value_table(title: str, data: Mapping[str, Any]) -> Table:
    """A two-column table of the top-level fields of `data`."""
    from rich.table import Table

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in plain(data).items():
        table.add_row(key.replace("_", " "), _cell(value))
    return table


def rows_table(title: str, rows: Sequence[Mapping[str, Any]], columns: list[str]) -> Table:
    """A table with one row per mapping, showing `columns`."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column.replace("_", " "))
    for row in plain(rows):
        table.add_row(*(_cell(row.get(column)) for column in columns))
    return table


def print_tables(*tables: Table) -> None:
    from rich.console import Console

    console = Console()
    for table in tables:
        console.print(table)
