"""Next-cycle planning: full activity, a reduced activity that keeps the predicted cumulative
kidney dose at or under the protocol limit, stop, or "dosimetry needed"; with the reason.

Prediction: the next cycle's kidney dose = activity x the latest cycle's Gy/GBq (x the
protocol's expected rise per cycle), for every kidney the limit reads (`course.GOVERNING_SIDES`:
the mean of both, one side, or both sides for the worse kidney). For a BED limit each cycle's
BED comes from its dose and effective half-life (`course.bed_gy`). The limits are checked
exactly (`fractions.Fraction` of the values as entered), so a full cycle that lands exactly on
the limit is `full`, and a reduced activity is the largest multiple of the protocol's step that
keeps every limit (so rounding never crosses one); under the protocol's minimum activity the
plan is to stop. A dosimetry-guided arm is never planned from a course whose doses are missing
or implausible (a Gy/GBq outside the protocol's plausible range, e.g. 0): the plan is then
"dosimetry needed" with no activity. The standard arm gets its fixed cycles regardless of dose.

Risk figures (every plan with an absorbed-dose limit and plannable dosimetry, the first cycle
included): the kidney-dose model (`kidney_dose_prediction`: population prior updated by the
patient's measured Gy/GBq, with each dose's standard uncertainty or the model's default) gives
the 90 % interval of the true cumulative dose after the planned cycle, the probability that it
exceeds the limit, the probability that the measured cumulative will (a protocol deviation),
and the remaining budget. For the worse kidney the side with the higher probability is
reported. With the protocol's `max_probability_over_limit` the activity of a dosimetry-guided
arm is also the largest multiple of the step whose probability stays at or under it (never
above the deterministic rule's activity; under the minimum activity: stop). Without the setting
(START-01 v1.0) the figures are stated and the decision is the deterministic rule's alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from pydantic import Field

from startrt.protocol.course import (
    GOVERNING_SIDES,
    Course,
    CycleDose,
    N,
    Side,
    bed_gy,
    exact,
    predicted_gy_per_gbq,
)
from startrt.protocol.decision import Decision
from startrt.protocol.definition import Protocol
from startrt.protocol.kidney_dose_prediction import (
    Prediction,
    course_history,
    kidney_dose_prior,
    predict,
)
from startrt.protocol.records import Record

Action = Literal["full", "reduced", "stop", "dosimetry needed"]
Limiting = Literal["kidney", "marrow", "cycles", "dosimetry"]


class PlanningInput(Record):
    """What `plan-cycle` reads: the arm and the cycles given so far, in order."""

    arm: str
    cycles: tuple[CycleDose, ...] = Field(max_length=20)
    protocol: str | None = None


class CyclePlan(Decision):
    next_cycle: int
    action: Action
    activity_gbq: float
    reason: str
    kidney_gy_per_gbq: float | None
    cumulative_kidney_gy: float | None
    predicted_cumulative_kidney_gy: float | None
    predicted_cumulative_kidney_gy_full_cycle: float | None
    cumulative_kidney_bed_gy: float | None
    predicted_cumulative_kidney_bed_gy: float | None
    worse_kidney: Literal["left", "right"] | None
    worse_kidney_cumulative_gy: float | None
    cumulative_marrow_gy: float | None
    predicted_cumulative_marrow_gy: float | None
    limiting: Limiting | None
    warnings: tuple[str, ...]
    remaining_kidney_budget_gy: float | None = None
    probability_over_limit: float | None = None
    probability_measured_over_limit: float | None = None
    predicted_cumulative_kidney_gy_interval: tuple[float, float] | None = None
    kidney_dose_uncertainty: str | None = None


@dataclass(frozen=True)
class Budget:
    """The protocol's dose limits applied to a course: what a next cycle of A GBq predicts."""

    course: Course
    protocol: Protocol

    def missing_dosimetry(self) -> list[str]:
        """What the limits need and the course lacks or holds implausibly (empty: plannable)."""
        limit = self.protocol.renal_limit
        low, high = (exact(v) for v in limit.plausible_kidney_gy_per_gbq)
        problems = []
        for number, cycle in enumerate(self.course, start=1):
            for side in GOVERNING_SIDES[limit.kidney]:
                dose = cycle.exact_dose_gy(side)
                if dose is None:
                    problems.append(f"cycle {number}: no {side} kidney dose")
                elif not low <= (rate := dose / cycle.exact_activity_gbq) <= high:
                    problems.append(
                        f"cycle {number}: {side} kidney {float(rate):.3g} Gy/GBq is outside "
                        f"the plausible {float(low):g}-{float(high):g} Gy/GBq"
                    )
            if limit.quantity == "BED" and cycle.kidney_effective_half_life_h is None:
                problems.append(f"cycle {number}: no kidney effective half-life (BED limit)")
            if self.protocol.marrow_limit is not None and not cycle.marrow_dose_gy:
                problems.append(f"cycle {number}: no marrow dose (marrow limit)")
        return problems

    @functools.cached_property
    def predictions(self) -> dict[Side, Prediction]:
        """The kidney-dose model's prediction per side the limit reads (plannable courses)."""
        sides = GOVERNING_SIDES[self.protocol.renal_limit.kidney]
        return {side: predict(course_history(self.course, side)) for side in sides}

    def safe_activity(self, top: Fraction) -> Fraction:
        """The largest multiple of the step up to `top` whose probability of a true cumulative
        dose over the limit stays at or under the protocol's maximum, on every side."""
        limit, step = self.protocol.renal_limit, exact(self.protocol.treatment.activity_step_gbq)
        assert limit.max_probability_over_limit is not None
        steps = min(
            int(
                prediction.largest_safe_steps(
                    limit.limit_gy, limit.max_probability_over_limit, float(step), int(top / step)
                )[0]
            )
            for prediction in self.predictions.values()
        )
        return steps * step

    def rate(self, side: Side) -> Fraction:
        """The predicted Gy/GBq of one side's next cycle."""
        return self._so_far[side][1]

    @functools.cached_property
    def _so_far(self) -> dict[Side, tuple[Fraction, Fraction, Fraction]]:
        """Per side the limit reads: cumulative AD, predicted Gy/GBq, and the cumulative
        quantity the limit reads (AD or BED). Computed once per plan."""
        limit = self.protocol.renal_limit
        latest = self.course.cycles[-1]
        rise = exact(limit.kidney_gy_per_gbq_rise_per_cycle)
        sides: dict[Side, tuple[Fraction, Fraction, Fraction]] = {}
        for side in GOVERNING_SIDES[limit.kidney]:
            dose, cumulative = latest.exact_dose_gy(side), self.course.exact_cumulative_gy(side)
            limited = (
                cumulative
                if limit.quantity == "AD"
                else self.course.exact_cumulative_bed_gy(side, limit)
            )
            assert dose is not None  # missing_dosimetry() is empty
            assert cumulative is not None
            assert limited is not None
            rate = predicted_gy_per_gbq(dose, latest.exact_activity_gbq, rise)
            sides[side] = (cumulative, rate, limited)
        return sides

    def kidney_after(self, activity_gbq: Fraction) -> Fraction:
        """The limit's quantity (AD or BED) of the governing kidney after a next cycle of
        `activity_gbq`: the highest over the sides the limit reads."""
        limit = self.protocol.renal_limit
        totals = []
        for _, rate, so_far in self._so_far.values():
            dose = rate * activity_gbq
            if limit.quantity == "AD":
                totals.append(so_far + dose)
            else:
                half_life = self.course.cycles[-1].kidney_effective_half_life_h
                assert half_life is not None
                totals.append(so_far + bed_gy(dose, exact(half_life), limit))
        return max(totals)

    def kidney_dose_after(self, activity_gbq: Fraction) -> Fraction:
        """The absorbed dose of the governing kidney after a next cycle of `activity_gbq`."""
        return max(
            cumulative + rate * activity_gbq for cumulative, rate, _ in self._so_far.values()
        )

    def marrow_after(self, activity_gbq: Fraction) -> Fraction | None:
        doses = self.course.exact_cumulative_marrow_gy()
        if doses is None or not self.course.cycles:
            return None
        latest = self.course.cycles[-1]
        if latest.marrow_dose_gy is None:
            return None
        return doses + exact(latest.marrow_dose_gy) / latest.exact_activity_gbq * activity_gbq

    def exceeded(self, activity_gbq: Fraction) -> Limiting | None:
        """The first limit a next cycle of `activity_gbq` would cross (None: all kept)."""
        if self.kidney_after(activity_gbq) > exact(self.protocol.renal_limit.limit_gy):
            return "kidney"
        marrow_limit = self.protocol.marrow_limit
        if marrow_limit is None:
            return None
        marrow = self.marrow_after(activity_gbq)
        return "marrow" if marrow is not None and marrow > exact(marrow_limit.limit_gy) else None


