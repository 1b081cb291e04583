"""The cumulative kidney (and bone-marrow) dose ledger of one patient, cycle by cycle.

Per cycle: absorbed dose (Gy) and Gy/GBq of each kidney and their mean, kidney BED, marrow dose.
Cumulative absorbed doses add over cycles; so do BEDs of cycles weeks apart (Wessels et al.,
MIRD Pamphlet No. 20, J Nucl Med 2008;49:1884). The ledger's `planner_cycles` are the input of
the protocol's cycle planner (`startrt plan-cycle`), which applies the protocol's limit to the
kidney it names (default: the mean of both; the worse kidney is reported).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from startrt.validation import InvalidInputError, require_non_negative, require_positive

Kidney = Literal["left", "right", "mean", "worse"]
ACTIVITY_GBQ_MAX = 15.0
KIDNEY_DOSE_GY_MAX = 100.0


def of_kidney(left: float, right: float, kidney: Kidney) -> float:
    """The value of the named kidney: left, right, the mean of both, or the worse (higher)."""
    if kidney == "mean":
        return (left + right) / 2
    if kidney == "worse":
        return max(left, right)
    return left if kidney == "left" else right


@dataclass(frozen=True)
class KidneyDose:
    """One kidney in one cycle: absorbed dose and (when the kinetics allow) BED, in Gy."""

    dose_gy: float
    bed_gy: float | None = None

    def __post_init__(self) -> None:
        dose = require_non_negative("dose_gy", self.dose_gy, "Gy")
        if dose > KIDNEY_DOSE_GY_MAX:
            raise InvalidInputError(
                "dose_gy", dose, f"a cycle's kidney dose must be <= {KIDNEY_DOSE_GY_MAX:g} Gy"
            )
        if self.bed_gy is not None and require_non_negative("bed_gy", self.bed_gy, "Gy") < dose:
            raise InvalidInputError(
                "bed_gy", self.bed_gy, f"BED cannot be below the dose {dose:g} Gy"
            )


@dataclass(frozen=True)
class CycleDosimetry:
    """The dosimetry of one administered cycle."""

    cycle: int
    activity_gbq: float
    left_kidney: KidneyDose
    right_kidney: KidneyDose
    kidney_effective_half_life_h: float | None = None
    marrow_dose_gy: float | None = None

    def __post_init__(self) -> None:
        if self.cycle < 1:
            raise InvalidInputError("cycle", self.cycle, "cycles are numbered from 1")
        activity = require_positive("activity_gbq", self.activity_gbq, "GBq")
        if activity > ACTIVITY_GBQ_MAX:
            raise InvalidInputError(
                "activity_gbq", activity, f"must be <= {ACTIVITY_GBQ_MAX:g} GBq"
            )
        if self.marrow_dose_gy is not None:
            require_non_negative("marrow_dose_gy", self.marrow_dose_gy, "Gy")

    def dose_gy(self, kidney: Kidney) -> float:
        """Dose of the named kidney: left, right, mean of both, or the worse of the two."""
        left, right = self.left_kidney.dose_gy, self.right_kidney.dose_gy
        return {
            "left": left,
            "right": right,
            "mean": (left + right) / 2,
            "worse": max(left, right),
        }[kidney]

    def gy_per_gbq(self, kidney: Kidney) -> float:
        return self.dose_gy(kidney) / self.activity_gbq

    def bed_gy(self, kidney: Kidney) -> float | None:
        left, right = self.left_kidney.bed_gy, self.right_kidney.bed_gy
        if left is None or right is None:
            return None
        return {
            "left": left,
            "right": right,
            "mean": (left + right) / 2,
            "worse": max(left, right),
        }[kidney]


@dataclass(frozen=True)
class DoseLedger:
    """All cycles of one patient, in order (cycle numbers 1, 2, 3, ...)."""

    cycles: tuple[CycleDosimetry, ...] = ()

    def __post_init__(self) -> None:
        for index, cycle in enumerate(self.cycles):
            if cycle.cycle != index + 1:
                raise InvalidInputError(
                    f"cycles[{index}].cycle",
                    cycle.cycle,
                    f"expected cycle {index + 1}: in order, none missing",
                )

    def add(self, cycle: CycleDosimetry) -> DoseLedger:
        """The ledger with one more cycle (numbered next)."""
        return replace(self, cycles=(*self.cycles, cycle))

    def cumulative_gy(self, kidney: Kidney = "mean") -> float:
        """Cumulative absorbed dose; for "worse", the kidney with the higher total."""
        if kidney == "worse":
            return max(self.cumulative_gy("left"), self.cumulative_gy("right"))
        return sum(cycle.dose_gy(kidney) for cycle in self.cycles)

    def cumulative_bed_gy(self, kidney: Kidney = "mean") -> float | None:
        """Cumulative BED (None when a cycle lacks BED)."""
        if kidney == "worse":
            left, right = self.cumulative_bed_gy("left"), self.cumulative_bed_gy("right")
            return None if left is None or right is None else max(left, right)
        beds = [cycle.bed_gy(kidney) for cycle in self.cycles]
        return None if None in beds else sum(b for b in beds if b is not None)

    def worse_kidney(self) -> Literal["left", "right"]:
        return "left" if self.cumulative_gy("left") >= self.cumulative_gy("right") else "right"

    def predicted_cumulative_gy(self, activity_gbq: float, kidney: Kidney = "mean") -> float:
        """Cumulative dose after a further cycle of `activity_gbq`, at the latest Gy/GBq."""
        activity = require_non_negative("activity_gbq", activity_gbq, "GBq")
        if not self.cycles:
            raise InvalidInputError("cycles", (), "no dosimetry yet: nothing to predict from")
        side = self.worse_kidney() if kidney == "worse" else kidney
        return self.cumulative_gy(side) + self.cycles[-1].gy_per_gbq(side) * activity

    def marrow_cumulative_gy(self) -> float | None:
        doses = [cycle.marrow_dose_gy for cycle in self.cycles]
        return None if not doses or None in doses else sum(d for d in doses if d is not None)

    def rows(self) -> list[dict[str, float | int | None]]:
        """One row per cycle with per-cycle and cumulative values, as a physicist reads them."""
        rows: list[dict[str, float | int | None]] = []
        for index, cycle in enumerate(self.cycles):
            so_far = DoseLedger(self.cycles[: index + 1])
            rows.append(
                {
                    "cycle": cycle.cycle,
                    "activity_gbq": cycle.activity_gbq,
                    "left_kidney_dose_gy": cycle.dose_gy("left"),
                    "right_kidney_dose_gy": cycle.dose_gy("right"),
                    "mean_kidney_gy": cycle.dose_gy("mean"),
                    "left_gy_per_gbq": cycle.gy_per_gbq("left"),
                    "right_gy_per_gbq": cycle.gy_per_gbq("right"),
                    "mean_gy_per_gbq": cycle.gy_per_gbq("mean"),
                    "cumulative_left_gy": so_far.cumulative_gy("left"),
                    "cumulative_right_gy": so_far.cumulative_gy("right"),
                    "cumulative_mean_gy": so_far.cumulative_gy("mean"),
                    "cumulative_mean_bed_gy": so_far.cumulative_bed_gy("mean"),
                    "marrow_dose_gy": cycle.marrow_dose_gy,
                }
            )
        return rows

    def planner_cycles(self) -> list[dict[str, float | None]]:
        """The cycles in the input format of the protocol's cycle planner (`plan-cycle`)."""
        return [
            {
                "activity_gbq": cycle.activity_gbq,
                "kidney_dose_gy": cycle.dose_gy("mean"),
                "left_kidney_dose_gy": cycle.dose_gy("left"),
                "right_kidney_dose_gy": cycle.dose_gy("right"),
                "marrow_dose_gy": cycle.marrow_dose_gy,
                "kidney_effective_half_life_h": cycle.kidney_effective_half_life_h,
            }
            for cycle in self.cycles
        ]


