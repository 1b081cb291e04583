"""Whether a planned activity departs from the protocol, and why.

The physicist may plan another activity than the planner's proposal (`plan_next_cycle`).
`check_planned_activity` says whether that activity is a protocol deviation (which the
investigator must sign before the cycle is given) and names what it exceeds:

- `above_proposal`: more than the planner proposed;
- `kidney_limit`: the predicted cumulative kidney dose after it exceeds the renal limit. AD:
  the plan's cumulative dose + activity x the plan's kidney Gy/GBq; BED: the plan's cumulative
  BED + the BED of that dose at the latest cycle's kidney effective half-life;
- `marrow_limit`: the predicted cumulative bone-marrow dose (the cycles' marrow doses + activity
  x the latest cycle's marrow Gy/GBq) exceeds the protocol's marrow limit;
- `dosimetry_missing`: after a given cycle, a dose a limit reads is missing (no kidney Gy/GBq,
  no effective half-life for a BED limit, no marrow dose for a marrow limit): the limit cannot
  be checked, so the plan is a deviation too.

At the limit is within it (<=), as in the planner. Sums are exact decimals of the plan's
values, compared to the mGy: the plan's Gy/GBq carries 5 decimals, so at most 15 GBq moves a
prediction by less than 0.1 mGy.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Any

from startrt.dosimetry.bed import bed_mono_exponential_gy
from startrt.protocol.cycle_planning import CyclePlan
from startrt.protocol.decision import Decision
from startrt.protocol.definition import Protocol
from startrt.validation import InvalidInputError

MGY = Decimal("0.001")


class DeviationKind(StrEnum):
    """What a recorded protocol deviation of a cycle concerns (web records, analysis dataset)."""

    WINDOW = "window"  # the cycle's date lies outside its protocol window
    ACTIVITY = "activity"  # the planned activity (check_planned_activity)


class Exceeded(StrEnum):
    """What a planned activity exceeds (or cannot be checked against)."""

    ABOVE_PROPOSAL = "above_proposal"
    KIDNEY_LIMIT = "kidney_limit"
    MARROW_LIMIT = "marrow_limit"
    DOSIMETRY_MISSING = "dosimetry_missing"


class ActivityCheck(Decision):
    """A planned activity against the planner's proposal and the protocol's dose limits."""

    next_cycle: int
    activity_gbq: float
    proposed_activity_gbq: float
    exceeded: tuple[Exceeded, ...]
    kidney_gy_per_gbq: float | None
    cumulative_kidney_gy: float | None
    predicted_cumulative_kidney_gy: float | None
    predicted_cumulative_kidney_bed_gy: float | None
    predicted_cumulative_marrow_gy: float | None
    message: str

    @property
    def deviation(self) -> bool:
        """Whether the planned activity is a protocol deviation."""
        return bool(self.exceeded)


def _decimal(value: float) -> Decimal:
    return Decimal(str(value))


def _gy(value: Decimal) -> float:
    return float(value.quantize(MGY, rounding=ROUND_HALF_EVEN))


def _latest_cycle(plan: CyclePlan) -> dict[str, Any] | None:
    cycles = plan.inputs.get("cycles") or []
    return dict(cycles[-1]) if cycles else None


def _kidney_findings(
    plan: CyclePlan, activity: Decimal, protocol: Protocol
) -> tuple[Decimal | None, Decimal | None, list[Exceeded], list[str]]:
    """The predicted cumulative kidney AD and BED (None when not predictable) and what they
    exceed: the limit, or (after a given cycle) nothing to check it with."""
    limit = protocol.renal_limit
    rate = plan.kidney_gy_per_gbq
    kidney = bed = None
    if rate is not None and rate > 0:
        dose = _decimal(rate) * activity
        kidney = _decimal(plan.cumulative_kidney_gy or 0.0) + dose
        latest = _latest_cycle(plan)
        half_life = None if latest is None else latest.get("kidney_effective_half_life_h")
        if limit.quantity == "BED" and half_life is not None:
            next_bed = bed_mono_exponential_gy(
                float(dose), half_life, limit.alpha_beta_gy, limit.repair_half_time_h
            )
            bed = _decimal(plan.cumulative_kidney_bed_gy or 0.0) + _decimal(next_bed)
    governed = kidney if limit.quantity == "AD" else bed
    unit = _unit(protocol)
    if governed is None:
        if plan.next_cycle == 1:  # before any cycle: nothing given, nothing measured yet
            return kidney, bed, [], []
        text = f"the kidney {limit.quantity} limit cannot be checked (no Gy/GBq or half-life)"
        return kidney, bed, [Exceeded.DOSIMETRY_MISSING], [text]
    if _gy(governed) <= limit.limit_gy:
        return kidney, bed, [], []
    text = (
        f"the predicted cumulative kidney {limit.quantity} after it, {_gy(governed):g} {unit}, "
        f"exceeds the limit of {limit.limit_gy:g} {unit}"
    )
    return kidney, bed, [Exceeded.KIDNEY_LIMIT], [text]


def _marrow_findings(
    plan: CyclePlan, activity: Decimal, protocol: Protocol
) -> tuple[Decimal | None, list[Exceeded], list[str]]:
    """The predicted cumulative marrow dose (None when a cycle lacks its marrow dose) and
    what it exceeds under the protocol's marrow limit, if any."""
    cycles = plan.inputs.get("cycles") or []
    doses = [cycle.get("marrow_dose_gy") for cycle in cycles]
    marrow = None
    if cycles and all(doses):  # a marrow dose of 0 is missing, as the planner reads it
        rate = _decimal(doses[-1]) / _decimal(cycles[-1]["activity_gbq"])
        marrow = sum((_decimal(dose) for dose in doses), Decimal(0)) + rate * activity
    if protocol.marrow_limit is None:
        return marrow, [], []
    limit_gy = protocol.marrow_limit.limit_gy
    if marrow is None:
        if plan.next_cycle == 1:
            return None, [], []
        text = "the marrow limit cannot be checked (a cycle without its marrow dose)"
        return None, [Exceeded.DOSIMETRY_MISSING], [text]
    if _gy(marrow) <= limit_gy:
        return marrow, [], []
    text = (
        f"the predicted cumulative marrow dose after it, {_gy(marrow):g} Gy, exceeds the "
        f"limit of {limit_gy:g} Gy"
    )
    return marrow, [Exceeded.MARROW_LIMIT], [text]


