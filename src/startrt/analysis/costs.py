"""Unit costs of the resources (startrt.analysis.resources.MEASURES), from a TOML or CSV file,
validated: a currency (ISO 4217 code) and a cost per unit of each costed measure.

TOML::

    currency = "SEK"
    [cost_per_unit]
    activity_gbq = 20000      # per GBq administered
    inpatient_days = 5000     # per in-patient day

CSV: the columns measure, cost_per_unit, currency (the same currency on every row).
A measure the file leaves out is not costed; the report lists the costed measures.
"""

from __future__ import annotations

import csv
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from startrt.analysis.resources import MEASURES
from startrt.validation import InvalidInputError

MAX_COST_PER_UNIT = 1e8
"""Larger than any plausible unit cost in any currency; beyond it a unit mix-up is likelier."""
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")
CSV_COLUMNS = ("measure", "cost_per_unit", "currency")


@dataclass(frozen=True)
class UnitCosts:
    """Cost per unit of each costed measure, in `currency`, read from `source`."""

    currency: str
    cost_per_unit: Mapping[str, float]
    source: str


def read_unit_costs(path: Path) -> UnitCosts:
    """Read and validate a unit-cost file (.toml or .csv); InvalidInputError names the field,
    the value and the rule broken."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInputError("unit costs", str(path), f"cannot be read: {error}") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        currency, costs = _from_toml(text, path)
    elif suffix == ".csv":
        currency, costs = _from_csv(text)
    else:
        raise InvalidInputError("unit costs", str(path), "must be a .toml or .csv file")
    return UnitCosts(_currency("currency", currency), _costs(costs, currency), str(path))


def _from_toml(text: str, path: Path) -> tuple[Any, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError("unit costs", str(path), f"is not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"currency", "cost_per_unit"})
    if unknown:
        raise InvalidInputError(unknown[0], data[unknown[0]], "is not a unit-cost setting")
    costs = data.get("cost_per_unit")
    if not isinstance(costs, dict):
        raise InvalidInputError("cost_per_unit", costs, "must be a table of measure = cost")
    return data.get("currency"), costs


def _from_csv(text: str) -> tuple[Any, dict[str, Any]]:
    reader = csv.DictReader(text.splitlines())
    if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
        raise InvalidInputError("columns", reader.fieldnames, f"must be {list(CSV_COLUMNS)}")
    costs: dict[str, Any] = {}
    currencies: set[str] = set()
    for line, row in enumerate(reader, start=2):
        measure = (row["measure"] or "").strip()
        if measure in costs:
            raise InvalidInputError(f"line {line}.measure", measure, "is given twice")
        costs[measure] = _number(f"cost_per_unit.{measure}", row["cost_per_unit"])
        currencies.add((row["currency"] or "").strip())
    if len(currencies) > 1:
        raise InvalidInputError("currency", sorted(currencies), "must be the same on every row")
    return (currencies.pop() if currencies else None), costs


def _number(field: str, text: str | None) -> Any:
    try:
        return float((text or "").strip())
    except ValueError:
        raise InvalidInputError(field, text, "must be a number") from None


def _currency(field: str, value: Any) -> str:
    if not isinstance(value, str) or not CURRENCY_PATTERN.fullmatch(value):
        raise InvalidInputError(field, value, "must be a three-letter ISO 4217 code, e.g. SEK")
    return value


def _costs(costs: Mapping[str, Any], currency: str) -> dict[str, float]:
    if not costs:
        raise InvalidInputError("cost_per_unit", {}, "must cost at least one measure")
    checked: dict[str, float] = {}
    for measure, value in costs.items():
        field = f"cost_per_unit.{measure}"
        if measure not in MEASURES:
            raise InvalidInputError(field, value, f"unknown measure; known: {list(MEASURES)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(field, value, f"must be a number ({currency} per unit)")
        if not math.isfinite(value) or not 0 <= value <= MAX_COST_PER_UNIT:
            rule = f"must lie in [0, {MAX_COST_PER_UNIT:g}] {currency} per unit"
            raise InvalidInputError(field, value, rule)
        checked[measure] = float(value)
    return checked