class LedgerRecord(BaseModel):
    """One cycle of a ledger as stored (JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cycle: int
    activity_gbq: float
    left_kidney_dose_gy: float
    right_kidney_dose_gy: float
    left_kidney_bed_gy: float | None = None
    right_kidney_bed_gy: float | None = None
    kidney_effective_half_life_h: float | None = None
    marrow_dose_gy: float | None = None

    def to_cycle(self) -> CycleDosimetry:
        return CycleDosimetry(
            cycle=self.cycle,
            activity_gbq=self.activity_gbq,
            left_kidney=KidneyDose(self.left_kidney_dose_gy, self.left_kidney_bed_gy),
            right_kidney=KidneyDose(self.right_kidney_dose_gy, self.right_kidney_bed_gy),
            kidney_effective_half_life_h=self.kidney_effective_half_life_h,
            marrow_dose_gy=self.marrow_dose_gy,
        )

    @classmethod
    def of(cls, cycle: CycleDosimetry) -> LedgerRecord:
        return cls(
            cycle=cycle.cycle,
            activity_gbq=cycle.activity_gbq,
            left_kidney_dose_gy=cycle.left_kidney.dose_gy,
            right_kidney_dose_gy=cycle.right_kidney.dose_gy,
            left_kidney_bed_gy=cycle.left_kidney.bed_gy,
            right_kidney_bed_gy=cycle.right_kidney.bed_gy,
            kidney_effective_half_life_h=cycle.kidney_effective_half_life_h,
            marrow_dose_gy=cycle.marrow_dose_gy,
        )


def ledger_from_records(records: Sequence[Mapping[str, object]]) -> DoseLedger:
    """A ledger from its stored records; errors name the record and the field."""
    cycles = []
    for index, record in enumerate(records):
        try:
            cycles.append(LedgerRecord.model_validate(record).to_cycle())
        except ValidationError as error:
            problem = error.errors()[0]
            field = ".".join(str(part) for part in problem["loc"])
            raise InvalidInputError(
                f"cycles[{index}].{field}", problem.get("input"), problem["msg"]
            ) from None
    return DoseLedger(tuple(cycles))


def ledger_records(ledger: DoseLedger) -> list[dict[str, object]]:
    """The stored form of a ledger: one record per cycle."""
    return [LedgerRecord.of(cycle).model_dump() for cycle in ledger.cycles]
