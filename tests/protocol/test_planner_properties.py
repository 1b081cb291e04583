"""Planner safety on every history (Hypothesis), against an oracle written here with exact
fractions from the protocol's rule text: per kidney side, cumulative + next Gy/GBq x activity
<= limit (AD), or cumulative BED + BED of the next dose <= limit, with
BED = D (1 + D T_rep / ((T_rep + T_eff) a/b)) (Dale 1985; REFERENCE.md).

Histories include missing doses, 0 Gy, mean-only cycles, reduced activities and histories built
to land a full cycle exactly on the limit; every limit mode (mean, left, right, worse; AD and
BED) with and without the protocol's per-cycle rise."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from startrt.protocol.course import CycleDose
from startrt.protocol.cycle_planning import CyclePlan, plan_next_cycle
from startrt.protocol.definition import Protocol

Amend = Callable[..., Protocol]
HALF_LIFE_H = 55.0
SIDES = {"mean": ("mean",), "left": ("left",), "right": ("right",), "worse": ("left", "right")}


def decimal(text: str) -> Fraction:
    return Fraction(text)


def side_dose(cycle: CycleDose, side: str) -> Fraction | None:
    left, right = cycle.left_kidney_dose_gy, cycle.right_kidney_dose_gy
    if side == "left":
        return None if left is None else decimal(repr(left))
    if side == "right":
        return None if right is None else decimal(repr(right))
    if left is not None and right is not None:
        return (decimal(repr(left)) + decimal(repr(right))) / 2
    return None if cycle.kidney_dose_gy is None else decimal(repr(cycle.kidney_dose_gy))


def oracle_bed(dose: Fraction, protocol: Protocol) -> Fraction:
    limit = protocol.renal_limit
    repair = decimal(repr(limit.repair_half_time_h))
    g = repair / (repair + decimal(repr(HALF_LIFE_H)))
    return dose * (1 + dose * g / decimal(repr(limit.alpha_beta_gy)))


def plannable(cycles: tuple[CycleDose, ...], protocol: Protocol) -> bool:
    low, high = (decimal(repr(v)) for v in protocol.renal_limit.plausible_kidney_gy_per_gbq)
    for cycle in cycles:
        for side in SIDES[protocol.renal_limit.kidney]:
            dose = side_dose(cycle, side)
            if dose is None or not low <= dose / decimal(repr(cycle.activity_gbq)) <= high:
                return False
    return True


def fits(cycles: tuple[CycleDose, ...], activity: Fraction, protocol: Protocol) -> bool:
    limit = protocol.renal_limit
    rise = 1 + decimal(repr(limit.kidney_gy_per_gbq_rise_per_cycle))
    for side in SIDES[limit.kidney]:
        doses = [side_dose(c, side) for c in cycles]
        latest = doses[-1]
        assert latest is not None
        next_dose = latest / decimal(repr(cycles[-1].activity_gbq)) * rise * activity
        if limit.quantity == "AD":
            total = sum((d for d in doses if d is not None), Fraction(0)) + next_dose
        else:
            beds = [oracle_bed(d, protocol) for d in doses if d is not None]
            total = sum(beds, Fraction(0)) + oracle_bed(next_dose, protocol)
        if total > decimal(repr(limit.limit_gy)):
            return False
    return True


def check(plan: CyclePlan, cycles: tuple[CycleDose, ...], protocol: Protocol) -> None:
    """The plan is the protocol's rule, exactly."""
    treatment = protocol.treatment
    full, step = decimal(repr(treatment.activity_per_cycle_gbq)), decimal("0.1")
    minimum = decimal(repr(treatment.minimum_activity_gbq))
    activity = decimal(repr(plan.activity_gbq))
    if not cycles:
        assert (plan.action, activity) == ("full", full)
        return
    if not plannable(cycles, protocol):
        assert (plan.action, plan.activity_gbq) == ("dosimetry needed", 0.0)
        return
    if fits(cycles, full, protocol):
        assert (plan.action, activity) == ("full", full)
    elif plan.action == "reduced":
        assert minimum <= activity < full
        assert activity / step == int(activity / step)  # a whole number of steps
        assert fits(cycles, activity, protocol)
        assert not fits(cycles, activity + step, protocol)  # the largest step that fits
    else:
        assert (plan.action, plan.activity_gbq) == ("stop", 0.0)
        assert not fits(cycles, minimum, protocol)
    if plan.action in ("full", "reduced"):
        predicted = (
            plan.predicted_cumulative_kidney_gy
            if protocol.renal_limit.quantity == "AD"
            else plan.predicted_cumulative_kidney_bed_gy
        )
        assert predicted is not None
        assert predicted <= protocol.renal_limit.limit_gy  # the stored figure too


tenths = st.integers(min_value=10, max_value=75).map(lambda n: n / 10)  # 1.0-7.5 GBq
hundredths = st.integers(min_value=0, max_value=1500).map(lambda n: n / 100)  # 0-15 Gy


