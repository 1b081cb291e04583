"""Eligibility: every inclusion and exclusion criterion of the protocol evaluated from a
screening record, each with met / not met / missing and the value and threshold used.

Inclusion criteria must all be met; an exclusion criterion that is met excludes. The patient is
eligible (True) only when nothing is missing; ineligible (False) as soon as one inclusion is not
met or one exclusion is met, whatever else is missing; otherwise undecided (None).

`verdict_text` says the decision in one line for people: the failing criteria first (value with
its unit and the rule it breaks), then what is missing (labels and units from `startrt.fields`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from startrt import fields
from startrt.protocol.criteria import (
    NOT_APPLICABLE,
    Criterion,
    CriterionResult,
    Status,
    Value,
    evaluate,
)
from startrt.protocol.decision import Decision
from startrt.protocol.definition import Protocol
from startrt.protocol.screening import ScreeningRecord, screening_values

# derived screening values whose label the unit suffix cannot give
fields.register(
    "progression_months_before_screening", "Progression imaging before screening", "months", 1
)
fields.register("sstr_pet_months_before_screening", "SSTR-PET before screening", "months", 1)
fields.register("non_ssa_therapy_washout_weeks", "Washout of non-SSA therapy", "weeks", 1)

_SYMBOLS = ((">=", "≥"), ("<=", "≤"), (" x ", " × "))


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
    field: str = ""
    missing_fields: tuple[str, ...] = ()

    def value_text(self) -> str:
        """The value for people, rounded, with its unit (`startrt.fields`): "38 mL/min/1.73
        m²", "Yes", "not applicable", "—" when missing."""
        if self.value == NOT_APPLICABLE or not self.field:
            return fields.display(self.value)
        return fields.format_value(self.field, self.value, with_unit=True)

    def rule_text(self) -> str:
        """The protocol's threshold as people write it: "≥ 50", "< 3 × ULN"."""
        text = self.threshold
        for ascii_text, symbol in _SYMBOLS:
            text = text.replace(ascii_text, symbol)
        return text


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

    def for_review(self) -> tuple[EligibilityCriterion, ...]:
        """Every criterion, the failing ones first, then the missing ones, then the rest (each
        group in protocol order)."""
        rest = tuple(c for c in self.criteria if not c.blocks_eligibility)
        missing = tuple(c for c in rest if c.status is Status.MISSING)
        return (*self.failing(), *missing, *(c for c in rest if c.status is not Status.MISSING))


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


def _failing_text(criterion: EligibilityCriterion) -> str:
    """ "GFR 38 mL/min/1.73 m² (inclusion: > 50)"; a yes/no criterion by its protocol text:
    "Earlier PRRT: yes (exclusion)"."""
    if isinstance(criterion.value, bool) or not criterion.field:
        return f"{criterion.text}: {criterion.value_text().lower()} ({criterion.kind})"
    label = fields.meta(criterion.field).label
    return f"{label} {criterion.value_text()} ({criterion.kind}: {criterion.rule_text()})"


def _missing_labels(decision: EligibilityDecision) -> list[str]:
    """The labels (with units) of every missing input, each once, in protocol order."""
    names: dict[str, None] = {}
    for criterion in decision.missing():
        for name in criterion.missing_fields or (criterion.field or criterion.text,):
            names.setdefault(name)
    return [fields.label(name) for name in names]


def verdict_text(decision: EligibilityDecision) -> str:
    """The decision in one line, failing criteria first, then missing inputs, e.g.
    "Not eligible: GFR 38 mL/min/1.73 m² (inclusion: > 50)",
    "Undecided: missing Platelets (10⁹/L), Albumin (g/L)",
    "Eligible: all 21 inclusion criteria met, no exclusion criterion met"."""
    missing = _missing_labels(decision)
    missing_text = "missing " + ", ".join(missing) if missing else ""
    if decision.eligible is False:
        failing = "; ".join(_failing_text(c) for c in decision.failing())
        return f"Not eligible: {failing}" + (f"; {missing_text}" if missing else "")
    if decision.eligible is None:
        return f"Undecided: {missing_text}"
    inclusion = [c for c in decision.criteria if c.kind == "inclusion"]
    not_applicable = sum(c.value == NOT_APPLICABLE for c in inclusion)
    applicable = f" ({not_applicable} not applicable)" if not_applicable else ""
    return (
        f"Eligible: all {len(inclusion)} inclusion criteria met{applicable}, "
        "no exclusion criterion met"
    )
