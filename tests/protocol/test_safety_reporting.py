"""SAE reporting rules (protocol/safety_reporting.py) against values worked out by hand from
ICH E2A, Regulation (EU) 536/2014 Art. 41(4) and the START-01 v1.0 file's [safety_reporting]."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from startrt.protocol.definition import ProtocolFileError, default_protocol, parse_protocol
from startrt.protocol.safety_reporting import (
    SafetyReporting,
    assess_susar,
    check_awareness,
    expedited_timeline,
    follow_up_due,
    initial_report_due,
    report_clock,
)
from startrt.protocol.vocabulary import (
    AdverseEventOutcome,
    Attribution,
    InvestigationalProduct,
    SeriousnessCriterion,
)
from startrt.validation import InvalidInputError
from support.protocols import amended_text, shipped_text

STOCKHOLM = ZoneInfo("Europe/Stockholm")
PRRT, CAPECITABINE = InvestigationalProduct.PRRT, InvestigationalProduct.CAPECITABINE


@pytest.fixture
def rules() -> SafetyReporting:
    section = default_protocol().safety_reporting
    assert section is not None
    return section


def test_the_file_states_the_regulatory_numbers(rules: SafetyReporting) -> None:
    assert rules.initial_report_hours == 24  # Reg. 536/2014 Art. 41(4)
    assert rules.fatal_or_life_threatening_susar_days == 7  # ICH E2A III.B.1
    assert rules.fatal_or_life_threatening_completion_days == 8
    assert rules.other_susar_days == 15  # ICH E2A III.B.2
    assert rules.suspected_attributions == (
        Attribution.POSSIBLE,
        Attribution.PROBABLE,
        Attribution.DEFINITE,
    )


def test_initial_report_is_due_24_elapsed_hours_after_awareness(rules: SafetyReporting) -> None:
    aware = datetime(2026, 3, 2, 14, 30, tzinfo=STOCKHOLM)  # 13:30 UTC
    assert initial_report_due(aware, rules) == datetime(2026, 3, 3, 13, 30, tzinfo=UTC)


def test_the_clock_counts_elapsed_hours_across_daylight_saving(rules: SafetyReporting) -> None:
    # Sweden springs forward on 2026-03-29 at 02:00 CET: 10:00 CET on the 28th plus 24 h is
    # 11:00 CEST on the 29th (wall clock +25 h), i.e. 09:00 UTC on the 29th.
    aware = datetime(2026, 3, 28, 10, 0, tzinfo=STOCKHOLM)
    due = initial_report_due(aware, rules)
    assert due == datetime(2026, 3, 29, 9, 0, tzinfo=UTC)
    assert due.astimezone(STOCKHOLM).hour == 11


def test_report_at_the_deadline_is_on_time_one_second_later_is_late() -> None:
    due = datetime(2026, 3, 3, 13, 30, tzinfo=UTC)
    at_deadline = report_clock(due, due.astimezone(STOCKHOLM), due)
    assert (at_deadline.on_time, at_deadline.hours_late) == (True, 0)
    second_late = report_clock(due, due + timedelta(seconds=1), due)
    assert (second_late.on_time, second_late.hours_late) == (False, 1)  # a started hour
    late = report_clock(due, due + timedelta(hours=26, minutes=30), due)
    assert (late.on_time, late.hours_late) == (False, 27)


def test_unsubmitted_report_is_overdue_only_after_the_deadline() -> None:
    due = datetime(2026, 3, 3, 13, 30, tzinfo=UTC)
    assert not report_clock(due, None, due).overdue
    overdue = report_clock(due, None, due + timedelta(hours=5))
    assert overdue.overdue
    assert overdue.on_time is None
    assert overdue.hours_late == 5


def test_naive_times_are_refused(rules: SafetyReporting) -> None:
    with pytest.raises(InvalidInputError) as refused:
        initial_report_due(datetime(2026, 3, 2, 14, 30), rules)
    assert refused.value.field == "aware_at"


ZONES = st.sampled_from(
    [
        UTC,
        STOCKHOLM,
        ZoneInfo("America/New_York"),
        ZoneInfo("Asia/Kolkata"),
        ZoneInfo("Pacific/Chatham"),
    ]
)


@given(
    aware_utc=st.datetimes(
        min_value=datetime(2022, 11, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
    ),
    aware_zone=ZONES,
    report_zone=ZONES,
    extra_seconds=st.integers(min_value=1, max_value=10 * 24 * 3600),
)
def test_boundary_in_any_time_zone(
    aware_utc: datetime, aware_zone: ZoneInfo, report_zone: ZoneInfo, extra_seconds: int
) -> None:
    rules = default_protocol().safety_reporting
    assert rules is not None
    aware = aware_utc.astimezone(aware_zone)
    due = initial_report_due(aware, rules)
    assert due - aware_utc == timedelta(hours=24)  # elapsed, whatever the zones
    exactly = report_clock(due, (aware_utc + timedelta(hours=24)).astimezone(report_zone), due)
    assert exactly.on_time
    assert exactly.hours_late == 0
    late_at = (aware_utc + timedelta(hours=24, seconds=extra_seconds)).astimezone(report_zone)
    late = report_clock(due, late_at, late_at)
    assert late.on_time is False
    assert late.hours_late == -(-extra_seconds // 3600)  # started hours


def test_awareness_in_the_future_or_before_onset_is_refused() -> None:
    now = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    check_awareness(datetime(2026, 3, 2, 23, 30, tzinfo=UTC), date(2026, 3, 3), STOCKHOLM, now)
    # 23:30 UTC on 2 March is 00:30 CET on 3 March: the onset day at the site, accepted above
    with pytest.raises(InvalidInputError, match="future"):
        check_awareness(now + timedelta(seconds=1), date(2026, 3, 1), STOCKHOLM, now)
    with pytest.raises(InvalidInputError, match="onset date 2026-03-03"):
        check_awareness(
            datetime(2026, 3, 2, 22, 30, tzinfo=UTC), date(2026, 3, 3), STOCKHOLM, now
        )  # 23:30 CET on 2 March


def test_follow_up_due_seven_days_after_the_latest_report_until_the_outcome_is_final(
    rules: SafetyReporting,
) -> None:
    latest = datetime(2026, 3, 3, 13, 30, tzinfo=UTC)
    due = follow_up_due(latest, AdverseEventOutcome.RECOVERING, rules)
    assert due == datetime(2026, 3, 10, 13, 30, tzinfo=UTC)
    for final in ("recovered", "recovered_with_sequelae", "fatal"):
        assert follow_up_due(latest, AdverseEventOutcome(final), rules) is None


def _susar(rules: SafetyReporting, term: str, grade: int, prrt: str, cap: str, **kw: object):
    return assess_susar(
        serious=bool(kw.get("serious", True)),
        term=term,
        grade=grade,
        criteria=list(kw.get("criteria", [SeriousnessCriterion.HOSPITALISATION])),  # type: ignore[call-overload]
        attributions={PRRT: Attribution(prrt), CAPECITABINE: Attribution(cap)},
        rules=rules,
        protocol="START-01 v1.0",
    )


def test_expected_reaction_is_no_susar(rules: SafetyReporting) -> None:
    # Platelet count decreased is in the Lutathera SmPC 4.8 list, grade 4 <= 4
    decision = _susar(rules, "Platelet count decreased", 4, "probable", "not_applicable")
    assert not decision.susar
    assert decision.category is None
    prrt = decision.products[0]
    assert (prrt.product, prrt.suspected, prrt.expected) == (PRRT, True, True)


def test_fatal_expected_term_is_unexpected_by_severity(rules: SafetyReporting) -> None:
    decision = _susar(
        rules,
        "Acute kidney injury",
        5,
        "possible",
        "not_applicable",
        criteria=[SeriousnessCriterion.DEATH],
    )
    assert decision.susar
    assert decision.category == "fatal_or_life_threatening"


def test_unlisted_suspected_term_is_a_susar_of_that_product_only(rules: SafetyReporting) -> None:
    # Febrile neutropenia: in neither list; suspected for capecitabine, unlikely for PRRT
    decision = _susar(rules, "Febrile neutropenia", 3, "unlikely", "definite")
    assert decision.susar
    assert decision.category == "other"
    by_product = {p.product: p for p in decision.products}
    assert not by_product[PRRT].susar
    assert by_product[CAPECITABINE].susar
    assert decision.inputs["attributions"] == {"prrt": "unlikely", "capecitabine": "definite"}
    assert decision.kind == "susar_assessment"
    assert decision.protocol == "START-01 v1.0"


@pytest.mark.parametrize(
    ("prrt", "susar"),
    [
        ("unrelated", False),
        ("unlikely", False),
        ("possible", True),
        ("probable", True),
        ("definite", True),
    ],
)
def test_reasonable_possibility_is_possible_or_more(
    rules: SafetyReporting, prrt: str, susar: bool
) -> None:
    assert _susar(rules, "Febrile neutropenia", 3, prrt, "not_applicable").susar is susar


def test_not_serious_is_never_a_susar(rules: SafetyReporting) -> None:
    decision = _susar(rules, "Febrile neutropenia", 3, "definite", "definite", serious=False)
    assert not decision.susar


def test_life_threatening_susar_timeline_7_plus_8_days(rules: SafetyReporting) -> None:
    timeline = expedited_timeline("fatal_or_life_threatening", date(2026, 3, 3), rules)
    assert (timeline.report_due, timeline.completion_due) == (date(2026, 3, 10), date(2026, 3, 18))
    other = expedited_timeline("other", date(2026, 3, 3), rules)
    assert (other.report_due, other.completion_due) == (date(2026, 3, 18), None)


def test_a_misspelt_rsi_term_or_a_missing_product_is_refused() -> None:
    misspelt = amended_text(
        ('"Anemia", "Platelet count decreased"', '"Anaemia", "Platelet count decreased"')
    )
    with pytest.raises(ProtocolFileError, match="Anaemia"):
        parse_protocol(misspelt, "misspelt.toml")
    start = shipped_text().index("[safety_reporting.reference_safety_information.capecitabine]")
    with pytest.raises(ProtocolFileError, match="missing \\['capecitabine'\\]"):
        parse_protocol(shipped_text()[:start], "one-product.toml")