def _unit(protocol: Protocol) -> str:
    return "Gy" if protocol.renal_limit.quantity == "AD" else "Gy BED"


def _rule_text(protocol: Protocol) -> str:
    limit = protocol.renal_limit
    marrow = protocol.marrow_limit
    text = (
        "a planned activity is a protocol deviation above the planner's proposal, past the "
        f"cumulative kidney {limit.quantity} limit of {limit.limit_gy:g} {_unit(protocol)}"
    )
    if marrow is not None:
        text += f" or the marrow limit of {marrow.limit_gy:g} Gy"
    return text + (
        ", or when a dose a limit reads is missing; predicted = cumulative + activity x the "
        "plan's Gy/GBq"
    )


def check_planned_activity(
    plan: CyclePlan, activity_gbq: float, protocol: Protocol
) -> ActivityCheck:
    """Whether planning `activity_gbq` (GBq, > 0) for `plan`'s cycle instead of the planner's
    proposal is a protocol deviation, naming what it exceeds (module docstring)."""
    if isinstance(activity_gbq, bool) or not activity_gbq > 0:
        raise InvalidInputError("activity_gbq", activity_gbq, "must be > 0 GBq")
    activity = _decimal(activity_gbq)
    exceeded: list[Exceeded] = []
    found: list[str] = []
    if activity > _decimal(plan.activity_gbq):
        exceeded.append(Exceeded.ABOVE_PROPOSAL)
        found.append(
            f"{activity_gbq:g} GBq is above the planner's {plan.activity_gbq:g} GBq ({plan.action})"
        )
    kidney, bed, kidney_exceeded, kidney_found = _kidney_findings(plan, activity, protocol)
    marrow, marrow_exceeded, marrow_found = _marrow_findings(plan, activity, protocol)
    for kind in (*kidney_exceeded, *marrow_exceeded):
        if kind not in exceeded:
            exceeded.append(kind)
    found += kidney_found + marrow_found
    return ActivityCheck(
        kind="activity_check",
        protocol=protocol.label,
        rule=_rule_text(protocol),
        inputs={"plan": plan.model_dump(mode="json"), "activity_gbq": activity_gbq},
        next_cycle=plan.next_cycle,
        activity_gbq=activity_gbq,
        proposed_activity_gbq=plan.activity_gbq,
        exceeded=tuple(exceeded),
        kidney_gy_per_gbq=plan.kidney_gy_per_gbq,
        cumulative_kidney_gy=plan.cumulative_kidney_gy,
        predicted_cumulative_kidney_gy=None if kidney is None else _gy(kidney),
        predicted_cumulative_kidney_bed_gy=None if bed is None else _gy(bed),
        predicted_cumulative_marrow_gy=None if marrow is None else _gy(marrow),
        message="; ".join(found)
        or f"{activity_gbq:g} GBq is within the planner's proposal and the dose limits",
    )
