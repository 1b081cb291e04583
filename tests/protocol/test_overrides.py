"""A planned activity other than the planner's, against hand-computed predictions: above the
proposal, past the 30 Gy renal limit (AD; a BED variant), past a marrow limit, or unchecked
for want of dosimetry."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from startrt.protocol.cycle_planning import CycleDose, plan_next_cycle
from startrt.protocol.definition import Protocol
from startrt.protocol.overrides import Exceeded, check_planned_activity
from startrt.validation import InvalidInputError


def given_cycles(*kidney_gy: float, **doses: float) -> tuple[CycleDose, ...]:
    return tuple(CycleDose(activity_gbq=7.5, kidney_dose_gy=d, **doses) for d in kidney_gy)


def test_at_30_25_gy_any_activity_exceeds_the_30_gy_limit(protocol: Protocol) -> None:
    # 15 + 15.25 = 30.25 Gy already; 15.25 / 7.5 = 2.03333 Gy/GBq; the planner stops
    plan = plan_next_cycle("dTOC", given_cycles(15.0, 15.25), protocol)
    assert (plan.action, plan.activity_gbq, plan.cumulative_kidney_gy) == ("stop", 0.0, 30.25)
    # the physicist's 15 GBq: 30.25 + 2.03333 x 15 = 60.75 Gy (to the mGy)
    check = check_planned_activity(plan, 15.0, protocol)
    assert check.deviation
    assert check.exceeded == (Exceeded.ABOVE_PROPOSAL, Exceeded.KIDNEY_LIMIT)
    assert check.predicted_cumulative_kidney_gy == 60.75
    assert "15 GBq is above the planner's 0 GBq (stop)" in check.message
    assert "60.75 Gy, exceeds the limit of 30 Gy" in check.message
    # even 0.1 GBq: 30.25 + 0.203333 = 30.453 Gy
    smallest = check_planned_activity(plan, 0.1, protocol)
    assert Exceeded.KIDNEY_LIMIT in smallest.exceeded
    assert smallest.predicted_cumulative_kidney_gy == 30.453
    assert check.kind == "activity_check"
    assert check.inputs["plan"] == plan.model_dump(mode="json")


def test_at_20_gy_with_2_gy_per_gbq_a_full_cycle_predicts_35_gy(protocol: Protocol) -> None:
    # 5 + 15 = 20 Gy; 15 / 7.5 = 2 Gy/GBq; room 10 Gy -> the planner reduces to 5.0 GBq
    plan = plan_next_cycle("dTOC", given_cycles(5.0, 15.0), protocol)
    assert (plan.action, plan.activity_gbq) == ("reduced", 5.0)
    full = check_planned_activity(plan, 7.5, protocol)  # 20 + 2 x 7.5 = 35 > 30
    assert full.exceeded == (Exceeded.ABOVE_PROPOSAL, Exceeded.KIDNEY_LIMIT)
    assert full.predicted_cumulative_kidney_gy == 35.0
    at_limit = check_planned_activity(plan, 5.0, protocol)  # 20 + 10 = 30: at the limit
    assert (at_limit.deviation, at_limit.predicted_cumulative_kidney_gy) == (False, 30.0)
    assert at_limit.message == "5 GBq is within the planner's proposal and the dose limits"
    lower = check_planned_activity(plan, 4.0, protocol)  # 28 Gy
    assert (lower.deviation, lower.predicted_cumulative_kidney_gy) == (False, 28.0)
    just_above = check_planned_activity(plan, 5.1, protocol)  # 30.2 Gy
    assert just_above.exceeded == (Exceeded.ABOVE_PROPOSAL, Exceeded.KIDNEY_LIMIT)


def test_above_a_full_proposal_within_the_limit_is_a_deviation_all_the_same(
    protocol: Protocol,
) -> None:
    # 7.5 Gy after cycle 1 at 1 Gy/GBq: 8 GBq predicts 15.5 Gy, under the limit
    plan = plan_next_cycle("dTOC", given_cycles(7.5), protocol)
    check = check_planned_activity(plan, 8.0, protocol)
    assert check.exceeded == (Exceeded.ABOVE_PROPOSAL,)
    assert check.predicted_cumulative_kidney_gy == 15.5
    # before any cycle nothing was measured: only the proposal counts
    first = plan_next_cycle("dTOC", (), protocol)
    assert not check_planned_activity(first, 7.5, protocol).deviation
    assert check_planned_activity(first, 8.0, protocol).exceeded == (Exceeded.ABOVE_PROPOSAL,)


def test_without_a_kidney_gy_per_gbq_the_limit_cannot_be_checked(protocol: Protocol) -> None:
    # the standard arm's cycles without dosimetry: 4 cycles regardless, no Gy/GBq
    undosed = (CycleDose(activity_gbq=7.5), CycleDose(activity_gbq=7.5))
    standard = plan_next_cycle("standard", undosed, protocol)
    assert (standard.action, standard.kidney_gy_per_gbq) == ("full", None)
    check = check_planned_activity(standard, 5.0, protocol)
    assert check.exceeded == (Exceeded.DOSIMETRY_MISSING,)
    assert check.predicted_cumulative_kidney_gy is None
    assert "dosimetry missing" not in check.message  # says what cannot be checked instead
    assert "kidney AD limit cannot be checked" in check.message
    # a personalized plan whose latest dosimetry is missing (no Gy/GBq)
    plan = plan_next_cycle("dTOC", given_cycles(5.0, 15.0), protocol)
    missing = plan.model_copy(update={"kidney_gy_per_gbq": None})
    assert check_planned_activity(missing, 1.0, protocol).exceeded == (Exceeded.DOSIMETRY_MISSING,)


def test_a_marrow_limit_is_checked_too(amend: Callable[..., Protocol]) -> None:
    # marrow limit 2 Gy; 0.75 + 0.75 = 1.5 Gy marrow at 0.1 Gy/GBq -> room 5 GBq; kidney
    # 3 + 3 = 6 Gy at 0.4 Gy/GBq leaves 60 GBq: the marrow limits, 5.0 GBq
    marrow = amend("marrow_limit", limit_gy=2.0)
    plan = plan_next_cycle("dTOC", given_cycles(3.0, 3.0, marrow_dose_gy=0.75), marrow)
    assert (plan.action, plan.activity_gbq, plan.limiting) == ("reduced", 5.0, "marrow")
    over = check_planned_activity(plan, 6.0, marrow)  # 1.5 + 0.6 = 2.1 Gy > 2
    assert over.exceeded == (Exceeded.ABOVE_PROPOSAL, Exceeded.MARROW_LIMIT)
    assert over.predicted_cumulative_marrow_gy == 2.1
    assert over.predicted_cumulative_kidney_gy == 8.4  # 6 + 0.4 x 6
    assert not check_planned_activity(plan, 5.0, marrow).deviation  # 2.0 Gy: at the limit
    unmeasured = plan_next_cycle("standard", given_cycles(3.0, 3.0), marrow)
    assert check_planned_activity(unmeasured, 7.5, marrow).exceeded == (Exceeded.DOSIMETRY_MISSING,)


def test_a_bed_limit_reads_the_predicted_cumulative_bed(amend: Callable[..., Protocol]) -> None:
    # alpha/beta 2.6 Gy, repair half-time 2.8 h, effective half-life 50 h: mono-exponential
    # Lea-Catcheside G = 2.8 / (50 + 2.8) = 0.0530303; BED = D (1 + D G / 2.6).
    # Two cycles of 10 Gy: 2 x 12.03963 = 24.07925 Gy BED; 1.33333 Gy/GBq.
    bed = amend("renal_limit", quantity="BED", limit_gy=40.0)
    cycles = given_cycles(10.0, 10.0, kidney_effective_half_life_h=50.0)
    plan = plan_next_cycle("dTOC", cycles, bed)
    assert plan.action == "full"  # 7.5 GBq: 10 Gy, 12.03963 -> 36.119 <= 40
    # 10 GBq: D = 13.3333 Gy, BED 13.3333 x (1 + 13.3333 x 0.0530303 / 2.6) = 16.9593
    check = check_planned_activity(plan, 10.0, bed)
    assert check.exceeded == (Exceeded.ABOVE_PROPOSAL, Exceeded.KIDNEY_LIMIT)
    assert check.predicted_cumulative_kidney_bed_gy == pytest.approx(41.039, abs=0.002)
    assert check.predicted_cumulative_kidney_gy == pytest.approx(33.333, abs=0.001)
    assert "Gy BED, exceeds the limit of 40 Gy BED" in check.message


@pytest.mark.parametrize("activity", [0.0, -1.0])
def test_an_activity_must_be_positive(protocol: Protocol, activity: float) -> None:
    plan = plan_next_cycle("dTOC", (), protocol)
    with pytest.raises(InvalidInputError, match="activity_gbq"):
        check_planned_activity(plan, activity, protocol)
