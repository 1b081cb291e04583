"""The planner's reasoning in words and numbers, from its stored decision (`CyclePlan`: the
inputs it read, the action, the protocol version), for the physicist who accepts or overrides it:

    Cycle 3: 7.5 GBq proposed (full activity). Cumulative mean-kidney dose 8.00 Gy of 30 Gy;
    predicted for 7.5 GBq: 4.00 Gy (0.53 Gy/GBq, cycle 2's), total 12.00 Gy; remaining budget
    after the cycle 18.00 Gy. Rule: full activity when the predicted total stays at or under
    the limit (START-01 v1.0).

Every number is the planner's own (`cycle_planning.Budget` on the course the plan read, under the
protocol version it names), rounded for people by `startrt.fields`; nothing is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from startrt import fields
from startrt.protocol.course import GOVERNING_SIDES, Course, CycleDose, Side, bed_gy, exact
from startrt.protocol.cycle_planning import Budget, CyclePlan, largest_step
from startrt.protocol.definition import Protocol
from startrt.protocol.kidney_budget import (
    PERCENT_OF_LIMIT,
    limit_state,
    limit_text,
    limited_cumulative,
    quantity_text,
)
from startrt.validation import InvalidInputError

GY = "cumulative_kidney_dose_gy"  # the field whose rounding every kidney dose here takes
GBQ = "activity_gbq"
RATE = "kidney_gy_per_gbq"


def _gy(value: Fraction | float | None) -> str:
    return fields.format_value(GY, None if value is None else float(value))


def _gbq(value: Fraction | float) -> str:
    return fields.format_value(GBQ, float(value))


def probability_text(value: float) -> str:
    """A modelled probability in % to 0.1 (never exactly 0: under 0.05 % reads "< 0.1 %")."""
    percent = 100 * value
    return "< 0.1 %" if percent < 0.05 else f"{fields.format_value(PERCENT_OF_LIMIT, percent)} %"


@dataclass(frozen=True)
class PlannedKidneyDose:
    """The governing side (the one the limit reads with the highest predicted total) after a
    next cycle of `activity_gbq`: the limit's quantity (AD or BED, Gy) so far, the predicted
    Gy/GBq, what the cycle adds and the total, exactly."""

    side: Side
    activity_gbq: Fraction
    so_far: Fraction
    rate: Fraction
    added: Fraction
    total: Fraction


def _course(plan: CyclePlan) -> Course:
    """The course the plan read (its stored inputs)."""
    return Course(tuple(CycleDose.model_validate(cycle) for cycle in plan.inputs["cycles"]))


def planned_kidney_dose(plan: CyclePlan, protocol: Protocol) -> PlannedKidneyDose | None:
    """The planner's prediction for the cycle it proposes (None for a stop, a first cycle or
    a course it could not plan from)."""
    course = _course(plan)
    budget = Budget(course, protocol)
    if plan.action not in ("full", "reduced") or not course or budget.missing_dosimetry():
        return None
    return _governing(budget, exact(plan.activity_gbq))


def _governing(budget: Budget, activity: Fraction) -> PlannedKidneyDose:
    """The side with the highest predicted total after a next cycle of `activity`."""
    limit, course = budget.protocol.renal_limit, budget.course
    sides = []
    for side in GOVERNING_SIDES[limit.kidney]:
        rate = budget.rate(side)
        dose = rate * activity
        if limit.quantity == "AD":
            so_far, added = course.exact_cumulative_gy(side), dose
        else:
            half_life = course.cycles[-1].kidney_effective_half_life_h
            assert half_life is not None  # a plannable course for a BED limit has it
            so_far, added = (
                course.exact_cumulative_bed_gy(side, limit),
                bed_gy(dose, exact(half_life), limit),
            )
        assert so_far is not None  # a plannable course has every dose
        sides.append(PlannedKidneyDose(side, activity, so_far, rate, added, so_far + added))
    return max(sides, key=lambda s: s.total)


def plan_reasoning(plan: CyclePlan, protocol: Protocol) -> str:
    """The reasoning of `plan`, made under `protocol` (the version the plan names)."""
    if plan.protocol != protocol.label:
        raise InvalidInputError(
            "protocol",
            protocol.label,
            f"must be the version the plan was made under, {plan.protocol}",
        )
    course = _course(plan)
    budget = Budget(course, protocol)
    arm = protocol.arm(plan.inputs["arm"])
    parts = [_headline(plan, protocol)]
    if arm.fixed_cycles is not None:
        parts.append(_standard_arm(plan, course, protocol, arm.fixed_cycles))
    elif plan.action == "dosimetry needed":
        parts.append(
            "No plan until the kidney dosimetry is complete and plausible: "
            + "; ".join(budget.missing_dosimetry() or ["first cycle"])
            + "."
        )
    elif not course.cycles:
        parts.append("First cycle: full activity; the kidney dosimetry follows this cycle.")
    elif plan.limiting == "cycles":
        parts.append(
            f"The protocol's maximum of {protocol.treatment.max_personalized_cycles} "
            "personalized cycles is reached."
        )
    elif plan.limiting == "marrow":
        parts.append(_marrow(plan, budget))
    else:
        parts.append(_kidney(plan, budget))
        parts.extend(_risk_cap(plan, budget))
    if plan.probability_over_limit is not None:
        parts.append(_risk_figures(plan, protocol))
    parts.extend(f"Warning: {warning}." for warning in plan.warnings)
    parts.append(f"Rule: {_rule(plan, protocol, arm.fixed_cycles)} ({plan.protocol}).")
    return " ".join(parts)


def _headline(plan: CyclePlan, protocol: Protocol) -> str:
    head = f"Cycle {plan.next_cycle}:"
    full = protocol.treatment.activity_per_cycle_gbq
    if plan.action == "full":
        return f"{head} {_gbq(plan.activity_gbq)} GBq proposed (full activity)."
    if plan.action == "reduced":
        return f"{head} {_gbq(plan.activity_gbq)} GBq proposed (reduced from {_gbq(full)} GBq)."
    if plan.action == "stop":
        return f"{head} no further cycle proposed (stop)."
    return f"{head} no activity proposed (dosimetry needed)."


def _standard_arm(plan: CyclePlan, course: Course, protocol: Protocol, cycles: int) -> str:
    limit = protocol.renal_limit
    given = (
        f"Standard arm: {cycles} cycles of {_gbq(protocol.treatment.activity_per_cycle_gbq)} GBq "
        "regardless of dose"
    )
    text = given + ("." if plan.action == "full" else f"; all {cycles} given.")
    governing = limited_cumulative(course, limit) if course.cycles else None
    if governing is not None:
        text += f" Cumulative {quantity_text(limit)} {_gy(governing[1])} Gy of {limit_text(limit)}."
    return text


def _source(budget: Budget, rate: Fraction) -> str:
    """The predicted Gy/GBq and where it comes from: "0.53 Gy/GBq (cycle 2's)"."""
    limit = budget.protocol.renal_limit
    latest = len(budget.course)
    rise = limit.kidney_gy_per_gbq_rise_per_cycle
    shown = fields.format_value(RATE, float(rate))
    if not rise:
        return f"{shown} Gy/GBq (cycle {latest}'s)"
    return f"{shown} Gy/GBq (cycle {latest}'s raised by {100 * rise:g} %)"


def _kidney(plan: CyclePlan, budget: Budget) -> str:
    """The kidney limit's part: cumulative so far, what the cycle adds, the total and the
    budget after it; for a reduced cycle also what a full one would have added; for a stop why."""
    protocol = budget.protocol
    limit, treatment = protocol.renal_limit, protocol.treatment
    unit = "Gy" if limit.quantity == "AD" else "Gy BED"
    full = exact(treatment.activity_per_cycle_gbq)
    activity = exact(plan.activity_gbq)
    side = _governing(budget, activity if plan.action != "stop" else full)
    named = f" ({side.side} kidney)" if limit.kidney == "worse" else ""
    so_far = (
        f"Cumulative {quantity_text(limit)}{named} {_gy(side.so_far)} {unit} of {limit_text(limit)}"
    )
    if plan.action == "stop":
        state = limit_state(side.so_far, limit)
        if state != "within":
            verb = "exceeds" if state == "exceeded" else "has reached"
            return f"{so_far}: it {verb} the limit, no budget is left."
        left = exact(limit.limit_gy) - side.so_far
        return (
            f"{so_far} leaves {_gy(left)} {unit}; at {_source(budget, side.rate)} that "
            "allows "
            f"less than the protocol's minimum of {_gbq(treatment.minimum_activity_gbq)} GBq."
        )
    after = f"total {_gy(side.total)} {unit}; remaining budget after the cycle " + (
        f"{_gy(exact(limit.limit_gy) - side.total)} {unit}."
    )
    if plan.action == "full":
        return (
            f"{so_far}; predicted for {_gbq(activity)} GBq: {_gy(side.added)} {unit} at "
            f"{_source(budget, side.rate)}, {after}"
        )
    whole = _governing(budget, full)
    kept = "over the limit" if budget.exceeded(full) == "kidney" else "within the limit"
    return (
        f"{so_far}; a full {_gbq(full)} GBq cycle would add {_gy(whole.added)} {unit} at "
        f"{_source(budget, whole.rate)}, total {_gy(whole.total)} {unit}, {kept}; "
        f"{_gbq(activity)} GBq adds {_gy(side.added)} {unit}, {after}"
    )


def _deterministic_activity(budget: Budget) -> Fraction:
    """The activity the dose limits alone allow (before a probability limit)."""
    treatment = budget.protocol.treatment
    full, step = exact(treatment.activity_per_cycle_gbq), exact(treatment.activity_step_gbq)
    if budget.exceeded(full) is None:
        return full
    activity = largest_step(lambda a: budget.exceeded(a) is None, step, full)
    return activity if activity >= exact(treatment.minimum_activity_gbq) else Fraction(0)


def _probability_over(budget: Budget, activity: Fraction) -> float:
    limit_gy = budget.protocol.renal_limit.limit_gy
    return max(
        float(prediction.probability_over(limit_gy, float(activity))[0])
        for prediction in budget.predictions.values()
    )


def _risk_cap(plan: CyclePlan, budget: Budget) -> list[str]:
    """When the protocol's probability limit lowered the activity below the dose limits' own."""
    limit = budget.protocol.renal_limit
    maximum = limit.max_probability_over_limit
    if maximum is None or plan.action not in ("reduced", "stop"):
        return []
    deterministic = _deterministic_activity(budget)
    if deterministic <= exact(plan.activity_gbq):
        return []
    text = (
        f"The dose limit alone would allow {_gbq(deterministic)} GBq, but then "
        f"P(true cumulative > {limit_text(limit)}) would be "
        f"{probability_text(_probability_over(budget, deterministic))} (protocol maximum "
        f"{probability_text(maximum)})"
    )
    if plan.action == "stop":
        minimum = budget.protocol.treatment.minimum_activity_gbq
        return [text + f"; under the minimum {_gbq(minimum)} GBq the probability limit allows."]
    kept = probability_text(plan.probability_over_limit or 0.0)
    return [text + f"; {_gbq(plan.activity_gbq)} GBq keeps it at {kept}."]


def _risk_figures(plan: CyclePlan, protocol: Protocol) -> str:
    limit = protocol.renal_limit
    given = plan.activity_gbq > 0
    text = f"Kidney-dose model, {'after the cycle' if given else 'now'}:"
    if plan.predicted_cumulative_kidney_gy_interval is not None:
        low, high = plan.predicted_cumulative_kidney_gy_interval
        text += f" true cumulative {_gy(low)}–{_gy(high)} Gy (90 % interval);"
    measured = plan.probability_measured_over_limit if given else None
    return (
        text
        + f" P(over {limit_text(limit)}) {probability_text(plan.probability_over_limit or 0.0)}"
        + ("" if measured is None else f" (measured: {probability_text(measured)}, a deviation)")
        + "."
    )


def _marrow(plan: CyclePlan, budget: Budget) -> str:
    marrow_limit = budget.protocol.marrow_limit
    assert marrow_limit is not None  # the marrow limits only under a marrow limit
    full = exact(budget.protocol.treatment.activity_per_cycle_gbq)
    text = (
        f"Cumulative bone-marrow dose {_gy(plan.cumulative_marrow_gy)} Gy of "
        f"{marrow_limit.limit_gy:g} Gy; a full {_gbq(full)} GBq cycle: total "
        f"{_gy(budget.marrow_after(full))} Gy, over the limit"
    )
    if plan.action == "reduced":
        kept = _gy(plan.predicted_cumulative_marrow_gy)
        return text + f"; {_gbq(plan.activity_gbq)} GBq keeps it at {kept} Gy."
    minimum = budget.protocol.treatment.minimum_activity_gbq
    return text + f"; the room left allows less than the minimum {_gbq(minimum)} GBq."


def _rule(plan: CyclePlan, protocol: Protocol, fixed_cycles: int | None) -> str:
    """The part of the protocol's rule that decided this plan, in words."""
    treatment, limit = protocol.treatment, protocol.renal_limit
    if fixed_cycles is not None:
        full = _gbq(treatment.activity_per_cycle_gbq)
        return f"{fixed_cycles} cycles of {full} GBq regardless of dose"
    if plan.action == "dosimetry needed":
        low, high = limit.plausible_kidney_gy_per_gbq
        return f"no plan without every cycle's kidney dose at {low:g}–{high:g} Gy/GBq"
    if plan.limiting == "cycles":
        return f"at most {treatment.max_personalized_cycles} personalized cycles"
    risk = (
        ""
        if limit.max_probability_over_limit is None
        else f" and P(true cumulative > {limit_text(limit)}) at or under "
        f"{probability_text(limit.max_probability_over_limit)}"
    )
    text = f"full activity when the predicted total stays at or under the limit{risk}"
    if plan.action == "full":
        return text
    step, minimum = _gbq(treatment.activity_step_gbq), _gbq(treatment.minimum_activity_gbq)
    return (
        f"{text}; otherwise the largest multiple of {step} GBq that does; under {minimum} GBq: stop"
    )
