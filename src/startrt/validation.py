"""Input validation shared by every layer: one error type that names field, value and rule.

Clinical inputs are checked against plausibility ranges before any formula uses them; an
implausible value (negative activity, Hb of 900 g/L) is refused, never silently used.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# A refused value is echoed (in the message, the API's answer, the page) up to this many
# characters, then cut with an ellipsis: a 2 MB input is not sent back.
ECHO_MAX_CHARS = 100


def echoed(value: object) -> object:
    """`value` as an error shows it: unchanged when short; a longer text cut to ECHO_MAX_CHARS
    characters + "…"; any other value whose repr is longer, its repr cut alike."""
    if isinstance(value, str):
        return _cut(value)
    text = repr(value)
    return value if len(text) <= ECHO_MAX_CHARS else _cut(text)


def _cut(text: str) -> str:
    return text if len(text) <= ECHO_MAX_CHARS else text[:ECHO_MAX_CHARS] + "…"


class InvalidInputError(ValueError):
    """A value was refused; the message names the field, the value (cut at ECHO_MAX_CHARS
    characters) and the rule it broke. `value` keeps what was given."""

    def __init__(self, field: str, value: object, rule: str) -> None:
        self.field = field
        self.value = value
        self.rule = rule
        super().__init__(f"{_cut(field)}={_cut(repr(value))}: {rule}")


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


# --- dates -----------------------------------------------------------------------------------
# Plausibility windows of dates (software settings, stated in the README's web section); the
# web's `trial/dates.py` applies them per field with the protocol's trial start.

# A date "today" somewhere on Earth may be tomorrow's date in UTC, the server's calendar: a date
# of something that happened may lie at most this far after today (UTC).
FUTURE_TOLERANCE = timedelta(days=1)
# 177Lu-DOTATOC runs over about 30 minutes, inside the kidney-protecting amino-acid infusion of
# about 4 hours: an infusion longer than this is a typing error (one place for the maximum).
INFUSION_MAX_HOURS = 6.0
# Imaging read at screening (progression CT/MRI, SSTR PET) may precede the screening date by
# the protocol's windows (1-24 months, 3 months); an older one is recorded (and fails the
# criterion) up to this many years before screening, an earlier date is a typing error.
IMAGING_LOOKBACK_YEARS = 5
# A planned start of treatment lies at most this many days after the screening date.
PLANNED_START_HORIZON_DAYS = 366


def years_before(day: date, years: int) -> date:
    """The same calendar day `years` earlier (29 February -> 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def require_date_in(field: str, value: object, earliest: date, latest: date, rule: str) -> date:
    """Return `value` if it is a calendar date (not a date-time) in [earliest, latest], else
    raise naming the field, the value and `rule` (why the window is what it is)."""
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInputError(field, value, "must be a calendar date (YYYY-MM-DD)")
    if not earliest <= value <= latest:
        raise InvalidInputError(
            field, value.isoformat(), f"must lie between {earliest} and {latest}: {rule}"
        )
    return value


def require_instant_in(
    field: str, value: object, earliest: datetime, latest: datetime, rule: str
) -> datetime:
    """Return `value` if it is a date and time with its time zone in [earliest, latest], else
    raise naming the field, the value and `rule`."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(field, value, "must be a date and time with its time zone")
    if not earliest <= value <= latest:
        shown = (
            f"{earliest.isoformat(timespec='minutes')} and {latest.isoformat(timespec='minutes')}"
        )
        raise InvalidInputError(field, value.isoformat(), f"must lie between {shown}: {rule}")
    return value


# --- activity --------------------------------------------------------------------------------
# The smallest administered or planned activity taken as real: below 0.01 GBq (10 MBq) is a unit
# or typing error (a denormal 1e-320 GBq, MBq typed as GBq); the protocol's smallest cycle is
# 1.0 GBq and a physicist's override below it is checked by the protocol.
ACTIVITY_GBQ_MIN = 0.01


# --- free text -------------------------------------------------------------------------------
# Refused in free text: control characters (category Cc; tab and line breaks only where the
# text may span lines), format characters (Cf: zero-width U+200B-U+200D, U+2060, U+FEFF, the
# bidi embeddings and overrides U+202A-U+202E, isolates U+2066-U+2069, marks U+200E/U+200F, soft
# hyphen), line / paragraph separators (U+2028, U+2029), surrogates and private-use characters:
# they hide or reorder what a reader sees.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})
_LINE_BREAKS = frozenset("\t\n\r")


def text_problem(text: str, *, multiline: bool = False) -> str | None:
    """Why `text` is refused as free text (the first refused character), or None."""
    for position, character in enumerate(text):
        if multiline and character in _LINE_BREAKS:
            continue
        if unicodedata.category(character) in _REFUSED_CATEGORIES:
            name = unicodedata.name(character, "control character")
            return (
                f"must not contain control, zero-width, bidi or other invisible characters "
                f"(U+{ord(character):04X} {name} at position {position + 1})"
            )
    return None


def clean_text(
    field: str, value: object, *, max_length: int, multiline: bool = False, required: bool = True
) -> str:
    """`value` as free text: a string, stripped, without refused characters (`text_problem`),
    at most `max_length` characters, not empty when `required`; else raise naming the field."""
    if not isinstance(value, str):
        raise InvalidInputError(field, value, "must be text")
    text = value.strip()
    problem = text_problem(text, multiline=multiline)
    if problem is not None:
        raise InvalidInputError(field, value, problem)
    if len(text) > max_length:
        raise InvalidInputError(field, value, f"must be at most {max_length} characters")
    if required and not text:
        raise InvalidInputError(field, value, "must be given")
    return text


def _text_check(multiline: bool) -> AfterValidator:
    def check(text: str) -> str:
        problem = text_problem(text, multiline=multiline)
        if problem is not None:
            raise PydanticCustomError("free_text", problem)
        return text

    return AfterValidator(check)


# Free text in pydantic records (combine with StringConstraints for length and stripping):
# one line (a term, a lot, a cause) or several (details, reasons), refused as in `clean_text`.
CleanText = Annotated[str, _text_check(multiline=False)]
CleanLines = Annotated[str, _text_check(multiline=True)]