def risk_capped_activity_gbq(deterministic_gbq: N, safe_gbq: N, minimum_gbq: N) -> N:
    """The activity under a probability limit: the lower of the deterministic rule's and the
    risk-safe activity, 0 (stop) under the minimum. Exact on fractions; elementwise on NumPy
    arrays (the simulation's fast path)."""
    lower = safe_gbq < deterministic_gbq
    capped = safe_gbq * lower + deterministic_gbq * (1 - lower)  # exact: one term is 0
    return capped * (capped >= minimum_gbq)  # type: ignore[no-any-return]


def largest_step(fits: Callable[[Fraction], bool], step: Fraction, top: Fraction) -> Fraction:
    """The largest multiple of `step` up to `top` for which the monotone `fits` holds (0 if
    none), by bisection on the number of steps."""
    low, high = 0, int(top / step)
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle * step):
            low = middle
        else:
            high = middle - 1
    return low * step


def plan_next_cycle(arm_id: str, cycles: tuple[CycleDose, ...], protocol: Protocol) -> CyclePlan:
    """Plan the next cycle for a patient of arm `arm_id` who has had `cycles` (in order)."""
    arm = protocol.arm(arm_id)
    treatment = protocol.treatment
    full = exact(treatment.activity_per_cycle_gbq)
    course = Course(cycles)
    budget = Budget(course, protocol)
    missing = budget.missing_dosimetry() if cycles else ["first cycle"]
    warnings: list[str] = []
    activity = Fraction(0)
    limiting: Limiting | None = None
    if arm.fixed_cycles is not None:
        action: Action = "full" if len(cycles) < arm.fixed_cycles else "stop"
        limiting = None if action == "full" else "cycles"
        activity = full if action == "full" else activity
        if action == "full" and not missing and budget.exceeded(full) is not None:
            warnings.append(
                f"the {arm.id} arm gives {arm.fixed_cycles} cycles regardless of dose; the "
                f"predicted cumulative kidney dose exceeds {protocol.renal_limit.limit_gy:g} Gy"
            )
    elif not cycles:
        action, activity = "full", full
    elif missing:
        action, limiting = "dosimetry needed", "dosimetry"
    elif (
        treatment.max_personalized_cycles is not None
        and len(cycles) >= treatment.max_personalized_cycles
    ):
        action, limiting = "stop", "cycles"
    elif (limiting := budget.exceeded(full)) is None:
        action, activity = "full", full
    else:
        step = exact(treatment.activity_step_gbq)
        activity = largest_step(lambda a: budget.exceeded(a) is None, step, full)
        if activity < exact(treatment.minimum_activity_gbq):
            action, activity = "stop", Fraction(0)
        else:
            action = "reduced"
    plannable = bool(cycles) and not missing
    values = _predictions(budget, activity, full, plannable=plannable)
    reason = _reason(action, limiting, float(activity), values, protocol, arm.fixed_cycles, missing)
    if (
        arm.fixed_cycles is None
        and action in ("full", "reduced")
        and protocol.renal_limit.max_probability_over_limit is not None
    ):
        capped = risk_capped_activity_gbq(
            activity, budget.safe_activity(full), exact(treatment.minimum_activity_gbq)
        )
        reason += _risk_reason(budget, activity, capped)
        if capped < activity:
            action, activity, limiting = ("reduced" if capped else "stop"), capped, "kidney"
            values = _predictions(budget, activity, full, plannable=plannable)
    risk = _risk_figures(budget, activity, modelled=not missing or not cycles)
    worse_side, worse_total = course.worse_kidney()
    return CyclePlan(
        kind="cycle_plan",
        protocol=protocol.label,
        rule=_rule_text(protocol, arm.fixed_cycles),
        inputs={
            "arm": arm_id,
            "cycles": [c.model_dump(mode="json") for c in cycles],
            **({"kidney_dose_model": kidney_dose_prior().summary()} if risk else {}),
        },
        next_cycle=len(cycles) + 1,
        action=action,
        activity_gbq=float(activity),
        reason=reason,
        worse_kidney=worse_side,
        worse_kidney_cumulative_gy=worse_total,
        limiting=limiting,
        warnings=tuple(warnings),
        **values,
        **risk,
    )


