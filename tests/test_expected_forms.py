"""Expected forms against entered ones (`protocol.expected_forms`).

Dates by hand, START-01 v1.0: cycles every 10 weeks, window 2 weeks; pre-cycle labs 7 days
before the planned day; the last imaging session 168 h = day 7 after the infusion; lab checks
14, 28 and 42 days after it; end of treatment 10 weeks after the last cycle; tumour
assessments every 12 weeks (84 days) from randomization; follow-up contacts every 12 weeks
after the end of treatment; missing once more than 14 days passed since the due day.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from startrt.protocol.definition import default_protocol
from startrt.protocol.expected_forms import (
    CycleFacts,
    ExpectedForm,
    ExpectedFormSettings,
    FormKind,
    PatientFacts,
    dosimetry_due_day,
    expected_forms,
    missing_forms,
    participation_ends,
    pre_cycle_lab_day,
)
from startrt.protocol.vocabulary import EndOfTreatmentReason
from startrt.validation import InvalidInputError

PROTOCOL = default_protocol()
RANDOMIZED = date(2025, 3, 3)


def dtoc(**facts: object) -> PatientFacts:
    """A dTOC patient randomized on 2025-03-03: cycle 1 given on 2025-03-17 (labs and
    dosimetry entered), cycle 2 planned on 2025-05-26; lab checks drawn 04-01 and 04-29; the
    first assessment on 2025-05-20."""
    base = PatientFacts(
        randomized_on=RANDOMIZED,
        dosimetry_guided=True,
        fixed_cycles=None,
        cycles=(
            CycleFacts(1, date(2025, 3, 17), date(2025, 3, 17), False, (date(2025, 3, 10),), True),
            CycleFacts(2, date(2025, 5, 26)),
        ),
        lab_check_days=(date(2025, 4, 1), date(2025, 4, 29)),
        assessment_days=(date(2025, 5, 20),),
    )
    return replace(base, **facts)  # type: ignore[arg-type]


def rows(forms: tuple[ExpectedForm, ...]) -> list[tuple[str, str, int]]:
    return [(form.label, form.due.isoformat(), form.days_overdue) for form in forms]


def test_shared_rules_read_the_protocol_file() -> None:
    schedule = PROTOCOL.schedule
    assert pre_cycle_lab_day(date(2025, 5, 26), schedule) == date(2025, 5, 19)
    assert dosimetry_due_day(date(2025, 3, 17), schedule) == date(2025, 3, 24)
    assert PROTOCOL.expected_forms == ExpectedFormSettings(
        follow_up_interval_weeks=12, grace_days=14
    )


def test_a_dtoc_patient_on_treatment() -> None:
    forms = expected_forms(dtoc(), PROTOCOL, date(2025, 6, 30))
    assert [(f.label, f.due.isoformat(), f.entered) for f in forms] == [
        ("Pre-cycle labs, cycle 1", "2025-03-10", True),
        ("Dosimetry, cycle 1", "2025-03-24", True),
        ("Administration, cycle 1", "2025-03-31", True),
        ("Laboratory check 1 after cycle 1", "2025-03-31", True),
        ("Laboratory check 2 after cycle 1", "2025-04-14", False),
        ("Laboratory check 3 after cycle 1", "2025-04-28", True),
        ("Pre-cycle labs, cycle 2", "2025-05-19", False),
        ("Tumour assessment 1", "2025-05-26", True),
        ("Administration, cycle 2", "2025-06-09", False),
    ]  # assessment 2 is due 2025-08-18; no end of treatment: the course goes on
    assert rows(missing_forms(dtoc(), PROTOCOL, date(2025, 6, 30))) == [
        ("Laboratory check 2 after cycle 1", "2025-04-14", 77),
        ("Pre-cycle labs, cycle 2", "2025-05-19", 42),
        ("Administration, cycle 2", "2025-06-09", 21),
    ]


def test_grace_boundary_and_due_today() -> None:
    administration = "Administration, cycle 2"  # due 2025-06-09
    on_last_grace_day = missing_forms(dtoc(), PROTOCOL, date(2025, 6, 23))
    assert administration not in [f.label for f in on_last_grace_day]
    day_after = missing_forms(dtoc(), PROTOCOL, date(2025, 6, 24))
    assert (administration, "2025-06-09", 15) in rows(day_after)
    no_grace = PROTOCOL.model_copy(
        update={"expected_forms": ExpectedFormSettings(follow_up_interval_weeks=12, grace_days=0)}
    )
    due_today = expected_forms(dtoc(), no_grace, date(2025, 6, 9))
    assert [(f.days_overdue, f.missing) for f in due_today if f.label == administration] == [
        (0, False)
    ]
    next_day = missing_forms(dtoc(), no_grace, date(2025, 6, 10))
    assert (administration, "2025-06-09", 1) in rows(next_day)
    # not yet expected the day before its due day
    assert administration not in [
        f.label for f in expected_forms(dtoc(), no_grace, date(2025, 6, 8))
    ]


def test_the_next_cycle_is_due_before_it_is_planned() -> None:
    only_cycle_1 = dtoc(cycles=dtoc().cycles[:1])
    # cycle 1 given 2025-03-17: cycle 2 due 10 weeks later +/- 2 weeks, by 2025-06-09
    assert ("Administration, cycle 2", "2025-06-09", 21) in rows(
        missing_forms(only_cycle_1, PROTOCOL, date(2025, 6, 30))
    )
    stopped = replace(only_cycle_1, course_stopped=True)
    assert "Administration, cycle 2" not in [
        f.label for f in expected_forms(stopped, PROTOCOL, date(2025, 6, 30))
    ]


def test_pre_cycle_labs_drawn_before_the_lab_day_do_not_count() -> None:
    early = dtoc(
        cycles=(
            *dtoc().cycles[:1],
            CycleFacts(2, date(2025, 5, 26), None, False, (date(2025, 5, 18),)),
        )
    )
    assert "Pre-cycle labs, cycle 2" in [
        f.label for f in missing_forms(early, PROTOCOL, date(2025, 6, 30))
    ]
    on_day = dtoc(
        cycles=(
            *dtoc().cycles[:1],
            CycleFacts(2, date(2025, 5, 26), None, False, (date(2025, 5, 19),)),
        )
    )
    assert "Pre-cycle labs, cycle 2" not in [
        f.label for f in missing_forms(on_day, PROTOCOL, date(2025, 6, 30))
    ]


def test_standard_arm_end_of_treatment_then_follow_up() -> None:
    days = (date(2025, 1, 6), date(2025, 3, 17), date(2025, 5, 26), date(2025, 8, 4))
    cycles = tuple(
        CycleFacts(n, day, day, False, (day - timedelta(days=7),)) for n, day in enumerate(days, 1)
    )
    facts = PatientFacts(
        randomized_on=date(2024, 12, 16),
        dosimetry_guided=False,
        fixed_cycles=4,
        cycles=cycles,
        lab_check_days=tuple(day + timedelta(days=d) for day in days for d in (14, 28, 42)),
        assessment_days=(date(2025, 3, 10), date(2025, 6, 2), date(2025, 8, 25)),
    )
    # 4 cycles given: the end of treatment is due 10 weeks after 2025-08-04 = 2025-10-13;
    # no dosimetry is expected in the standard arm
    assert rows(missing_forms(facts, PROTOCOL, date(2025, 11, 3))) == [
        ("End of treatment", "2025-10-13", 21)
    ]
    assert FormKind.DOSIMETRY not in {
        f.kind for f in expected_forms(facts, PROTOCOL, date(2025, 11, 3))
    }
    ended = replace(
        facts,
        end_of_treatment_on=date(2025, 10, 13),
        end_of_treatment_reason=EndOfTreatmentReason.COMPLETED,
        assessment_days=(*facts.assessment_days, date(2025, 11, 17)),
    )
    # follow-up 1 due 12 weeks after 2025-10-13 = 2026-01-05; assessment 5 on 2026-02-02
    assert rows(missing_forms(ended, PROTOCOL, date(2026, 2, 2))) == [
        ("Follow-up contact 1", "2026-01-05", 28)
    ]
    contacted = replace(ended, follow_up_days=(date(2026, 1, 7),))
    assert missing_forms(contacted, PROTOCOL, date(2026, 2, 2)) == ()


def test_nothing_is_expected_after_death() -> None:
    died = dtoc(died_on=date(2025, 4, 1), lab_check_days=(), assessment_days=())
    forms = expected_forms(died, PROTOCOL, date(2025, 12, 1))
    # lab check 1 (03-31) falls before death, checks 2 and 3, cycle 2 and assessment 1 after;
    # the end of treatment is due on the date of death
    assert rows(tuple(f for f in forms if f.missing)) == [
        ("Laboratory check 1 after cycle 1", "2025-03-31", 245),
        ("End of treatment", "2025-04-01", 244),
    ]
    assert max(f.due for f in forms) == date(2025, 4, 1)


def test_nothing_is_expected_after_withdrawal_of_consent() -> None:
    withdrawn = dtoc(
        end_of_treatment_on=date(2025, 4, 20),
        end_of_treatment_reason=EndOfTreatmentReason.WITHDRAWAL,
    )
    assert participation_ends(withdrawn) == date(2025, 4, 20)
    forms = expected_forms(withdrawn, PROTOCOL, date(2026, 6, 1))
    assert max(f.due for f in forms) == date(2025, 4, 20)
    assert rows(tuple(f for f in forms if f.missing)) == [
        ("Laboratory check 2 after cycle 1", "2025-04-14", 413)
    ]  # the end of treatment is entered; no cycle 2, no assessment, no follow-up


def test_assessments_stop_after_progression() -> None:
    progressed = dtoc(progression_on=date(2025, 8, 10), assessment_days=())
    forms = expected_forms(progressed, PROTOCOL, date(2026, 1, 1))
    assessments = [f.due.isoformat() for f in forms if f.kind is FormKind.TUMOUR_ASSESSMENT]
    assert assessments == ["2025-05-26", "2025-08-18"]  # the one finding progression, no later


def test_an_entry_counts_for_the_nearest_scheduled_day() -> None:
    # assessments due 05-26 and 08-18 (42 days apart is the midpoint: 07-07); one on
    # 2025-07-08 is the second, early, and the first is missing
    late = dtoc(assessment_days=(date(2025, 7, 8),))
    missing = [f.label for f in missing_forms(late, PROTOCOL, date(2025, 9, 15))]
    assert "Tumour assessment 1" in missing
    assert "Tumour assessment 2" not in missing
    tie = dtoc(assessment_days=(date(2025, 7, 7),))  # 42 days from both: the earlier
    missing = [f.label for f in missing_forms(tie, PROTOCOL, date(2025, 9, 15))]
    assert "Tumour assessment 1" not in missing
    assert "Tumour assessment 2" in missing


def test_cancelled_cycles_and_bad_facts() -> None:
    cancelled = dtoc(cycles=(dtoc().cycles[0], CycleFacts(2, date(2025, 5, 26), cancelled=True)))
    assert [f.cycle_number for f in expected_forms(cancelled, PROTOCOL, date(2025, 6, 30))].count(
        2
    ) == 0
    with pytest.raises(InvalidInputError, match="numbered"):
        expected_forms(
            dtoc(cycles=(CycleFacts(2, date(2025, 5, 26)),)), PROTOCOL, date(2025, 6, 30)
        )
    assert expected_forms(dtoc(), PROTOCOL, date(2025, 3, 2)) == ()  # before randomization
    with pytest.raises(InvalidInputError, match="end_of_treatment_reason"):
        expected_forms(dtoc(end_of_treatment_on=date(2025, 4, 1)), PROTOCOL, date(2025, 6, 30))


# --- properties ------------------------------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> tuple[PatientFacts, date]:
    """A patient randomized in 2025 with up to 6 cycles 8-12 weeks apart (the given ones first,
    given on their planned day), entries on random days, maybe a death or an end of
    treatment, and a day to look from."""
    start = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 365)))
    day, cycles = start + timedelta(days=draw(st.integers(7, 28))), []
    given_count = draw(st.integers(0, 6))
    for number in range(1, draw(st.integers(given_count, 6)) + 1):
        given = number <= given_count
        cycles.append(
            CycleFacts(
                number,
                day,
                day if given else None,
                draw(st.booleans()) and not given,
                tuple(
                    day - timedelta(days=d) for d in draw(st.lists(st.integers(0, 10), max_size=2))
                ),
                draw(st.booleans()),
            )
        )
        day += timedelta(days=draw(st.integers(56, 84)))
    some_days = st.lists(st.integers(1, 1500).map(lambda d: start + timedelta(days=d)), max_size=6)
    end = draw(st.none() | st.integers(1, 900))
    facts = PatientFacts(
        randomized_on=start,
        dosimetry_guided=draw(st.booleans()),
        fixed_cycles=draw(st.none() | st.just(4)),
        cycles=tuple(cycles),
        course_stopped=draw(st.booleans()),
        lab_check_days=tuple(draw(some_days)),
        assessment_days=tuple(draw(some_days)),
        end_of_treatment_on=None if end is None else start + timedelta(days=end),
        end_of_treatment_reason=None
        if end is None
        else draw(st.sampled_from(EndOfTreatmentReason)),
        follow_up_days=tuple(draw(some_days)),
        progression_on=draw(
            st.none() | st.integers(1, 1500).map(lambda d: start + timedelta(days=d))
        ),
        died_on=draw(st.none() | st.integers(0, 1500).map(lambda d: start + timedelta(days=d))),
    )
    return facts, start + timedelta(days=draw(st.integers(0, 2000)))


@settings(max_examples=300, deadline=None)
@given(histories())
def test_nothing_is_expected_after_death_or_the_end_of_participation(
    history: tuple[PatientFacts, date],
) -> None:
    facts, today = history
    ends = participation_ends(facts)
    for form in expected_forms(facts, PROTOCOL, today):
        assert form.due <= today
        assert ends is None or form.due <= ends
        assert facts.died_on is None or form.due <= facts.died_on


def entered(facts: PatientFacts, form: ExpectedForm) -> PatientFacts:
    """`facts` with `form` entered on its due day."""
    if form.kind is FormKind.LAB_CHECK:
        return replace(facts, lab_check_days=(*facts.lab_check_days, form.due))
    if form.kind is FormKind.TUMOUR_ASSESSMENT:
        return replace(facts, assessment_days=(*facts.assessment_days, form.due))
    if form.kind is FormKind.FOLLOW_UP:
        return replace(facts, follow_up_days=(*facts.follow_up_days, form.due))
    if form.kind is FormKind.END_OF_TREATMENT:
        return replace(
            facts,
            end_of_treatment_on=form.due,
            end_of_treatment_reason=EndOfTreatmentReason.DEATH
            if form.due == facts.died_on
            else EndOfTreatmentReason.COMPLETED,
        )
    cycles = list(facts.cycles)
    if form.cycle_number == len(cycles) + 1:  # the next cycle, not planned yet: given
        day = form.due - timedelta(weeks=PROTOCOL.schedule.window_weeks)
        return replace(facts, cycles=(*cycles, CycleFacts(len(cycles) + 1, day, day)))
    cycle = cycles[(form.cycle_number or 0) - 1]
    if form.kind is FormKind.PRE_CYCLE_LABS:
        cycle = replace(cycle, pre_cycle_panel_days=(*cycle.pre_cycle_panel_days, form.due))
    elif form.kind is FormKind.DOSIMETRY:
        cycle = replace(cycle, dosimetry_entered=True)
    else:
        cycle = replace(cycle, given_on=cycle.planned_on)
    cycles[cycle.number - 1] = cycle
    return replace(facts, cycles=tuple(cycles))


@settings(max_examples=300, deadline=None)
@given(histories())
def test_entering_a_missing_form_removes_it(history: tuple[PatientFacts, date]) -> None:
    facts, today = history
    for form in missing_forms(facts, PROTOCOL, today):
        key = (form.kind, form.cycle_number, form.number)
        after = missing_forms(entered(facts, form), PROTOCOL, today)
        assert key not in [(f.kind, f.cycle_number, f.number) for f in after]
