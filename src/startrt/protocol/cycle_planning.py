"""Next-cycle planning: full activity, a reduced activity that keeps the predicted cumulative
kidney dose at or under the protocol limit, or stop; with the reason.

Prediction: the next cycle's kidney dose = activity x the latest cycle's dose per GBq (the
protocol's dosimetry after every cycle). For a BED limit each cycle's BED comes from its dose and
effective half-life (Wessels 2008, see startrt.dosimetry.bed) and the budget left is converted
back to dose. A reduced activity is rounded down to the protocol's step, so rounding never
crosses the limit; below the protocol's minimum activity the plan is to stop. The standard arm
gets its fixed number of cycles regardless of dose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from startrt.dosimetry.bed import bed_mono_exponential_gy, dose_for_bed_gy
from startrt.protocol.decision import Decision
from startrt.protocol.definition import Protocol, RenalLimit
from startrt.protocol.records import Record
from startrt.validation import InvalidInputError

PHYSICAL_HALF_LIFE_LIMIT_H = 160.0  # an effective half-life cannot exceed 177Lu's 159.5 h


class CycleDose(Record):
    """One administered cycle with the absorbed doses its dosimetry found."""

    activity_gbq: float = Field(gt=0, le=15)
    kidney_dose_gy: float | None = Field(default=None, ge=0, le=100)
    left_kidney_dose_gy: float | None = Field(default=None, ge=0, le=100)
    right_kidney_dose_gy: float | None = Field(default=None, ge=0, le=100)
    marrow_dose_gy: float | None = Field(default=None, ge=0, le=20)
    kidney_effective_half_life_h: float | None = Field(
        default=None, gt=0, le=PHYSICAL_HALF_LIFE_LIMIT_H
    )

    @model_validator(mode="after")
    def _mean_consistent(self) -> CycleDose:
        mean, left, right = self.kidney_dose_gy, self.left_kidney_dose_gy, self.right_kidney_dose_gy
        if mean is not None and left is not None and right is not None:
            sides_mean = (left + right) / 2
            if not math.isclose(sides_mean, mean, rel_tol=0.01, abs_tol=0.01):
                raise ValueError(
                    f"kidney_dose_gy {mean} is not the mean of left and right ({sides_mean:.3f})"
                )
        return self


class PlanningInput(Record):
    """What `plan-cycle` reads: the arm and the cycles given so far, in order."""

    arm: str
    cycles: tuple[CycleDose, ...] = Field(max_length=20)
    protocol: str | None = None


Action = Literal["full", "reduced", "stop"]
Limiting = Literal["kidney", "marrow", "cycles"]


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


def _governing_kidney_dose(cycle: CycleDose, kidney: str) -> float | None:
    """The kidney dose the limit applies to: mean of both (default), left, right or worse."""
    left, right = cycle.left_kidney_dose_gy, cycle.right_kidney_dose_gy
    if kidney == "mean" and cycle.kidney_dose_gy is not None:
        return cycle.kidney_dose_gy
    if kidney in ("left", "right"):
        return left if kidney == "left" else right
    if left is None or right is None:
        return None
    return (left + right) / 2 if kidney == "mean" else max(left, right)


def _required(values: list[float | None], field: str, rule: str) -> tuple[float, ...]:
    for index, value in enumerate(values):
        if value is None:
            raise InvalidInputError(f"cycles[{index}].{field}", None, rule)
    return tuple(v for v in values if v is not None)


@dataclass(frozen=True)
class DoseHistory:
    """The doses of the cycles given so far, as the limits read them."""

    activities_gbq: tuple[float, ...]
    kidney_gy: tuple[float, ...]
    kidney_bed_gy: tuple[float, ...]
    kidney_half_life_h: float | None
    marrow_gy: tuple[float, ...]
    kidney_rise_per_cycle: float = 0.0

    @classmethod
    def from_cycles(
        cls, cycles: tuple[CycleDose, ...], protocol: Protocol, *, guided: bool
    ) -> DoseHistory:
        """Collect the doses; a dosimetry-guided arm needs every one its limits read."""
        limit = protocol.renal_limit
        kidney = [_governing_kidney_dose(c, limit.kidney) for c in cycles]
        if not guided and None in kidney:
            return cls(tuple(c.activity_gbq for c in cycles), (), (), None, ())
        rise = limit.kidney_gy_per_gbq_rise_per_cycle
        kidney_gy = _required(
            kidney,
            "kidney_dose_gy",
            f"the dosimetry-guided plan needs the {limit.kidney} kidney dose of every cycle",
        )
        beds: tuple[float, ...] = ()
        half_life = None
        if limit.quantity == "BED" and cycles:
            half_lives = _required(
                [c.kidney_effective_half_life_h for c in cycles],
                "kidney_effective_half_life_h",
                "a BED limit needs each cycle's kidney effective half-life",
            )
            beds = tuple(
                _cycle_bed(d, t, limit) for d, t in zip(kidney_gy, half_lives, strict=True)
            )
            half_life = half_lives[-1]
        marrow: tuple[float, ...] = ()
        if protocol.marrow_limit is not None and guided:
            marrow = _required(
                [c.marrow_dose_gy for c in cycles],
                "marrow_dose_gy",
                "the protocol has a marrow limit",
            )
        activities = tuple(c.activity_gbq for c in cycles)
        return cls(activities, kidney_gy, beds, half_life, marrow, kidney_rise_per_cycle=rise)

    def _per_gbq(self, doses: tuple[float, ...]) -> float | None:
        return doses[-1] / self.activities_gbq[-1] if doses else None

    @property
    def kidney_gy_per_gbq(self) -> float | None:
        """The next cycle's predicted kidney Gy/GBq: the latest cycle's, raised by the
        protocol's expected rise per cycle (0 in START-01 v1.0; ~8 %/cycle was seen in LUMEN,
        REFERENCE.md)."""
        latest = self._per_gbq(self.kidney_gy)
        return None if latest is None else latest * (1.0 + self.kidney_rise_per_cycle)

    @property
    def marrow_gy_per_gbq(self) -> float | None:
        return self._per_gbq(self.marrow_gy)

    def allowed_activity_gbq(self, protocol: Protocol) -> dict[Limiting, float]:
        """The largest next activity each dose limit allows (before rounding)."""
        limit = protocol.renal_limit
        kidney_rate = self.kidney_gy_per_gbq
        if kidney_rate is None:
            return {}
        if limit.quantity == "AD":
            budget = limit.limit_gy - sum(self.kidney_gy)
        else:
            assert self.kidney_half_life_h is not None
            budget = dose_for_bed_gy(
                max(limit.limit_gy - sum(self.kidney_bed_gy), 0.0),
                self.kidney_half_life_h,
                limit.alpha_beta_gy,
                limit.repair_half_time_h,
            )
        allowed: dict[Limiting, float] = {"kidney": _activity_for(budget, kidney_rate)}
        marrow_rate = self.marrow_gy_per_gbq
        if protocol.marrow_limit is not None and marrow_rate is not None:
            marrow_budget = protocol.marrow_limit.limit_gy - sum(self.marrow_gy)
            allowed["marrow"] = _activity_for(marrow_budget, marrow_rate)
        return allowed

    def predictions(
        self, activity_gbq: float, full_gbq: float, limit: RenalLimit
    ) -> dict[str, float | None]:
        """Cumulative doses so far and predicted after a next cycle of `activity_gbq`."""
        kidney_rate, marrow_rate = self.kidney_gy_per_gbq, self.marrow_gy_per_gbq

        def after(doses: tuple[float, ...], rate: float | None, gbq: float) -> float | None:
            return None if rate is None else round(sum(doses) + rate * gbq, 4)

        predicted_bed = None
        if self.kidney_bed_gy and kidney_rate is not None and self.kidney_half_life_h:
            next_bed = _cycle_bed(kidney_rate * activity_gbq, self.kidney_half_life_h, limit)
            predicted_bed = round(sum(self.kidney_bed_gy) + next_bed, 4)
        return {
            "kidney_gy_per_gbq": None if kidney_rate is None else round(kidney_rate, 5),
            "cumulative_kidney_gy": round(sum(self.kidney_gy), 4) if self.kidney_gy else None,
            "predicted_cumulative_kidney_gy": after(self.kidney_gy, kidney_rate, activity_gbq),
            "predicted_cumulative_kidney_gy_full_cycle": after(
                self.kidney_gy, kidney_rate, full_gbq
            ),
            "cumulative_kidney_bed_gy": round(sum(self.kidney_bed_gy), 4)
            if self.kidney_bed_gy
            else None,
            "predicted_cumulative_kidney_bed_gy": predicted_bed,
            "cumulative_marrow_gy": round(sum(self.marrow_gy), 4) if self.marrow_gy else None,
            "predicted_cumulative_marrow_gy": after(self.marrow_gy, marrow_rate, activity_gbq),
        }


def _activity_for(budget_gy: float, gy_per_gbq: float) -> float:
    return math.inf if gy_per_gbq <= 0 else max(budget_gy, 0.0) / gy_per_gbq


def _worse_kidney(
    cycles: tuple[CycleDose, ...],
) -> tuple[Literal["left", "right"] | None, float | None]:
    """The kidney with the higher cumulative dose, when both sides were measured every cycle."""
    left = [c.left_kidney_dose_gy for c in cycles]
    right = [c.right_kidney_dose_gy for c in cycles]
    if not cycles or None in left or None in right:
        return None, None
    total_left = sum(d or 0.0 for d in left)
    total_right = sum(d or 0.0 for d in right)
    if total_left >= total_right:
        return "left", round(total_left, 4)
    return "right", round(total_right, 4)


def _cycle_bed(dose_gy: float, half_life_h: float, limit: RenalLimit) -> float:
    return bed_mono_exponential_gy(
        dose_gy, half_life_h, limit.alpha_beta_gy, limit.repair_half_time_h
    )


def _floor_to_step(activity_gbq: float, step_gbq: float) -> float:
    """Round down to the dispensing step (never up: rounding must not cross a limit)."""
    steps = math.floor(activity_gbq / step_gbq + 1e-9)
    return round(steps * step_gbq, 6)


def _decide(
    allowed: dict[Limiting, float], protocol: Protocol
) -> tuple[Action, float, Limiting | None]:
    """Full when every limit allows a full cycle; else the limiting activity rounded down,
    or stop when that falls under the minimum (or a cycle count is exhausted)."""
    treatment = protocol.treatment
    full = treatment.activity_per_cycle_gbq
    if not allowed or min(allowed.values()) >= full:
        return "full", full, None
    limiting = min(allowed, key=lambda key: allowed[key])
    activity = _floor_to_step(allowed[limiting], treatment.activity_step_gbq)
    if limiting == "cycles" or activity < treatment.minimum_activity_gbq:
        return "stop", 0.0, limiting
    return "reduced", activity, limiting


def plan_next_cycle(arm_id: str, cycles: tuple[CycleDose, ...], protocol: Protocol) -> CyclePlan:
    """Plan the next cycle for a patient of arm `arm_id` who has had `cycles` (in order)."""
    arm = protocol.arm(arm_id)
    full = protocol.treatment.activity_per_cycle_gbq
    history = DoseHistory.from_cycles(cycles, protocol, guided=arm.dosimetry_guided)
    warnings: list[str] = []
    if arm.fixed_cycles is not None:
        allowed: dict[Limiting, float] = {"cycles": full if len(cycles) < arm.fixed_cycles else 0.0}
        over = history.allowed_activity_gbq(protocol).get("kidney", math.inf) < full
        if over and allowed["cycles"]:
            warnings.append(
                f"the {arm.id} arm gives {arm.fixed_cycles} cycles regardless of dose; the "
                f"predicted cumulative kidney dose exceeds {protocol.renal_limit.limit_gy:g} Gy"
            )
    else:
        allowed = history.allowed_activity_gbq(protocol)
        cap = protocol.treatment.max_personalized_cycles
        if cap is not None and len(cycles) >= cap:
            allowed["cycles"] = 0.0
    action, activity, limiting = _decide(allowed, protocol)
    values = history.predictions(activity, full, protocol.renal_limit)
    worse_side, worse_total = _worse_kidney(cycles)
    return CyclePlan(
        kind="cycle_plan",
        protocol=protocol.label,
        rule=_rule_text(protocol, arm.fixed_cycles),
        inputs={"arm": arm_id, "cycles": [c.model_dump(mode="json") for c in cycles]},
        next_cycle=len(cycles) + 1,
        action=action,
        activity_gbq=activity,
        reason=_reason(action, limiting, activity, values, protocol, arm.fixed_cycles),
        worse_kidney=worse_side,
        worse_kidney_cumulative_gy=worse_total,
        limiting=limiting,
        warnings=tuple(warnings),
        **values,
    )


def _rule_text(protocol: Protocol, fixed_cycles: int | None) -> str:
    treatment, limit = protocol.treatment, protocol.renal_limit
    if fixed_cycles is not None:
        return (
            f"{fixed_cycles} cycles x {treatment.activity_per_cycle_gbq:g} GBq regardless of dose"
        )
    text = (
        f"cumulative kidney {limit.quantity} ({limit.kidney} kidney) <= {limit.limit_gy:g} Gy; "
        f"next dose = activity x latest Gy/GBq; reduced activity rounded down to "
        f"{treatment.activity_step_gbq:g} GBq, minimum {treatment.minimum_activity_gbq:g} GBq"
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
) -> str:
    limit = protocol.renal_limit
    full = protocol.treatment.activity_per_cycle_gbq
    if fixed_cycles is not None:
        if action == "full":
            return f"standard arm: {fixed_cycles} cycles of {full:g} GBq regardless of dose"
        return f"standard arm: all {fixed_cycles} cycles given"
    if values["kidney_gy_per_gbq"] is None:
        return f"first cycle: {full:g} GBq; kidney dosimetry follows this cycle"
    if limiting == "cycles":
        return "the protocol's maximum number of personalized cycles is reached"
    if limiting == "marrow" and protocol.marrow_limit is not None:
        organ, unit, limit_gy = "bone-marrow dose", "Gy", protocol.marrow_limit.limit_gy
        predicted = values["predicted_cumulative_marrow_gy"]
    else:
        unit = "Gy BED" if limit.quantity == "BED" else "Gy"
        organ, limit_gy = f"kidney {limit.quantity}", limit.limit_gy
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