def _risk_figures(budget: Budget, activity: Fraction, *, modelled: bool) -> dict[str, Any]:
    """The kidney-dose model's figures after a next cycle of `activity` (none for a BED limit
    or a course the planner cannot read): the side with the highest probability."""
    limit = budget.protocol.renal_limit
    if limit.quantity != "AD" or not modelled:
        return {}
    a, limit_gy = float(activity), limit.limit_gy
    side, prediction = max(
        budget.predictions.items(), key=lambda item: float(item[1].probability_over(limit_gy, a)[0])
    )
    low, high = prediction.interval_gy(a)
    cumulative = budget.course.exact_cumulative_gy(side) if budget.course.cycles else Fraction(0)
    assert cumulative is not None
    return {
        "remaining_kidney_budget_gy": round(float(exact(limit_gy) - cumulative), 4),
        "probability_over_limit": round(float(prediction.probability_over(limit_gy, a)[0]), 4),
        "probability_measured_over_limit": round(
            float(prediction.probability_measured_over(limit_gy, a)[0]), 4
        ),
        "predicted_cumulative_kidney_gy_interval": (
            round(float(low[0]), 3),
            round(float(high[0]), 3),
        ),
        "kidney_dose_uncertainty": _uncertainty_note(budget.course),
    }


def _uncertainty_note(course: Course) -> str:
    prior = kidney_dose_prior()
    default = (
        f"the model's default measurement error (CV {prior.measurement_cv.value:.0%}, "
        f"systematic share {prior.systematic_share.value:.0%})"
    )
    given = [
        number
        for number, cycle in enumerate(course, start=1)
        if any(cycle.dose_sd_gy(side) is not None for side in ("mean", "left", "right"))
    ]
    if not given:
        return f"no standard uncertainties given: {default} applies to every dose"
    if len(given) == len(course):
        return "each dose's own standard uncertainty"
    listed = ", ".join(str(n) for n in given)
    return f"standard uncertainties given for cycles {listed}; {default} for the others"


