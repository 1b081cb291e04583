"""Criteria as data: a field of a record compared with a threshold, evaluated to met / not met /
missing with the value and threshold used, so a monitor can verify every decision."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

Value = float | bool | str | None


class Status(StrEnum):
    MET = "met"
    NOT_MET = "not met"
    MISSING = "missing"


Operator = Literal[">", ">=", "<", "<=", "between", "is_true", "is_false"]

NOT_APPLICABLE = "not applicable"


class Criterion(BaseModel):
    """One rule: `field operator threshold`, optionally relative to the lab's ULN/LLN.

    `applies_if` names a boolean field; when it is false the criterion does not apply and counts
    as met (value "not applicable"). `judgement` marks an investigator's judgement recorded as an
    input rather than computed.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    text: str
    field: str
    operator: Operator
    threshold: float | tuple[float, float] | None = None
    relative_to: Literal["uln", "lln"] | None = None
    applies_if: str | None = None
    judgement: bool = False

    @model_validator(mode="after")
    def _threshold_fits_operator(self) -> Criterion:
        if self.operator in ("is_true", "is_false"):
            if self.threshold is not None or self.relative_to is not None:
                raise ValueError(f"criterion {self.id}: {self.operator} takes no threshold")
        elif self.operator == "between":
            if not isinstance(self.threshold, tuple) or self.threshold[0] > self.threshold[1]:
                raise ValueError(f"criterion {self.id}: between needs threshold [low, high]")
        elif not isinstance(self.threshold, int | float):
            raise ValueError(f"criterion {self.id}: {self.operator} needs a numeric threshold")
        return self

    def threshold_text(self) -> str:
        """The rule as a monitor reads it, e.g. '> 90' or '< 3 x ULN' or 'in [1, 24]'."""
        if self.operator == "is_true":
            return "yes"
        if self.operator == "is_false":
            return "no"
        if isinstance(self.threshold, tuple):
            return f"in [{self.threshold[0]:g}, {self.threshold[1]:g}]"
        scale = f" x {self.relative_to.upper()}" if self.relative_to else ""
        return f"{self.operator} {self.threshold:g}{scale}"


class CriterionResult(BaseModel):
    """Outcome of one criterion with the field read, the value and threshold used; when
    missing, the fields whose absence left it undecided (`missing_fields`). `field` is empty
    in results stored before it was kept."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    status: Status
    value: Value
    threshold: str
    judgement: bool = False
    field: str = ""
    missing_fields: tuple[str, ...] = ()


def _compare(criterion: Criterion, value: float | bool) -> bool:
    match criterion.operator:
        case "is_true":
            return value is True
        case "is_false":
            return value is False
        case "between":
            assert isinstance(criterion.threshold, tuple)
            low, high = criterion.threshold
            return low <= value <= high
    assert isinstance(criterion.threshold, int | float)
    limit = float(criterion.threshold)
    return {
        ">": value > limit,
        ">=": value >= limit,
        "<": value < limit,
        "<=": value <= limit,
    }[criterion.operator]


def evaluate(criterion: Criterion, values: Mapping[str, Value]) -> CriterionResult:
    """Evaluate `criterion` on `values` (field name -> number, bool or None for missing).

    For `relative_to`, `values` must hold `<field>_uln` / `<field>_lln`; the compared value is
    value / limit and is reported with the raw value."""

    def result(status: Status, value: Value, *missing: str) -> CriterionResult:
        return CriterionResult(
            id=criterion.id,
            text=criterion.text,
            status=status,
            value=value,
            threshold=criterion.threshold_text(),
            judgement=criterion.judgement,
            field=criterion.field,
            missing_fields=missing,
        )

    if criterion.applies_if is not None:
        applies = values.get(criterion.applies_if)
        if applies is None:
            return result(Status.MISSING, None, criterion.applies_if)
        if applies is False:
            return result(Status.MET, NOT_APPLICABLE)
    raw = values.get(criterion.field)
    if raw is None:
        return result(Status.MISSING, None, criterion.field)
    if isinstance(raw, str):
        raise TypeError(f"criterion {criterion.id}: field {criterion.field} is text, not a value")
    compared: float | bool = raw
    if criterion.relative_to is not None:
        limit_field = f"{criterion.field}_{criterion.relative_to}"
        reference = values.get(limit_field)
        if not isinstance(reference, int | float) or isinstance(reference, bool):
            return result(Status.MISSING, raw, limit_field)
        compared = float(raw) / float(reference)
    return result(Status.MET if _compare(criterion, compared) else Status.NOT_MET, raw)
