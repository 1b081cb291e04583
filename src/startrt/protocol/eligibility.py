"""Eligibility: every inclusion and exclusion criterion of the protocol evaluated from a
screening record, each with met / not met / missing and the value and threshold used.

Inclusion criteria must all be met; an exclusion criterion that is met excludes. The patient is
eligible (True) only when nothing is missing; ineligible (False) as soon as one inclusion is not
met or one exclusion is met, whatever else is missing; otherwise undecided (None).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from startrt.protocol.criteria import Criterion, CriterionResult, Status, Value, evaluate
from startrt.protocol.decision import Decision
from startrt.protocol.definition import Protocol
from startrt.protocol.screening import ScreeningRecord, screening_values


class EligibilityCriterion(BaseModel):
    """One criterion's outcome as a monitor verifies it."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["inclusion", "exclusion"]
    id: str
    text: str
    status: Status
    value: Value
    threshold: str
    judgement: bool
    blocks_eligibility: bool


class EligibilityDecision(Decision):
    eligible: bool | None
    criteria: tuple[EligibilityCriterion, ...]
    derived: dict[str, Value]
    warnings: tuple[str, ...]

    def failing(self) -> tuple[EligibilityCriterion, ...]:
        """Criteria that make the patient ineligible."""
        return tuple(c for c in self.criteria if c.blocks_eligibility)

    def missing(self) -> tuple[EligibilityCriterion, ...]:
        return tuple(c for c in self.criteria if c.status is Status.MISSING)


def _outcome(
    kind: Literal["inclusion", "exclusion"], result: CriterionResult
) -> EligibilityCriterion:
    blocking = Status.NOT_MET if kind == "inclusion" else Status.MET
    return EligibilityCriterion(
        kind=kind,
        **result.model_dump(),
        blocks_eligibility=result.status is blocking,
    )


def _evaluate_all(
    kind: Literal["inclusion", "exclusion"],
    criteria: tuple[Criterion, ...],
    values: dict[str, Value],
) -> list[EligibilityCriterion]:
    return [_outcome(kind, evaluate(criterion, values)) for criterion in criteria]


def assess_eligibility(record: ScreeningRecord, protocol: Protocol) -> EligibilityDecision:
    """Evaluate every criterion of `protocol` on `record`; see the module docstring for the rule."""
    values, warnings = screening_values(record, protocol.gfr.agreement_threshold)
    outcomes = _evaluate_all("inclusion", protocol.eligibility.inclusion, values)
    outcomes += _evaluate_all("exclusion", protocol.eligibility.exclusion, values)
    eligible: bool | None
    if any(c.blocks_eligibility for c in outcomes):
        eligible = False
    elif any(c.status is Status.MISSING for c in outcomes):
        eligible = None
    else:
        eligible = True
    derived = {key: values[key] for key in values if key not in ScreeningRecord.model_fields}
    return EligibilityDecision(
        kind="eligibility",
        protocol=protocol.label,
        rule="all inclusion criteria met and no exclusion criterion met",
        inputs=record.model_dump(mode="json"),
        eligible=eligible,
        criteria=tuple(outcomes),
        derived=derived,
        warnings=tuple(warnings),
    )