def _risk_reason(budget: Budget, deterministic: Fraction, capped: Fraction) -> str:
    """The probability limit's part of the reason: the probability at the deterministic
    rule's activity and, when lower, the activity the limit allows."""
    limit = budget.protocol.renal_limit
    maximum = limit.max_probability_over_limit
    assert maximum is not None

    def probability(activity: Fraction) -> float:
        return max(
            float(p.probability_over(limit.limit_gy, float(activity))[0])
            for p in budget.predictions.values()
        )

    text = (
        f"; P(true cumulative kidney AD > {limit.limit_gy:g} Gy) after {float(deterministic):g} "
        f"GBq: {probability(deterministic):.1%} (protocol maximum {maximum:.1%})"
    )
    if capped == deterministic:
        return text
    if not capped:
        minimum = budget.protocol.treatment.minimum_activity_gbq
        return text + f"; under the minimum {minimum:g} GBq the probability limit allows: stop"
    return (
        text + f"; the probability limit allows {float(capped):g} GBq ({probability(capped):.1%})"
    )


def _rounded(value: Fraction | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _predictions(
    budget: Budget, activity: Fraction, full: Fraction, *, plannable: bool
) -> dict[str, float | None]:
    """Cumulative doses so far and predicted after a next cycle of `activity` (and of a full
    cycle), of the kidney the limit reads."""
    course, limit = budget.course, budget.protocol.renal_limit
    cumulative_bed = course.cumulative_bed_gy(limit.kidney, limit) if course.cycles else None
    marrow = course.cumulative_marrow_gy()
    values: dict[str, float | None] = {
        "kidney_gy_per_gbq": None,
        "cumulative_kidney_gy": course.cumulative_gy(limit.kidney) if course.cycles else None,
        "predicted_cumulative_kidney_gy": None,
        "predicted_cumulative_kidney_gy_full_cycle": None,
        "cumulative_kidney_bed_gy": None if cumulative_bed is None else round(cumulative_bed, 4),
        "predicted_cumulative_kidney_bed_gy": None,
        "cumulative_marrow_gy": None if marrow is None else round(marrow, 4),
        "predicted_cumulative_marrow_gy": None,
    }
    if plannable:
        rates = [budget.rate(side) for side in GOVERNING_SIDES[limit.kidney]]
        values["kidney_gy_per_gbq"] = round(float(max(rates)), 5)
        values["predicted_cumulative_kidney_gy"] = _rounded(budget.kidney_dose_after(activity))
        values["predicted_cumulative_kidney_gy_full_cycle"] = _rounded(
            budget.kidney_dose_after(full)
        )
        if limit.quantity == "BED":
            values["predicted_cumulative_kidney_bed_gy"] = _rounded(budget.kidney_after(activity))
        values["predicted_cumulative_marrow_gy"] = _rounded(budget.marrow_after(activity))
    return values


def _rule_text(protocol: Protocol, fixed_cycles: int | None) -> str:
    treatment, limit = protocol.treatment, protocol.renal_limit
    if fixed_cycles is not None:
        return (
            f"{fixed_cycles} cycles x {treatment.activity_per_cycle_gbq:g} GBq regardless of dose"
        )
    low, high = limit.plausible_kidney_gy_per_gbq
    text = (
        f"cumulative kidney {limit.quantity} ({limit.kidney} kidney) <= {limit.limit_gy:g} Gy, "
        f"checked exactly; next dose = activity x latest Gy/GBq"
        + (
            f" x {1 + limit.kidney_gy_per_gbq_rise_per_cycle:g}"
            if limit.kidney_gy_per_gbq_rise_per_cycle
            else ""
        )
        + f"; reduced activity the largest multiple of {treatment.activity_step_gbq:g} GBq that "
        f"keeps the limit, minimum {treatment.minimum_activity_gbq:g} GBq; no plan without "
        f"every cycle's kidney dose at {low:g}-{high:g} Gy/GBq"
    )
    if limit.max_probability_over_limit is not None:
        text += (
            f"; and P(true cumulative kidney AD > {limit.limit_gy:g} Gy) <= "
            f"{limit.max_probability_over_limit:g} by the kidney-dose model "
            f"({kidney_dose_prior().name})"
        )
    if protocol.marrow_limit is not None:
        text += f"; cumulative marrow dose <= {protocol.marrow_limit.limit_gy:g} Gy"
    if treatment.max_personalized_cycles is not None:
        text += f"; at most {treatment.max_personalized_cycles} cycles"
    return text


def _reason(
    action: Action,
    limiting: Limiting | None,
    activity: float,
    values: dict[str, float | None],
    protocol: Protocol,
    fixed_cycles: int | None,
    missing: list[str],
) -> str:
    limit = protocol.renal_limit
    full = protocol.treatment.activity_per_cycle_gbq
    if fixed_cycles is not None:
        if action == "full":
            return f"standard arm: {fixed_cycles} cycles of {full:g} GBq regardless of dose"
        return f"standard arm: all {fixed_cycles} cycles given"
    if action == "dosimetry needed":
        return "no plan until the kidney dosimetry is complete and plausible: " + "; ".join(missing)
    if values["kidney_gy_per_gbq"] is None:
        return f"first cycle: {full:g} GBq; kidney dosimetry follows this cycle"
    if limiting == "cycles":
        return "the protocol's maximum number of personalized cycles is reached"
    if limiting == "marrow" and protocol.marrow_limit is not None:
        organ, unit, limit_gy = "bone-marrow dose", "Gy", protocol.marrow_limit.limit_gy
        predicted = values["predicted_cumulative_marrow_gy"]
    else:
        unit = "Gy BED" if limit.quantity == "BED" else "Gy"
        organ, limit_gy = f"{limit.kidney} kidney {limit.quantity}", limit.limit_gy
        key = "bed_gy" if limit.quantity == "BED" else "gy"
        predicted = values[f"predicted_cumulative_kidney_{key}"]
    if action == "full":
        return (
            f"{full:g} GBq keeps the predicted cumulative {organ} at {predicted:.3f} {unit} "
            f"(limit {limit_gy:g} {unit})"
        )
    if action == "reduced":
        return (
            f"a full {full:g} GBq cycle would exceed the cumulative {organ} limit of {limit_gy:g} "
            f"{unit}; {activity:g} GBq keeps it at {predicted:.3f} {unit}"
        )
    return (
        f"the cumulative {organ} limit of {limit_gy:g} {unit} leaves room for less than the "
        f"minimum {protocol.treatment.minimum_activity_gbq:g} GBq: stop"
    )
