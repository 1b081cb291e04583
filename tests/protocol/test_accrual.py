"""The accrual plan and accrual against it (protocol/accrual.py), and the enrolment counts
(protocol/enrolment.py), against values worked out by hand.

Days: a month is 365.25 / 12 = 30.4375 days, so 48 months are 1461 days, 16 months 487 and
32 months 974; from 2022-11-01, 731 days reach 2024-11-01 and 365 days 2023-11-01."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from startrt.protocol.accrual import AccrualPlan, accrual_status
from startrt.protocol.definition import (
    PROTOCOL_FOLDER,
    Protocol,
    ProtocolFileError,
    parse_protocol,
)
from startrt.protocol.eligibility import EligibilityDecision, assess_eligibility
from startrt.protocol.enrolment import randomized_by_stratum, screen_failures
from startrt.protocol.screening import ScreeningRecord
from startrt.validation import InvalidInputError
from support.records import eligible_screening

START = date(2022, 11, 1)


def plan(**changes: object) -> AccrualPlan:
    values: dict[str, object] = {"target_patients": 300, "start_date": START, "months": 48}
    return AccrualPlan.model_validate({**values, **changes})


def day(days: int) -> date:
    return START + timedelta(days=days)


def test_the_shipped_plan(protocol: Protocol) -> None:
    """PROTOCOL.md: 300 patients from 2022-11-01; 48 months (the simulation's accrual_months);
    no per-site target: 75 at each of the four sites."""
    accrual = protocol.accrual
    assert accrual is not None
    assert (accrual.target_patients, accrual.start_date, accrual.months) == (300, START, 48)
    assert accrual.end_date == date(2026, 11, 1)
    assert [accrual.site_target(site, protocol.sites) for site in protocol.sites] == [75] * 4


def test_uniform_accrual() -> None:
    uniform = plan()
    assert uniform.planned(START - timedelta(days=3)) == 0
    assert uniform.planned(START) == 0
    assert uniform.planned(day(731)) == pytest.approx(219300 / 1461)  # 150.10
    assert uniform.planned(day(731), target=75) == pytest.approx(54825 / 1461)  # 37.53
    assert uniform.planned(day(1461)) == 300
    assert uniform.planned(day(2000)) == 300
    assert uniform.curve() == ((START, 0.0), (date(2026, 11, 1), 300.0))


def test_ramp_up() -> None:
    """R = 16 months (487 days): r = 300 / (1461 - 243.5) = 300 / 1217.5 a day; by day 487
    r x 487² / 974 = 300 x 243.5 / 1217.5 = 60; by day 974 r x (974 - 243.5) = 180.
    R = 32 months (974 days): r = 300 / 974; by day 487 (half the ramp) a quarter of the
    ramp's 150, 37.5; by day 974 150."""
    sixteen = plan(ramp_up_months=16)
    assert sixteen.planned(day(487)) == pytest.approx(60)
    assert sixteen.planned(day(974)) == pytest.approx(180)
    assert sixteen.planned(day(1461)) == 300
    thirty_two = plan(ramp_up_months=32)
    assert thirty_two.planned(day(487)) == pytest.approx(37.5)
    assert thirty_two.planned(day(974)) == pytest.approx(150)
    assert thirty_two.planned(day(487), target=100) == pytest.approx(12.5)
    curve = thirty_two.curve()
    assert curve[0] == (START, 0.0)
    assert curve[-1] == (date(2026, 11, 1), 300.0)
    assert len(curve) == 974 // 30 + 3  # every 30 days of the ramp, its end, the plan's end


def test_status_and_projection() -> None:
    """73 randomized in the 365 days to 2023-11-01: 0.2 a day (6.0875 a month); 227 left take
    1135 days: 2026-12-10. Planned 300 x 365 / 1461 = 74.95, so 97.4 % of the plan."""
    dates = [day(5 * k) for k in range(73)]  # days 0, 5, ..., 360
    status = accrual_status(plan(), [*dates, day(400)], day(365))
    assert status.randomized == 73  # day 400 is after the day read
    assert status.planned == pytest.approx(109500 / 1461)
    assert status.percent_of_plan == pytest.approx(73 / (109500 / 1461) * 100)
    assert status.rate_per_month == pytest.approx(6.0875)
    assert status.projected_completion == date(2026, 12, 10)
    assert not status.reached


def test_a_reached_target_and_none_yet() -> None:
    reached = accrual_status(plan(), [day(9), day(3), day(7), day(12)], day(20), target=3)
    assert reached.reached
    assert reached.projected_completion == day(9)  # the third randomization
    nobody = accrual_status(plan(), [], day(20), target=75)
    assert (nobody.rate_per_month, nobody.projected_completion) == (None, None)
    assert nobody.planned == pytest.approx(75 * 20 / 1461)
    assert accrual_status(plan(), [], START).percent_of_plan is None


def test_refused_dates() -> None:
    with pytest.raises(InvalidInputError, match="as_of"):
        accrual_status(plan(), [], START - timedelta(days=1))
    with pytest.raises(InvalidInputError, match="randomized_on"):
        accrual_status(plan(), [START - timedelta(days=1)], day(10))


def test_site_targets() -> None:
    own = plan(site_targets={"Lund": 200, "Uppsala": 100})
    assert own.site_target("Uppsala", ["Lund", "Uppsala"]) == 100
    with pytest.raises(InvalidInputError, match="site"):
        own.site_target("Malmö", ["Lund", "Uppsala"])
    with pytest.raises(ValidationError, match="add up to target_patients"):
        plan(site_targets={"Lund": 200, "Uppsala": 99})
    with pytest.raises(ValidationError, match="shorter than months"):
        plan(ramp_up_months=48)


SHIPPED = PROTOCOL_FOLDER.joinpath("START-01_v1.0.toml").read_text("utf-8")


@pytest.mark.parametrize(
    ("added", "message"),
    [
        ("site_targets = { Lund = 150, Uppsala = 150 }", "must name each of the sites"),
        ("site_targets = { Gothenburg = 75, Lund = 75, Stockholm = 75, Uppsala = 70 }", "add up"),
    ],
)
def test_protocol_file_refuses_wrong_site_targets(added: str, message: str) -> None:
    text = SHIPPED.replace("[accrual]\n", f"[accrual]\n{added}\n", 1)
    with pytest.raises(ProtocolFileError, match=message):
        parse_protocol(text, "amended.toml")


def test_a_file_without_a_plan_has_none() -> None:
    head, _, tail = SHIPPED.partition("[accrual]\n")
    rest = tail.split("\n[", 1)[1] if "\n[" in tail else ""
    text = head + ("[" + rest if rest else "")
    assert parse_protocol(text, "no-plan.toml").accrual is None


# --- enrolment counts --------------------------------------------------------------------------


def decision(protocol: Protocol, **changes: object) -> EligibilityDecision:
    return assess_eligibility(
        ScreeningRecord.model_validate(eligible_screening(**changes)), protocol
    )


def test_screen_failures_count_each_failing_criterion(protocol: Protocol) -> None:
    decisions = [
        decision(protocol, measured_gfr_ml_min_173=40, prior_prrt=True),  # two criteria
        decision(protocol, prior_prrt=True),
        decision(protocol, ecog=2),
        decision(protocol),  # eligible: not counted
        decision(protocol, platelets_10e9_l=None),  # undecided: not counted
    ]
    failures = screen_failures(decisions)
    assert failures.patients == 3
    assert [(r.criterion_id, r.reason, r.patients) for r in failures.reasons] == [
        ("EX02", "Earlier PRRT (exclusion)", 2),
        ("IN03", "ECOG (inclusion: ≤ 1)", 1),
        ("IN12", "GFR (inclusion: > 50)", 1),
    ]


def test_randomized_by_stratum(protocol: Protocol) -> None:
    labels = ["site=Lund;fdg=positive", "site=Lund;fdg=positive", "site=Uppsala;fdg=negative"]
    rows = randomized_by_stratum(protocol, ["Lund", "Uppsala"], labels)
    assert [(r.text, r.within_site, r.randomized) for r in rows] == [
        ("Lund · FDG-PET negative", "FDG-PET negative", 0),
        ("Lund · FDG-PET positive", "FDG-PET positive", 2),
        ("Uppsala · FDG-PET negative", "FDG-PET negative", 1),
        ("Uppsala · FDG-PET positive", "FDG-PET positive", 0),
    ]
