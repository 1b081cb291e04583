"""startrt.validation: the shared checks of dates, numbers and free text, and how a refusal
echoes the value (issue 11, points 3 and 12)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import pytest
from pydantic import StringConstraints

from startrt.protocol.records import Record, parse_record
from startrt.protocol.screening import PatientLabs
from startrt.validation import (
    ECHO_MAX_CHARS,
    WEIGHT_KG,
    CleanLines,
    CleanText,
    InvalidInputError,
    InvalidRecordError,
    clean_text,
    echoed,
    finite_number,
    require_date_in,
    require_instant_in,
    require_non_negative,
    require_positive,
    text_problem,
    years_before,
)

EARLIEST, LATEST = date(2022, 11, 1), date(2026, 12, 3)


def test_a_date_outside_its_window_is_refused_naming_field_value_and_rule() -> None:
    assert require_date_in("onset_date", EARLIEST, EARLIEST, LATEST, "why") == EARLIEST
    assert require_date_in("onset_date", LATEST, EARLIEST, LATEST, "why") == LATEST
    for day in (date(1, 1, 1), EARLIEST - timedelta(days=1), LATEST + timedelta(days=1)):
        with pytest.raises(InvalidInputError) as error:
            require_date_in("onset_date", day, EARLIEST, LATEST, "not before the trial start")
        assert (error.value.field, error.value.value) == ("onset_date", day.isoformat())
        assert error.value.rule == (
            f"must lie between {EARLIEST} and {LATEST}: not before the trial start"
        )
    for wrong in ("2025-01-01", datetime(2025, 1, 1, tzinfo=UTC), None, True):
        with pytest.raises(InvalidInputError, match="must be a calendar date"):
            require_date_in("onset_date", wrong, EARLIEST, LATEST, "why")


def test_an_instant_needs_its_time_zone_and_its_window() -> None:
    start = datetime(2022, 11, 1, tzinfo=UTC)
    end = datetime(2026, 12, 2, 12, tzinfo=UTC)
    inside = datetime(2025, 3, 17, 9, tzinfo=UTC)
    assert require_instant_in("drawn_at", inside, start, end, "why") == inside
    with pytest.raises(InvalidInputError, match="with its time zone"):
        require_instant_in("drawn_at", datetime(2025, 3, 17, 9), start, end, "why")
    with pytest.raises(InvalidInputError) as error:
        require_instant_in("drawn_at", datetime(1, 1, 1, 9, tzinfo=UTC), start, end, "why")
    assert (error.value.field, error.value.value) == ("drawn_at", "0001-01-01T09:00:00+00:00")


def test_years_before_keeps_the_calendar_day() -> None:
    assert years_before(date(2025, 3, 3), 5) == date(2020, 3, 3)
    assert years_before(date(2024, 2, 29), 1) == date(2023, 2, 28)


def test_booleans_are_not_numbers() -> None:
    for check in (
        lambda value: finite_number("activity_gbq", value, "GBq"),
        lambda value: require_positive("activity_gbq", value, "GBq"),
        lambda value: require_non_negative("inpatient_days", value, "days"),
        lambda value: WEIGHT_KG.check("weight_kg", value),
    ):
        with pytest.raises(InvalidInputError, match="must be a number"):
            check(True)
    assert require_positive("activity_gbq", 7, "GBq") == 7.0


def test_a_record_refuses_true_for_a_number_but_keeps_its_booleans() -> None:
    with pytest.raises(InvalidRecordError) as error:
        parse_record(PatientLabs, {"hemoglobin_g_l": True, "age_years": False}, "labs")
    assert [(e.field, e.value) for e in error.value.errors] == [
        ("hemoglobin_g_l", True),
        ("age_years", False),
    ]
    assert error.value.rule == "must be a number, not true/false"
    assert parse_record(PatientLabs, {"hemoglobin_g_l": 128}, "labs").hemoglobin_g_l == 128.0

    class Flags(Record):
        flag: bool
        grade: int | None = None

    assert parse_record(Flags, {"flag": True}, "flags").flag is True
    with pytest.raises(InvalidRecordError, match="grade"):
        parse_record(Flags, {"flag": True, "grade": True}, "flags")


INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c",  # zero-width non-joiner
    "\u200d",  # zero-width joiner
    "\u2060",  # word joiner
    "\ufeff",  # zero-width no-break space (BOM)
    "\u202a",  # left-to-right embedding
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",  # right-to-left override
    "\u2066",  # left-to-right isolate
    "\u2067",
    "\u2068",
    "\u2069",  # pop directional isolate
    "\x00",
    "\x1b",  # escape
    "\x7f",
    "\x85",  # next line (C1)
    "\u2028",  # line separator
    "\ue000",  # private use
]


@pytest.mark.parametrize("character", INVISIBLE)
def test_free_text_refuses_control_zero_width_and_bidi_characters(character: str) -> None:
    text = f"Nau{character}sea"
    with pytest.raises(InvalidInputError) as error:
        clean_text("term", text, max_length=200)
    assert error.value.field == "term"
    assert f"U+{ord(character):04X}" in error.value.rule
    assert "at position 4" in error.value.rule
    assert text_problem(text, multiline=True) is not None


def test_free_text_is_stripped_and_bounded() -> None:
    assert clean_text("lot", "  LU-2025-17 ", max_length=64) == "LU-2025-17"
    assert clean_text("term", "Illamående, grad 2 (ÅÄÖ é ü ß 中文)", max_length=200)
    with pytest.raises(InvalidInputError, match="must be given"):
        clean_text("lot", "   ", max_length=64)
    with pytest.raises(InvalidInputError, match="at most 64 characters"):
        clean_text("lot", "x" * 65, max_length=64)
    with pytest.raises(InvalidInputError, match="must be text"):
        clean_text("lot", 17, max_length=64)
    with pytest.raises(InvalidInputError, match="U\\+000A"):  # one line only
        clean_text("lot", "LU\n17", max_length=64)
    assert clean_text("reason", "line one\nline two\ttab", max_length=2000, multiline=True)


def test_free_text_types_of_records() -> None:
    class Entry(Record):
        term: Annotated[CleanText, StringConstraints(strip_whitespace=True, min_length=1)]
        details: CleanLines = ""

    assert parse_record(Entry, {"term": " Nausea ", "details": "a\nb"}, "entry").term == "Nausea"
    for data in ({"term": "Nau\u200bsea"}, {"term": "Nausea", "details": "x\u202ey"}):
        with pytest.raises(InvalidRecordError) as error:
            parse_record(Entry, data, "entry")
        assert "bidi" in error.value.rule


def test_refusals_echo_at_most_100_characters() -> None:
    huge = "A" * 2_000_000
    error = InvalidInputError("term", huge, "must be at most 200 characters")
    assert len(str(error)) < 200
    assert str(error).startswith("term='" + "A" * (ECHO_MAX_CHARS - 1))
    assert "…" in str(error)
    assert str(error).endswith(": must be at most 200 characters")
    assert error.value is huge  # the value itself is kept for the caller
    shown = echoed(huge)
    assert isinstance(shown, str)
    assert len(shown) == ECHO_MAX_CHARS + 1
    assert shown.endswith("…")
    assert echoed("short") == "short"
    assert echoed(7.5) == 7.5
    assert echoed(None) is None
    assert echoed([1, 2]) == [1, 2]
    big_list = echoed(list(range(10_000)))
    assert isinstance(big_list, str)
    assert len(big_list) == ECHO_MAX_CHARS + 1
    record = InvalidRecordError("adverse event", [error, InvalidInputError("cause", huge, "x")])
    assert len(str(record)) < 400
