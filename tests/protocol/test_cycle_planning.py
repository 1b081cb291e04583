"""Next-cycle planning against hand-computed plans (30 Gy AD limit, BED and marrow variants)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from startrt.protocol.course import CycleDose
from startrt.protocol.cycle_planning import plan_next_cycle
from startrt.protocol.definition import Protocol


def given_cycles(*kidney_gy: float, activity_gbq: float = 7.5) -> tuple[CycleDose, ...]:
    return tuple(CycleDose(activity_gbq=activity_gbq, kidney_dose_gy=d) for d in kidney_gy)


def test_first_cycle_is_full_before_any_dosimetry(protocol: Protocol) -> None:
    plan = plan_next_cycle("dTOC", (), protocol)
    assert (plan.action, plan.activity_gbq, plan.next_cycle) == ("full", 7.5, 1)
    assert plan.predicted_cumulative_kidney_gy is None
    assert plan.protocol == "START-01 v1.0"


def test_full_cycle_reaching_exactly_the_limit_is_allowed(protocol: Protocol) -> None:
    # 3 x 7.5 Gy = 22.5 Gy; latest 7.5 Gy / 7.5 GBq = 1.0 Gy/GBq; 22.5 + 7.5 = 30.0 <= 30
    plan = plan_next_cycle("dTOC", given_cycles(7.5, 7.5, 7.5), protocol)
    assert plan.action == "full"
    assert plan.activity_gbq == 7.5
    assert plan.predicted_cumulative_kidney_gy == 30.0
    assert plan.cumulative_kidney_gy == 22.5


def test_reduced_cycle_keeps_cumulative_dose_under_the_limit(protocol: Protocol) -> None:
    # 7.5 + 7.5 + 7.6 = 22.6 Gy; 7.6 / 7.5 = 1.01333 Gy/GBq; full would give 30.2 Gy.
    # (30 - 22.6) / 1.01333 = 7.3026 GBq -> rounded down to 7.3 GBq -> 22.6 + 7.3973 = 29.9973 Gy
    plan = plan_next_cycle("CAP-dTOC", given_cycles(7.5, 7.5, 7.6), protocol)
    assert plan.action == "reduced"
    assert plan.activity_gbq == pytest.approx(7.3)
    assert plan.predicted_cumulative_kidney_gy == pytest.approx(29.9973, abs=1e-4)
    assert plan.predicted_cumulative_kidney_gy_full_cycle == pytest.approx(30.2)
    assert plan.limiting == "kidney"
    assert "7.3 GBq" in plan.reason


def test_an_expected_rise_in_gy_per_gbq_is_planned_for(
    protocol: Protocol, amend: Callable[..., Protocol]
) -> None:
    # latest 6.0 Gy / 7.5 GBq = 0.8 Gy/GBq, predicted x 1.08 = 0.864 Gy/GBq; cumulative 24 Gy:
    # (30 - 24) / 0.864 = 6.944 GBq -> 6.9 GBq -> 24 + 6.9 x 0.864 = 29.9616 Gy
    # (without the rise, 0.8 Gy/GBq: 24 + 7.5 x 0.8 = 30.0, a full cycle)
    rising = amend("renal_limit", kidney_gy_per_gbq_rise_per_cycle=0.08)
    plan = plan_next_cycle("dTOC", given_cycles(6.0, 6.0, 6.0, 6.0), rising)
    assert (plan.action, plan.activity_gbq) == ("reduced", pytest.approx(6.9))
    assert plan.kidney_gy_per_gbq == pytest.approx(0.864)
    assert plan.predicted_cumulative_kidney_gy == pytest.approx(29.9616, abs=1e-4)
    assert plan_next_cycle("dTOC", given_cycles(6.0, 6.0, 6.0, 6.0), protocol).action == "full"
    with pytest.raises(ValueError, match="kidney_gy_per_gbq_rise_per_cycle"):
        amend("renal_limit", kidney_gy_per_gbq_rise_per_cycle=-0.1)


def test_stop_when_room_is_below_the_minimum_activity(protocol: Protocol) -> None:
    # 25 + 4.5 = 29.5 Gy; 4.5 / 7.5 = 0.6 Gy/GBq; 0.5 Gy left -> 0.833 GBq -> 0.8 < 1.0 minimum
    plan = plan_next_cycle("dTOC", given_cycles(25.0, 4.5), protocol)
    assert plan.action == "stop"
    assert plan.activity_gbq == 0.0
    assert plan.predicted_cumulative_kidney_gy == pytest.approx(29.5)
    assert "minimum 1 GBq" in plan.reason


def test_minimum_activity_itself_is_still_given(protocol: Protocol) -> None:
    # 29 + 0 ... room 1.0 Gy at 1.0 Gy/GBq -> exactly 1.0 GBq = the minimum -> reduced
    plan = plan_next_cycle("dTOC", given_cycles(21.5, 7.5), protocol)
    assert (plan.action, plan.activity_gbq) == ("reduced", 1.0)
    assert plan.predicted_cumulative_kidney_gy == pytest.approx(30.0)


@pytest.mark.parametrize("doses", [(22.5, 7.5), (25.0, 5.4)])
def test_stop_at_or_over_the_limit(protocol: Protocol, doses: tuple[float, ...]) -> None:
    plan = plan_next_cycle("dTOC", given_cycles(*doses), protocol)
    assert plan.action == "stop"


def test_standard_arm_gives_four_cycles_regardless_of_dose(protocol: Protocol) -> None:
    high = given_cycles(9.0, 9.0, 9.0)  # 27 Gy; a 4th would give 36 Gy
    plan = plan_next_cycle("standard", high, protocol)
    assert (plan.action, plan.activity_gbq) == ("full", 7.5)
    assert plan.predicted_cumulative_kidney_gy == pytest.approx(36.0)
    assert any("regardless of dose" in warning for warning in plan.warnings)
    done = plan_next_cycle("standard", (*high, *given_cycles(9.0)), protocol)
    assert (done.action, done.limiting) == ("stop", "cycles")


def test_standard_arm_needs_no_dosimetry(protocol: Protocol) -> None:
    cycles = (CycleDose(activity_gbq=7.5), CycleDose(activity_gbq=7.5))
    plan = plan_next_cycle("standard", cycles, protocol)
    assert plan.action == "full"
    assert plan.cumulative_kidney_gy is None


def test_guided_arm_needs_every_dose_to_plan(protocol: Protocol) -> None:
    cycles = (CycleDose(activity_gbq=7.5, kidney_dose_gy=3.0), CycleDose(activity_gbq=7.5))
    plan = plan_next_cycle("dTOC", cycles, protocol)
    assert (plan.action, plan.activity_gbq, plan.limiting) == ("dosimetry needed", 0.0, "dosimetry")
    assert "cycle 2: no mean kidney dose" in plan.reason


@pytest.mark.parametrize(
    "doses",
    [
        (31.0, 0.0),  # the case: 0 Gy/GBq made the allowed activity infinite
        (12.0, 12.0, 9.0, 0.0),  # 33 Gy already, latest 0: was planned full
        (3.0, 0.1),  # 0.013 Gy/GBq: under the plausible 0.02
        (3.0, 40.0),  # 5.3 Gy/GBq: over the plausible 5
    ],
)
def test_an_implausible_kidney_dose_gives_no_plan(
    protocol: Protocol, doses: tuple[float, ...]
) -> None:
    plan = plan_next_cycle("dTOC", given_cycles(*doses), protocol)
    assert (plan.action, plan.activity_gbq) == ("dosimetry needed", 0.0)
    assert "outside the plausible 0.02-5 Gy/GBq" in plan.reason


def test_a_full_cycle_landing_exactly_on_the_limit_is_full(protocol: Protocol) -> None:
    # 18.7 + 5.65 = 24.35 Gy; 5.65 / 7.5 Gy/GBq x 7.5 GBq = 5.65 Gy -> exactly 30 Gy
    # (in floating point (30 - 24.35) / (5.65 / 7.5) = 7.4999999999999970 GBq: was "reduced")
    plan = plan_next_cycle("dTOC", given_cycles(18.7, 5.65), protocol)
    assert (plan.action, plan.activity_gbq, plan.limiting) == ("full", 7.5, None)
    assert plan.predicted_cumulative_kidney_gy == 30.0
    # 0.01 Gy more and the full cycle crosses: (30 - 24.36) / 0.75467 = 7.473 -> 7.4 GBq
    assert plan_next_cycle("dTOC", given_cycles(18.7, 5.66), protocol).activity_gbq == 7.4


def test_worse_kidney_is_reported_and_can_govern(
    protocol: Protocol, amend: Callable[..., Protocol]
) -> None:
    cycles = tuple(
        CycleDose(activity_gbq=7.5, left_kidney_dose_gy=6.0, right_kidney_dose_gy=8.0)
        for _ in range(3)
    )
    # mean rule: 3 x 7 = 21 Gy, 7/7.5 Gy/GBq -> full gives 28 Gy
    plan = plan_next_cycle("dTOC", cycles, protocol)
    assert (plan.action, plan.cumulative_kidney_gy) == ("full", 21.0)
    assert (plan.worse_kidney, plan.worse_kidney_cumulative_gy) == ("right", 24.0)
    # worse-kidney rule: 24 Gy, 8/7.5 = 1.0667 Gy/GBq: 6 Gy room -> 5.625 GBq -> 5.6 GBq
    worse = amend("renal_limit", kidney="worse")
    plan = plan_next_cycle("dTOC", cycles, worse)
    assert (plan.action, plan.activity_gbq) == ("reduced", pytest.approx(5.6))
    assert plan.cumulative_kidney_gy == plan.worse_kidney_cumulative_gy == 24.0


def test_the_worse_kidney_limit_reads_each_kidney_total(amend: Callable[..., Protocol]) -> None:
    # left 8 + 4 = 12 Gy, right 4 + 8 = 12 Gy (the sum of cycle maxima, 16 Gy, is no kidney's);
    # next: left 4/7.5, right 8/7.5 Gy/GBq; right limits: 12 + 8 = 20 Gy after a full cycle
    cycles = (
        CycleDose(activity_gbq=7.5, left_kidney_dose_gy=8.0, right_kidney_dose_gy=4.0),
        CycleDose(activity_gbq=7.5, left_kidney_dose_gy=4.0, right_kidney_dose_gy=8.0),
    )
    plan = plan_next_cycle("dTOC", cycles, amend("renal_limit", kidney="worse"))
    assert (plan.cumulative_kidney_gy, plan.worse_kidney_cumulative_gy) == (12.0, 12.0)
    assert plan.predicted_cumulative_kidney_gy == 20.0


def test_bed_limit_by_hand(protocol: Protocol, amend: Callable[..., Protocol]) -> None:
    # factor = G / (a/b) with G = (ln2/50) / (ln2/2.8 + ln2/50) = 0.0530303 -> 0.0203963 /Gy
    # BED of 5 Gy = 5 * (1 + 5 * 0.0203963) = 5.509907 Gy; 7 cycles: 38.56935 Gy BED
    # room 40 - 38.56935 = 1.43065 Gy BED -> D = 2*1.43065/(1+sqrt(1+4*0.0203963*1.43065))
    # = 1.391178 Gy; per GBq 5/7.5 = 0.666667 -> 2.0868 GBq -> 2.0 GBq
    bed = amend("renal_limit", quantity="BED", limit_gy=40.0)
    cycles = tuple(
        CycleDose(activity_gbq=7.5, kidney_dose_gy=5.0, kidney_effective_half_life_h=50.0)
        for _ in range(7)
    )
    plan = plan_next_cycle("dTOC", cycles, bed)
    assert (plan.action, plan.activity_gbq) == ("reduced", pytest.approx(2.0))
    assert plan.cumulative_kidney_bed_gy == pytest.approx(38.56935, abs=1e-4)
    # 2.0 GBq -> 1.33333 Gy -> BED 1.33333 * (1 + 1.33333 * 0.0203963) = 1.369593
    assert plan.predicted_cumulative_kidney_bed_gy == pytest.approx(39.93894, abs=1e-4)
    # six cycles: room 6.94056 Gy BED -> 6.16528 Gy -> 9.248 GBq >= 7.5: full
    assert plan_next_cycle("dTOC", cycles[:6], bed).action == "full"


def test_bed_limit_needs_half_lives(protocol: Protocol, amend: Callable[..., Protocol]) -> None:
    bed = amend("renal_limit", quantity="BED")
    plan = plan_next_cycle("dTOC", given_cycles(4.0), bed)
    assert plan.action == "dosimetry needed"
    assert "cycle 1: no kidney effective half-life (BED limit)" in plan.reason


def test_marrow_limit_can_be_the_limiting_organ(
    protocol: Protocol, amend: Callable[..., Protocol]
) -> None:
    # marrow 4 x 0.45 = 1.8 Gy, 0.06 Gy/GBq; 0.2 Gy room -> 3.333 GBq -> 3.3 GBq;
    # kidney 4 x 3 = 12 Gy would allow a full cycle
    with_marrow = amend("marrow_limit", limit_gy=2.0)
    cycles = tuple(
        CycleDose(activity_gbq=7.5, kidney_dose_gy=3.0, marrow_dose_gy=0.45) for _ in range(4)
    )
    plan = plan_next_cycle("dTOC", cycles, with_marrow)
    assert (plan.action, plan.limiting) == ("reduced", "marrow")
    assert plan.activity_gbq == pytest.approx(3.3)
    assert plan.predicted_cumulative_marrow_gy == pytest.approx(1.998)
    assert "bone-marrow" in plan.reason


def test_cycle_cap_stops_personalized_treatment(
    protocol: Protocol, amend: Callable[..., Protocol]
) -> None:
    capped = amend("treatment", max_personalized_cycles=2)
    plan = plan_next_cycle("dTOC", given_cycles(2.0, 2.0), capped)
    assert (plan.action, plan.limiting) == ("stop", "cycles")


def test_unknown_arm_and_implausible_doses_are_refused(protocol: Protocol) -> None:
    with pytest.raises(ValueError, match="arm='control'"):
        plan_next_cycle("control", (), protocol)
    with pytest.raises(ValueError, match="activity_gbq"):
        CycleDose(activity_gbq=-7.5, kidney_dose_gy=3.0)
    with pytest.raises(ValueError, match="not the mean"):
        CycleDose(
            activity_gbq=7.5, kidney_dose_gy=3.0, left_kidney_dose_gy=2, right_kidney_dose_gy=2
        )
