"""Input validation shared by every layer: one error type that names field, value and rule.

Clinical inputs are checked against plausibility ranges before any formula uses them; an
implausible value (negative activity, Hb of 900 g/L) is refused, never silently used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class InvalidInputError(ValueError):
    """A value was refused; the message names the field, the value and the rule it broke."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{field}={value!r}: {rule}")


@dataclass(frozen=True)
class PlausibleRange:
    """Inclusive range of values a measurement can plausibly take, with its unit for messages."""

    low: float
    high: float
    unit: str

    def check(self, field: str, value: float) -> float:
        """Return `value` as float if it is a finite number inside the range, else raise."""
        number = finite_number(field, value, self.unit)
        if not self.low <= number <= self.high:
            raise InvalidInputError(
                field, value, f"must lie in [{self.low:g}, {self.high:g}] {self.unit}"
            )
        return number


# Plausibility limits used across layers. Wide enough for any real patient, narrow enough to
# catch unit mix-ups (creatinine in mg/dL entered as umol/L, height in m, Hb in g/dL).
AGE_YEARS = PlausibleRange(0.0, 120.0, "years")
ADULT_AGE_YEARS = PlausibleRange(18.0, 120.0, "years")
WEIGHT_KG = PlausibleRange(20.0, 350.0, "kg")
HEIGHT_CM = PlausibleRange(100.0, 250.0, "cm")
CREATININE_UMOL_L = PlausibleRange(10.0, 3000.0, "umol/L")
CYSTATIN_C_MG_L = PlausibleRange(0.2, 10.0, "mg/L")
# Cockcroft-Gault from plausible inputs reaches ~750 ml/min (18 y, 200 kg, creatinine 40 umol/L)
CRCL_ML_MIN = PlausibleRange(0.0, 1000.0, "ml/min")
ABSOLUTE_GFR_ML_MIN = PlausibleRange(0.0, 300.0, "ml/min")
GFR_ML_MIN_173 = PlausibleRange(0.0, 250.0, "ml/min/1.73 m2")
BSA_M2 = PlausibleRange(0.5, 3.5, "m2")


def finite_number(field: str, value: object, unit: str) -> float:
    """Return `value` as float if it is a finite int or float (not bool), else raise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(field, value, f"must be a number in {unit}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(field, value, f"must be a finite number in {unit}")
    return number


def require_positive(field: str, value: float, unit: str) -> float:
    """Return `value` if it is a finite number > 0, else raise naming the field."""
    number = finite_number(field, value, unit)
    if number <= 0:
        raise InvalidInputError(field, value, f"must be > 0 {unit}")
    return number


def require_non_negative(field: str, value: float, unit: str) -> float:
    """Return `value` if it is a finite number >= 0, else raise naming the field."""
    number = finite_number(field, value, unit)
    if number < 0:
        raise InvalidInputError(field, value, f"must be >= 0 {unit}")
    return number


class InvalidRecordError(InvalidInputError):
    """A record with one or more refused fields; `errors` holds each, the message lists all."""

    def __init__(self, record: str, errors: list[InvalidInputError]) -> None:
        first = errors[0]
        super().__init__(first.field, first.value, first.rule)
        self.errors = errors
        self.args = (f"{record}: " + "; ".join(str(error) for error in errors),)