@st.composite
def cycle_doses(draw: st.DrawFn) -> CycleDose:
    activity = draw(tenths)
    kind = draw(st.sampled_from(["sides", "sides", "sides", "mean", "missing", "zero"]))
    if kind == "missing":
        return CycleDose(activity_gbq=activity, kidney_effective_half_life_h=HALF_LIFE_H)
    if kind == "zero":
        return CycleDose(
            activity_gbq=activity,
            left_kidney_dose_gy=0.0,
            right_kidney_dose_gy=0.0,
            kidney_effective_half_life_h=HALF_LIFE_H,
        )
    if kind == "mean":
        return CycleDose(
            activity_gbq=activity,
            kidney_dose_gy=draw(hundredths),
            kidney_effective_half_life_h=HALF_LIFE_H,
        )
    return CycleDose(
        activity_gbq=activity,
        left_kidney_dose_gy=draw(hundredths),
        right_kidney_dose_gy=draw(hundredths),
        kidney_effective_half_life_h=HALF_LIFE_H,
    )


@st.composite
def boundary_histories(draw: st.DrawFn) -> tuple[CycleDose, ...]:
    """Mean-kidney histories whose full next cycle lands exactly on 30 Gy (AD, no rise): the
    last cycle is 7.5 GBq with (30 - earlier) / 2 Gy, so the next 7.5 GBq adds the same."""
    earlier = draw(st.lists(st.integers(min_value=100, max_value=900), min_size=0, max_size=3))
    assume(sum(earlier) < 3000)
    last = Fraction(3000 - sum(earlier), 200)  # in Gy, a decimal of at most 3 places
    doses = [Fraction(e, 100) for e in earlier] + [last]
    return tuple(
        CycleDose(
            activity_gbq=7.5,
            kidney_dose_gy=float(d),
            kidney_effective_half_life_h=HALF_LIFE_H,
        )
        for d in doses
    )


limit_modes = st.tuples(
    st.sampled_from(["mean", "left", "right", "worse"]),
    st.sampled_from(["AD", "BED"]),
    st.sampled_from([0.0, 0.08]),
)


@settings(max_examples=600, deadline=None)
@given(
    cycles=st.lists(cycle_doses(), min_size=0, max_size=10).map(tuple),
    mode=limit_modes,
    arm=st.sampled_from(["dTOC", "CAP-dTOC"]),
)
def test_a_guided_plan_is_the_rule_exactly(
    amend: Amend, cycles: tuple[CycleDose, ...], mode: tuple[str, str, float], arm: str
) -> None:
    kidney, quantity, rise = mode
    protocol = amend(
        "renal_limit", kidney=kidney, quantity=quantity, kidney_gy_per_gbq_rise_per_cycle=rise
    )
    check(plan_next_cycle(arm, cycles, protocol), cycles, protocol)


@settings(max_examples=300, deadline=None)
@given(cycles=boundary_histories())
def test_a_full_cycle_exactly_at_the_limit_is_full(
    protocol: Protocol, cycles: tuple[CycleDose, ...]
) -> None:
    plan = plan_next_cycle("dTOC", cycles, protocol)
    assert (plan.action, plan.activity_gbq) == ("full", 7.5)
    assert plan.predicted_cumulative_kidney_gy == 30.0
    assert "at 30.000 Gy" in plan.reason


@settings(max_examples=200, deadline=None)
@given(cycles=st.lists(cycle_doses(), min_size=0, max_size=8).map(tuple), mode=limit_modes)
def test_the_standard_arm_gets_exactly_its_fixed_cycles(
    amend: Amend, cycles: tuple[CycleDose, ...], mode: tuple[str, str, float]
) -> None:
    kidney, quantity, rise = mode
    protocol = amend(
        "renal_limit", kidney=kidney, quantity=quantity, kidney_gy_per_gbq_rise_per_cycle=rise
    )
    plan = plan_next_cycle("standard", cycles, protocol)
    fixed = protocol.arm("standard").fixed_cycles
    assert fixed == 4
    expected = ("full", 7.5) if len(cycles) < fixed else ("stop", 0.0)
    assert (plan.action, plan.activity_gbq) == expected


@settings(max_examples=100, deadline=None)
@given(rate=st.integers(min_value=5, max_value=300).map(lambda n: n / 100))
def test_treating_to_the_plan_ends_at_or_under_the_limit(protocol: Protocol, rate: float) -> None:
    """A patient whose Gy/GBq never changes, treated as planned, ends at or under 30 Gy, and
    stops only when not even the minimum activity fits."""
    cycles: tuple[CycleDose, ...] = ()
    while (plan := plan_next_cycle("dTOC", cycles, protocol)).action != "stop":
        dose = float(decimal(repr(plan.activity_gbq)) * decimal(repr(rate)))
        cycles = (*cycles, CycleDose(activity_gbq=plan.activity_gbq, kidney_dose_gy=dose))
    total = sum(decimal(repr(c.kidney_dose_gy)) for c in cycles if c.kidney_dose_gy is not None)
    assert total <= 30
    assert not fits(cycles, decimal("1.0"), protocol)
