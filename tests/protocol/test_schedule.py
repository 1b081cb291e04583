"""Tests for the visit calendar. Expected dates are worked out by hand in the comments."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from startrt.protocol.schedule import (
    Schedule,
    ScheduleSettings,
    Visit,
    VisitKind,
    build_schedule,
    cycle_window_check,
    imaging_day_after_cycle,
)
from startrt.validation import InvalidInputError

# START-01 values (PROTOCOL.md: 10 +/- 2 weeks; capecitabine 14 of 21 days, first 4 cycles).
# Imaging hours, lab days and EOT weeks are not in PROTOCOL.md: assumed here for the tests; the EOT
# delay (8 weeks) is deliberately different from the interval so the two cannot be confused.
START01_FIELDS: dict[str, Any] = {
    "interval_weeks": 10,
    "window_weeks": 2,
    "dosimetry_imaging_hours": (4, 24, 96, 168),
    "pre_cycle_lab_days_before": 7,
    "lab_check_days_after_cycle": (14, 28, 42),
    "capecitabine_days": 14,
    "capecitabine_cycle_days": 21,
    "capecitabine_prrt_cycles": 4,
    "eot_weeks_after_last_cycle": 8,
}
START01 = ScheduleSettings(**START01_FIELDS)
FIRST = date(2025, 1, 6)  # a Monday


def settings_with(**changes: Any) -> ScheduleSettings:
    return ScheduleSettings(**{**START01_FIELDS, **changes})


def schedule(
    planned_cycles: int = 4,
    administered: dict[int, date] | None = None,
    *,
    with_capecitabine: bool = False,
    settings: ScheduleSettings = START01,
) -> Schedule:
    return build_schedule(
        settings,
        first_cycle_date=FIRST,
        planned_cycles=planned_cycles,
        administered=administered,
        with_capecitabine=with_capecitabine,
    )


def cycle_numbers(visits: Schedule, kind: VisitKind) -> list[int | None]:
    return [visit.cycle_number for visit in visits.visits if visit.kind is kind]


def dates_of(visits: Schedule, kind: VisitKind, cycle_number: int | None) -> list[date]:
    return [
        visit.visit_date
        for visit in visits.visits
        if visit.kind is kind and visit.cycle_number == cycle_number
    ]


# --- cycle targets and windows -------------------------------------------------------------------


def test_on_time_cycle_targets_and_windows() -> None:
    # 2025-01-06 + 70 d: Jan 6 + 25 = Jan 31, + 28 = Feb 28 (53 d), + 17 = Mar 17 (70 d).
    # Mar 17 + 70 d: + 14 = Mar 31, + 30 = Apr 30 (44 d), + 26 = May 26.
    # May 26 + 70 d: + 5 = May 31, + 30 = Jun 30 (35), + 31 = Jul 31 (66), + 4 = Aug 4.
    # Windows +/- 14 d: Mar 17 -> Mar 3..Mar 31; May 26 -> May 12..Jun 9; Jan 6 -> Dec 23..Jan 20.
    cycles = schedule().cycles()
    assert [(c.cycle_number, c.target_date, c.earliest, c.latest) for c in cycles] == [
        (1, date(2025, 1, 6), date(2024, 12, 23), date(2025, 1, 20)),
        (2, date(2025, 3, 17), date(2025, 3, 3), date(2025, 3, 31)),
        (3, date(2025, 5, 26), date(2025, 5, 12), date(2025, 6, 9)),
        (4, date(2025, 8, 4), date(2025, 7, 21), date(2025, 8, 18)),
    ]
    assert [c.label for c in cycles] == ["Cycle 1", "Cycle 2", "Cycle 3", "Cycle 4"]
    assert not any(c.done for c in cycles)
    assert [c.administered_date for c in cycles] == [None] * 4


def test_delayed_cycle_2_shifts_cycle_3_and_4() -> None:
    # Cycle 2 given 2025-03-24, one week after its target Mar 17 (target and window unchanged).
    # Cycle 3: Mar 24 + 70 d = Mar 31 (7), Apr 30 (37), May 31 (68), Jun 2 (70);
    # window Jun 2 -/+ 14 d = May 19..Jun 16.
    # Cycle 4: Jun 2 + 70 d = Jun 30 (28), Jul 31 (59), Aug 11 (70).
    # EOT: Aug 11 + 56 d = Aug 31 (20), Sep 30 (50), Oct 6 (56).
    moved = schedule(administered={1: FIRST, 2: date(2025, 3, 24)})
    cycles = moved.cycles()
    assert cycles[1].target_date == date(2025, 3, 17)
    assert (cycles[1].earliest, cycles[1].latest) == (date(2025, 3, 3), date(2025, 3, 31))
    assert cycles[1].administered_date == date(2025, 3, 24)
    assert cycles[1].visit_date == date(2025, 3, 24)
    assert (cycles[2].target_date, cycles[2].earliest, cycles[2].latest) == (
        date(2025, 6, 2),
        date(2025, 5, 19),
        date(2025, 6, 16),
    )
    assert cycles[3].target_date == date(2025, 8, 11)
    assert dates_of(moved, VisitKind.END_OF_TREATMENT, None) == [date(2025, 10, 6)]
    # Cycle 2's own visits follow its actual date Mar 24: imaging days 0, 1, 4, 7; lab 7 d before.
    assert dates_of(moved, VisitKind.DOSIMETRY_IMAGING, 2) == [
        date(2025, 3, 24),
        date(2025, 3, 25),
        date(2025, 3, 28),
        date(2025, 3, 31),
    ]
    assert dates_of(moved, VisitKind.PRE_CYCLE_LAB, 2) == [date(2025, 3, 17)]
    assert [c.done for c in cycles] == [True, True, False, False]
    assert moved.next_cycle() == cycles[2]


def test_early_cycle_2_at_window_start_pulls_cycle_3_earlier() -> None:
    # Cycle 2 given Mar 3 (earliest day). Cycle 3: Mar 3 + 70 d = Mar 31 (28), Apr 30 (58), May 12.
    cycles = schedule(administered={1: FIRST, 2: date(2025, 3, 3)}).cycles()
    assert cycles[2].target_date == date(2025, 5, 12)


def test_cycle_1_follows_its_administered_date_not_the_planned_one() -> None:
    # Planned Jan 6, given Jan 8: cycle 1 target Jan 8; cycle 2 = Jan 8 + 70 d = Mar 19.
    cycles = schedule(administered={1: date(2025, 1, 8)}).cycles()
    assert cycles[0].target_date == date(2025, 1, 8)
    assert cycles[0].done
    assert cycles[1].target_date == date(2025, 3, 19)


def test_next_cycle_is_none_when_every_cycle_was_given() -> None:
    given_dates = {1: FIRST, 2: date(2025, 3, 17)}
    assert schedule(2, given_dates).next_cycle() is None
    assert schedule(2).next_cycle() == schedule(2).cycles()[0]


# --- the full calendar ---------------------------------------------------------------------------


def test_full_calendar_of_two_cycles_with_capecitabine_in_order() -> None:
    # Cycle 1 Jan 6: pre-lab Jan 6 - 7 = Dec 30; imaging 4/24/96/168 h -> days 0/1/4/7
    # = Jan 6/7/10/13; capecitabine day 1 = Jan 6, day 14 = Jan 6 + 13 = Jan 19;
    # labs +14/28/42 = Jan 20, Feb 3, Feb 17.
    # Cycle 2 Mar 17: pre-lab Mar 10; imaging Mar 17/18/21/24; capecitabine Mar 17..Mar 30;
    # labs Mar 31, Apr 14, Apr 28. EOT Mar 17 + 56 d = Mar 31 (14), Apr 30 (44), May 12 (56).
    # Same-day order: pre-cycle lab, lab, cycle, capecitabine start, imaging, capecitabine end, EOT.
    k = VisitKind
    expected = [
        (date(2024, 12, 30), k.PRE_CYCLE_LAB, 1),
        (date(2025, 1, 6), k.CYCLE, 1),
        (date(2025, 1, 6), k.CAPECITABINE_START, 1),
        (date(2025, 1, 6), k.DOSIMETRY_IMAGING, 1),
        (date(2025, 1, 7), k.DOSIMETRY_IMAGING, 1),
        (date(2025, 1, 10), k.DOSIMETRY_IMAGING, 1),
        (date(2025, 1, 13), k.DOSIMETRY_IMAGING, 1),
        (date(2025, 1, 19), k.CAPECITABINE_END, 1),
        (date(2025, 1, 20), k.LAB_CHECK, 1),
        (date(2025, 2, 3), k.LAB_CHECK, 1),
        (date(2025, 2, 17), k.LAB_CHECK, 1),
        (date(2025, 3, 10), k.PRE_CYCLE_LAB, 2),
        (date(2025, 3, 17), k.CYCLE, 2),
        (date(2025, 3, 17), k.CAPECITABINE_START, 2),
        (date(2025, 3, 17), k.DOSIMETRY_IMAGING, 2),
        (date(2025, 3, 18), k.DOSIMETRY_IMAGING, 2),
        (date(2025, 3, 21), k.DOSIMETRY_IMAGING, 2),
        (date(2025, 3, 24), k.DOSIMETRY_IMAGING, 2),
        (date(2025, 3, 30), k.CAPECITABINE_END, 2),
        (date(2025, 3, 31), k.LAB_CHECK, 2),
        (date(2025, 4, 14), k.LAB_CHECK, 2),
        (date(2025, 4, 28), k.LAB_CHECK, 2),
        (date(2025, 5, 12), k.END_OF_TREATMENT, None),
    ]
    visits = schedule(2, with_capecitabine=True).visits
    assert [(v.visit_date, v.kind, v.cycle_number) for v in visits] == expected


def test_visits_other_than_cycles_have_a_one_day_window_and_are_not_done() -> None:
    visits = schedule(2, {1: FIRST}, with_capecitabine=True).visits
    others = [v for v in visits if v.kind is not VisitKind.CYCLE]
    assert others
    assert all(v.earliest == v.target_date == v.latest for v in others)
    assert not any(v.done or v.administered_date for v in others)


def test_labels_of_follow_up_visits() -> None:
    labels = {v.label for v in schedule(1, with_capecitabine=True).visits}
    assert labels == {
        "Cycle 1",
        "Pre-cycle laboratory check for cycle 1",
        "Dosimetry imaging 4 h after cycle 1",
        "Dosimetry imaging 24 h after cycle 1",
        "Dosimetry imaging 96 h after cycle 1",
        "Dosimetry imaging 168 h after cycle 1",
        "Laboratory check 14 days after cycle 1",
        "Laboratory check 28 days after cycle 1",
        "Laboratory check 42 days after cycle 1",
        "Capecitabine day 1 (cycle 1)",
        "Capecitabine day 14, last dose (cycle 1)",
        "End of treatment",
    }


# --- capecitabine --------------------------------------------------------------------------------


def test_capecitabine_only_on_the_first_four_cycles() -> None:
    visits = schedule(6, with_capecitabine=True)
    assert cycle_numbers(visits, VisitKind.CAPECITABINE_START) == [1, 2, 3, 4]
    assert cycle_numbers(visits, VisitKind.CAPECITABINE_END) == [1, 2, 3, 4]
    # Cycle 3 (May 26): day 1 May 26, day 14 = May 26 + 13 = Jun 8.
    assert dates_of(visits, VisitKind.CAPECITABINE_START, 3) == [date(2025, 5, 26)]
    assert dates_of(visits, VisitKind.CAPECITABINE_END, 3) == [date(2025, 6, 8)]


def test_no_capecitabine_without_it_in_the_arm() -> None:
    visits = schedule(6, with_capecitabine=False)
    assert cycle_numbers(visits, VisitKind.CAPECITABINE_START) == []
    assert cycle_numbers(visits, VisitKind.CAPECITABINE_END) == []


def test_capecitabine_on_fewer_cycles_than_the_course_count_and_configurable_count() -> None:
    assert cycle_numbers(schedule(2, with_capecitabine=True), VisitKind.CAPECITABINE_START) == [
        1,
        2,
    ]
    two_courses = settings_with(capecitabine_prrt_cycles=2)
    visits = schedule(5, with_capecitabine=True, settings=two_courses)
    assert cycle_numbers(visits, VisitKind.CAPECITABINE_END) == [1, 2]


# --- dosimetry imaging ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hours", "day"),
    [(0, 0), (4, 0), (23.99, 0), (24, 1), (47.99, 1), (48, 2), (96, 4), (167.9, 6), (168, 7)],
)
def test_imaging_day_is_floor_of_hours_over_24(hours: float, day: int) -> None:
    assert imaging_day_after_cycle(hours) == day


def test_imaging_visits_follow_the_hours_setting() -> None:
    # Hours 0, 23.5, 24, 47.5, 48 -> days 0, 0, 1, 1, 2 -> Jan 6, 6, 7, 7, 8.
    settings = settings_with(dosimetry_imaging_hours=(0, 23.5, 24, 47.5, 48))
    visits = schedule(1, settings=settings)
    assert dates_of(visits, VisitKind.DOSIMETRY_IMAGING, 1) == [
        date(2025, 1, 6),
        date(2025, 1, 6),
        date(2025, 1, 7),
        date(2025, 1, 7),
        date(2025, 1, 8),
    ]


def test_no_imaging_visits_when_none_configured() -> None:
    visits = schedule(2, settings=settings_with(dosimetry_imaging_hours=()))
    assert cycle_numbers(visits, VisitKind.DOSIMETRY_IMAGING) == []


# --- window check --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("proposed", "within", "days_early", "days_late"),
    [
        (date(2025, 3, 17), True, 0, 0),  # the target
        (date(2025, 3, 3), True, 0, 0),  # first day of the window: inside
        (date(2025, 3, 2), False, 1, 0),  # one day before
        (date(2025, 2, 24), False, 7, 0),  # Feb 24 -> Mar 3 = 4 + 3 days
        (date(2025, 3, 31), True, 0, 0),  # last day of the window: inside
        (date(2025, 4, 1), False, 0, 1),  # one day after
        (date(2025, 4, 14), False, 0, 14),  # Mar 31 + 14
    ],
)
def test_cycle_window_check_boundaries(
    proposed: date, within: bool, days_early: int, days_late: int
) -> None:
    check = cycle_window_check(schedule(), 2, proposed)
    assert (check.within, check.days_early, check.days_late) == (within, days_early, days_late)
    assert (check.cycle_number, check.proposed_date, check.target_date) == (
        2,
        proposed,
        date(2025, 3, 17),
    )
    assert (check.earliest, check.latest) == (date(2025, 3, 3), date(2025, 3, 31))


def test_cycle_window_check_messages() -> None:
    window = "its window 2025-03-03 to 2025-03-31 (target 2025-03-17)."
    visits = schedule()
    assert cycle_window_check(visits, 2, date(2025, 3, 31)).message == (
        f"Cycle 2 on 2025-03-31 is within {window}"
    )
    assert cycle_window_check(visits, 2, date(2025, 3, 2)).message == (
        f"Cycle 2 on 2025-03-02 is 1 day before {window}"
    )
    assert cycle_window_check(visits, 2, date(2025, 4, 2)).message == (
        f"Cycle 2 on 2025-04-02 is 2 days after {window}"
    )


def test_window_check_follows_a_moved_previous_cycle() -> None:
    # Cycle 2 given Mar 24 -> cycle 3 window May 19..Jun 16 (see the delayed-cycle test).
    moved = schedule(administered={1: FIRST, 2: date(2025, 3, 24)})
    assert cycle_window_check(moved, 3, date(2025, 6, 16)).within
    assert cycle_window_check(moved, 3, date(2025, 5, 18)).days_early == 1


# --- input validation ----------------------------------------------------------------------------


@pytest.mark.parametrize("planned", [0, -1, True, 2.0])
def test_bad_planned_cycles_is_refused(planned: Any) -> None:
    with pytest.raises(InvalidInputError) as error:
        schedule(planned)
    assert error.value.field == "planned_cycles"


@pytest.mark.parametrize(
    ("administered", "field"),
    [
        ({3: date(2025, 5, 26)}, "administered[3]"),  # beyond planned_cycles = 2
        ({0: FIRST}, "administered[0]"),
        ({1: FIRST, 2: FIRST}, "administered[2]"),  # not after cycle 1
        ({1: FIRST, 2: date(2025, 1, 5)}, "administered[2]"),  # before cycle 1
        ({2: date(2025, 3, 17)}, "administered[2]"),  # cycle 1 missing
        ({1: datetime(2025, 1, 6, 9, 0)}, "administered[1]"),  # a datetime, not a date
        ({"1": FIRST}, "administered"),
    ],
)
def test_bad_administered_dates_are_refused(administered: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        schedule(2, administered)
    assert error.value.field == field


def test_one_day_after_the_previous_cycle_is_accepted() -> None:
    # Strictly increasing is the only order rule; Jan 7 is after Jan 6.
    cycles = schedule(2, {1: FIRST, 2: date(2025, 1, 7)}).cycles()
    assert cycles[1].administered_date == date(2025, 1, 7)


@pytest.mark.parametrize("first", [datetime(2025, 1, 6, 8, 0), "2025-01-06", None])
def test_first_cycle_date_must_be_a_date(first: Any) -> None:
    with pytest.raises(InvalidInputError) as error:
        build_schedule(START01, first_cycle_date=first, planned_cycles=1, with_capecitabine=False)
    assert error.value.field == "first_cycle_date"


@pytest.mark.parametrize("first", [date(9999, 12, 1), date(1, 1, 3)])
def test_schedule_outside_the_calendar_is_refused(first: date) -> None:
    # 9999-12-01 + imaging/labs runs past 9999-12-31; 0001-01-03 - 7 days runs before 0001-01-01.
    with pytest.raises(InvalidInputError) as error:
        build_schedule(START01, first_cycle_date=first, planned_cycles=1, with_capecitabine=False)
    assert error.value.field == "first_cycle_date"


def test_with_capecitabine_must_be_a_bool() -> None:
    with pytest.raises(InvalidInputError) as error:
        build_schedule(
            START01,
            first_cycle_date=FIRST,
            planned_cycles=1,
            with_capecitabine="yes",  # type: ignore[arg-type]
        )
    assert error.value.field == "with_capecitabine"


@pytest.mark.parametrize("cycle_number", [0, 5, True])
def test_window_check_of_an_unknown_cycle_is_refused(cycle_number: int) -> None:
    with pytest.raises(InvalidInputError) as error:
        cycle_window_check(schedule(4), cycle_number, FIRST)
    assert error.value.field == "cycle_number"


def test_window_check_needs_a_date() -> None:
    with pytest.raises(InvalidInputError) as error:
        cycle_window_check(schedule(4), 2, "2025-03-17")  # type: ignore[arg-type]
    assert error.value.field == "proposed"


# --- settings ------------------------------------------------------------------------------------


def test_settings_accept_toml_lists_and_store_tuples() -> None:
    fields = {
        **START01_FIELDS,
        "dosimetry_imaging_hours": [4, 24, 96, 168],
        "lab_check_days_after_cycle": [14, 28, 42],
    }
    settings = ScheduleSettings.model_validate(fields)
    assert settings == START01
    assert settings.dosimetry_imaging_hours == (4.0, 24.0, 96.0, 168.0)


def test_settings_are_frozen_and_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        START01.interval_weeks = 8  # type: ignore[misc]
    with pytest.raises(ValidationError, match="interval_days"):
        ScheduleSettings(**START01_FIELDS, interval_days=70)
    missing = {key: value for key, value in START01_FIELDS.items() if key != "window_weeks"}
    with pytest.raises(ValidationError, match="window_weeks"):
        ScheduleSettings(**missing)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"interval_weeks": 0}, "interval_weeks"),
        ({"interval_weeks": True}, "interval_weeks"),
        ({"interval_weeks": 10.5}, "interval_weeks"),
        ({"window_weeks": -1}, "window_weeks"),
        ({"window_weeks": 10}, "window_weeks"),  # equal to the interval
        ({"window_weeks": 8}, "capecitabine_cycle_days"),  # gap 14 d < 21-day course
        ({"dosimetry_imaging_hours": (-1, 24)}, "dosimetry_imaging_hours"),
        ({"dosimetry_imaging_hours": (24, 4)}, "dosimetry_imaging_hours"),
        ({"dosimetry_imaging_hours": (24, 24)}, "dosimetry_imaging_hours"),
        ({"dosimetry_imaging_hours": (float("nan"),)}, "dosimetry_imaging_hours"),
        # shortest gap between cycles = (10 - 2) weeks = 56 days; 56 * 24 = 1344 h is day 56
        ({"dosimetry_imaging_hours": (4, 1344)}, "dosimetry_imaging_hours"),
        ({"pre_cycle_lab_days_before": -1}, "pre_cycle_lab_days_before"),
        ({"pre_cycle_lab_days_before": 56}, "pre_cycle_lab_days_before"),
        ({"lab_check_days_after_cycle": (0, 14)}, "lab_check_days_after_cycle"),
        ({"lab_check_days_after_cycle": (28, 14)}, "lab_check_days_after_cycle"),
        ({"capecitabine_days": 0}, "capecitabine_days"),
        ({"capecitabine_days": 22}, "capecitabine_days"),  # more than the 21-day course
        ({"capecitabine_cycle_days": 57}, "capecitabine_cycle_days"),  # beyond 56 days
        ({"capecitabine_prrt_cycles": 0}, "capecitabine_prrt_cycles"),
        ({"eot_weeks_after_last_cycle": 0}, "eot_weeks_after_last_cycle"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        settings_with(**changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"window_weeks": 7},  # shortest gap 3 weeks = 21 days = the capecitabine course
        {"window_weeks": 0},
        {"dosimetry_imaging_hours": (4, 1343)},  # day 55 < 56
        {"pre_cycle_lab_days_before": 55},
        {"pre_cycle_lab_days_before": 0},
        {"capecitabine_cycle_days": 56},  # course ends the day before the earliest next cycle
        {"capecitabine_days": 21},
        {"lab_check_days_after_cycle": ()},
    ],
)
def test_settings_at_their_limits_are_accepted(changes: dict[str, Any]) -> None:
    assert settings_with(**changes).model_dump()[next(iter(changes))] == next(
        iter(changes.values())
    )


# --- properties ----------------------------------------------------------------------------------

INTERVAL = timedelta(weeks=10)
first_dates = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@st.composite
def administered_dates(draw: st.DrawFn) -> tuple[date, int, dict[int, date]]:
    """A first date, a cycle count and any strictly increasing administered dates."""
    first = draw(first_dates)
    planned = draw(st.integers(1, 12))
    count = draw(st.integers(0, planned))
    day = first + timedelta(days=draw(st.integers(-30, 30)))
    given: dict[int, date] = {}
    for number in range(1, count + 1):
        given[number] = day
        day += timedelta(days=draw(st.integers(1, 200)))
    return first, planned, given


@given(administered_dates(), st.booleans())
def test_cycles_are_strictly_increasing_and_due_one_interval_after_the_previous(
    case: tuple[date, int, dict[int, date]], with_capecitabine: bool
) -> None:
    first, planned, given_dates = case
    visits = build_schedule(
        START01,
        first_cycle_date=first,
        planned_cycles=planned,
        administered=given_dates,
        with_capecitabine=with_capecitabine,
    )
    cycles = visits.cycles()
    assert [c.cycle_number for c in cycles] == list(range(1, planned + 1))
    assert all(a.target_date < b.target_date for a, b in itertools.pairwise(cycles))
    for previous, following in itertools.pairwise(cycles):
        assert following.target_date - previous.visit_date == INTERVAL
    assert [c.administered_date for c in cycles[: len(given_dates)]] == list(given_dates.values())
    assert [v.visit_date for v in visits.visits] == sorted(v.visit_date for v in visits.visits)


@given(first_dates, st.integers(1, 12), st.data())
def test_nothing_moved_means_targets_every_interval(
    first: date, planned: int, data: st.DataObject
) -> None:
    on_time = {n: first + (n - 1) * INTERVAL for n in range(1, planned + 1)}
    given_count = data.draw(st.integers(0, planned))
    given_dates = {n: on_time[n] for n in range(1, given_count + 1)}
    visits = build_schedule(
        START01,
        first_cycle_date=first,
        planned_cycles=planned,
        administered=given_dates,
        with_capecitabine=False,
    )
    assert [c.target_date for c in visits.cycles()] == list(on_time.values())
    assert [c.done for c in visits.cycles()] == [n <= given_count for n in on_time]


def shifted_window(visit: Visit, days: int) -> tuple[date, date, date]:
    delta = timedelta(days=days)
    return visit.target_date + delta, visit.earliest + delta, visit.latest + delta


@given(
    first_dates,
    st.integers(1, 8),
    st.data(),
    st.integers(-14, 14).filter(bool),
    st.booleans(),
)
def test_moving_a_cycle_moves_every_later_visit_by_the_same_days(
    first: date, planned: int, data: st.DataObject, shift_days: int, with_capecitabine: bool
) -> None:
    moved_cycle = data.draw(st.integers(1, planned))
    on_time = {n: first + (n - 1) * INTERVAL for n in range(1, moved_cycle + 1)}
    moved = {**on_time, moved_cycle: on_time[moved_cycle] + timedelta(days=shift_days)}

    def build(given_dates: dict[int, date]) -> dict[str, Visit]:
        visits = build_schedule(
            START01,
            first_cycle_date=first,
            planned_cycles=planned,
            administered=given_dates,
            with_capecitabine=with_capecitabine,
        )
        return {v.label: v for v in visits.visits}

    before, after = build(on_time), build(moved)
    assert before.keys() == after.keys()
    for label, old in before.items():
        new = after[label]
        number = old.cycle_number
        if number is not None and number < moved_cycle:
            assert new == old
        elif old.kind is VisitKind.CYCLE and number == moved_cycle > 1:
            # its target and window stay; only the administered date moves (cycle 1's target
            # is its administered date, so cycle 1 falls in the last branch)
            assert (new.target_date, new.earliest, new.latest) == (
                old.target_date,
                old.earliest,
                old.latest,
            )
            assert new.visit_date == old.visit_date + timedelta(days=shift_days)
        else:
            assert (new.target_date, new.earliest, new.latest) == shifted_window(old, shift_days)
