"""The treatment course of one patient: each cycle's activity and absorbed doses, defined once.

Every layer reads this model: a cycle's dosimetry becomes a `CycleDose` (`course_dosimetry`), the
web stores its fields under the same names, the planner (`cycle_planning`) plans from a `Course`,
the simulation builds one per virtual patient and the analysis dataset's dose columns come from it.

- A cycle's kidney dose is known per kidney (`left_kidney_dose_gy`, `right_kidney_dose_gy`) or,
  from a report that gives only that, as the mean of both (`kidney_dose_gy`).
- `dose_gy(kidney)` of a cycle and `cumulative_gy(kidney)` of a course for the kidney a limit
  names: the mean of both, left, right, or the worse one. The worse kidney of a course is the
  one with the higher cumulative dose (not the sum of per-cycle maxima).
- A dose may carry its standard uncertainty (`kidney_dose_sd_gy`, `left_kidney_dose_sd_gy`,
  `right_kidney_dose_sd_gy`; EANM, Gear et al., EJNMMI 2018;45:2456) and the share of its
  variance that is systematic, i.e. shared by every cycle of the patient (camera calibration,
  method; `kidney_dose_sd_systematic_share`). Without a share, the kidney-dose model's documented
  default applies (`kidney_dose_prediction`); without an SD, its default measurement error.
- Absorbed doses add over cycles; so do BEDs of cycles weeks apart (full repair in between;
  Wessels et al., MIRD Pamphlet No. 20, J Nucl Med 2008;49:1884).
- Kidney BED is computed here only, from the cycle's kidney effective half-life and the
  protocol's alpha/beta and repair half-time, for mono-exponential clearance (Dale, Br J Radiol
  1985;58:515; REFERENCE.md): BED = D (1 + D G / (alpha/beta)) with the protraction factor
  G = lambda / (mu + lambda) = T_rep / (T_rep + T_eff) (lambda = ln 2 / T_eff, mu = ln 2 / T_rep).
  Because G is rational in the half-lives, BED is computed exactly (`Fraction`) from the values
  as entered, so a limit's boundary is decided without floating-point error.

Exact arithmetic: every stored float is read as the decimal it was entered as (`exact`), so
18.7 + 5.65 + 5.65 is exactly 30.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from startrt.protocol.definition import Kidney, RenalLimit
from startrt.protocol.records import Record, parse_record

if TYPE_CHECKING:  # arrays of many patients come from the simulation; numpy not needed here
    import numpy as np

Side = Literal["mean", "left", "right"]
N = TypeVar("N", Fraction, "np.ndarray")  # exact numbers, or float arrays of many patients
ACTIVITY_GBQ_MAX = 15.0
KIDNEY_DOSE_GY_MAX = 100.0
MARROW_DOSE_GY_MAX = 20.0
PHYSICAL_HALF_LIFE_LIMIT_H = 160.0  # an effective half-life cannot exceed 177Lu's 159.5 h
KIDNEY_DOSE_SD_GY_MAX = 50.0  # a standard uncertainty above half the plausible dose is a unit error
MEAN_TOLERANCE_GY = 0.01  # a given mean may differ from (left + right) / 2 by rounding only
# the sides whose cumulative dose a limit on `kidney` reads; the limit holds for every one
GOVERNING_SIDES: Mapping[Kidney, tuple[Side, ...]] = {
    "mean": ("mean",),
    "left": ("left",),
    "right": ("right",),
    "worse": ("left", "right"),
}


@functools.lru_cache(maxsize=65536)
def exact(value: float) -> Fraction:
    """The decimal a float was entered as (its shortest repr), as an exact fraction."""
    return Fraction(repr(float(value)))


class CycleDose(Record):
    """One administered cycle: its activity and the absorbed doses its dosimetry found."""

    activity_gbq: float = Field(gt=0, le=ACTIVITY_GBQ_MAX)
    kidney_dose_gy: float | None = Field(default=None, ge=0, le=KIDNEY_DOSE_GY_MAX)
    left_kidney_dose_gy: float | None = Field(default=None, ge=0, le=KIDNEY_DOSE_GY_MAX)
    right_kidney_dose_gy: float | None = Field(default=None, ge=0, le=KIDNEY_DOSE_GY_MAX)
    marrow_dose_gy: float | None = Field(default=None, ge=0, le=MARROW_DOSE_GY_MAX)
    kidney_effective_half_life_h: float | None = Field(
        default=None, gt=0, le=PHYSICAL_HALF_LIFE_LIMIT_H
    )
    kidney_dose_sd_gy: float | None = None
    left_kidney_dose_sd_gy: float | None = None
    right_kidney_dose_sd_gy: float | None = None
    kidney_dose_sd_systematic_share: float | None = Field(
        default=None, ge=0, le=1, allow_inf_nan=False
    )

    @field_validator("kidney_dose_sd_gy", "left_kidney_dose_sd_gy", "right_kidney_dose_sd_gy")
    @classmethod
    def _standard_uncertainty(cls, value: float | None, info: ValidationInfo) -> float | None:
        if value is not None and not (math.isfinite(value) and 0 <= value <= KIDNEY_DOSE_SD_GY_MAX):
            side = str(info.field_name).removesuffix("kidney_dose_sd_gy").rstrip("_") or "mean"
            raise PydanticCustomError(
                "standard_uncertainty",
                "standard uncertainty of the {side} kidney dose: must be finite, in [0, {high}] Gy",
                {"side": side, "high": KIDNEY_DOSE_SD_GY_MAX},
            )
        return value

    @model_validator(mode="after")
    def _uncertainty_of_a_given_dose(self) -> CycleDose:
        sides: tuple[tuple[Side, str], ...] = (("mean", ""), ("left", "left_"), ("right", "right_"))
        for side, prefix in sides:
            sd = f"{prefix}kidney_dose_sd_gy"
            if getattr(self, sd) is not None and self.exact_dose_gy(side) is None:
                raise ValueError(f"{sd} (Gy) is given without the {side} kidney dose (Gy)")
        return self

    @model_validator(mode="after")
    def _mean_consistent(self) -> CycleDose:
        mean, left, right = self.kidney_dose_gy, self.left_kidney_dose_gy, self.right_kidney_dose_gy
        if mean is not None and left is not None and right is not None:
            sides_mean = (left + right) / 2
            if abs(sides_mean - mean) > MEAN_TOLERANCE_GY:
                raise ValueError(
                    f"kidney_dose_gy {mean} is not the mean of left and right ({sides_mean:.3f})"
                )
        return self

    def exact_dose_gy(self, side: Side) -> Fraction | None:
        """The dose of one side, exactly; the mean from both sides when they are known."""
        left, right = self.left_kidney_dose_gy, self.right_kidney_dose_gy
        if side == "left":
            return None if left is None else exact(left)
        if side == "right":
            return None if right is None else exact(right)
        if left is not None and right is not None:
            return (exact(left) + exact(right)) / 2
        return None if self.kidney_dose_gy is None else exact(self.kidney_dose_gy)

    def dose_sd_gy(self, side: Side) -> float | None:
        """The standard uncertainty of one side's dose (None when not given). The mean of both
        sides without its own SD takes (sd_left + sd_right) / 2: both kidneys share the
        calibration and method, so their errors are taken as fully correlated (the larger of
        the possible SDs of the mean)."""
        if side == "left":
            return self.left_kidney_dose_sd_gy
        if side == "right":
            return self.right_kidney_dose_sd_gy
        left, right = self.left_kidney_dose_sd_gy, self.right_kidney_dose_sd_gy
        if self.kidney_dose_sd_gy is None and left is not None and right is not None:
            return (left + right) / 2
        return self.kidney_dose_sd_gy

    def dose_gy(self, kidney: Kidney) -> float | None:
        """The cycle's dose of the named kidney (None when not measured); "worse" is the higher
        of the two in this cycle."""
        if kidney == "worse":
            doses = [self.exact_dose_gy(side) for side in GOVERNING_SIDES["worse"]]
            return None if None in doses else float(max(d for d in doses if d is not None))
        dose = self.exact_dose_gy(kidney)
        return None if dose is None else float(dose)

    def exact_bed_gy(self, side: Side, limit: RenalLimit) -> Fraction | None:
        """Kidney BED of this cycle (module docstring), exactly; None without the dose or the
        effective half-life."""
        dose, half_life = self.exact_dose_gy(side), self.kidney_effective_half_life_h
        if dose is None or half_life is None:
            return None
        return bed_gy(dose, exact(half_life), limit)

    @property
    def exact_activity_gbq(self) -> Fraction:
        return exact(self.activity_gbq)


def bed_gy(dose_gy: Fraction, half_life_h: Fraction, limit: RenalLimit) -> Fraction:
    """BED of one cycle, mono-exponential clearance: D (1 + D T_rep / ((T_rep + T_eff) a/b))."""
    repair = exact(limit.repair_half_time_h)
    protraction = repair / (repair + half_life_h)
    return dose_gy * (1 + dose_gy * protraction / exact(limit.alpha_beta_gy))


def predicted_gy_per_gbq(latest_dose_gy: N, latest_activity_gbq: N, rise_per_cycle: N) -> N:
    """The next cycle's predicted Gy/GBq: the latest cycle's, raised by the protocol's expected
    rise per cycle (0 in START-01 v1.0; ~8 %/cycle in LUMEN, REFERENCE.md). Exact on
    fractions; elementwise on NumPy arrays (the simulation's fast path)."""
    return latest_dose_gy / latest_activity_gbq * (1 + rise_per_cycle)  # type: ignore[no-any-return]


def allowed_activity_gbq(limit_gy: N, cumulative_gy: N, gy_per_gbq: N) -> N:
    """The activity an absorbed-dose budget allows before rounding: (limit - cumulative) /
    predicted Gy/GBq, 0 once the limit is reached. Exact on fractions; elementwise on NumPy
    arrays, where the simulation keys its tabulated plans on it."""
    remaining = limit_gy - cumulative_gy
    return remaining * (remaining > 0) / gy_per_gbq  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Course:
    """The cycles given so far, in order."""

    cycles: tuple[CycleDose, ...] = ()

    def __iter__(self) -> Iterator[CycleDose]:
        return iter(self.cycles)

    def __len__(self) -> int:
        return len(self.cycles)

    def exact_cumulative_gy(self, side: Side) -> Fraction | None:
        doses = [cycle.exact_dose_gy(side) for cycle in self.cycles]
        return None if None in doses else sum((d for d in doses if d is not None), Fraction(0))

    def exact_cumulative_bed_gy(self, side: Side, limit: RenalLimit) -> Fraction | None:
        beds = [cycle.exact_bed_gy(side, limit) for cycle in self.cycles]
        return None if None in beds else sum((b for b in beds if b is not None), Fraction(0))

    def exact_cumulative_marrow_gy(self) -> Fraction | None:
        doses = [cycle.marrow_dose_gy for cycle in self.cycles]
        if None in doses:
            return None
        return sum((exact(d) for d in doses if d is not None), Fraction(0))

    def cumulative_gy(self, kidney: Kidney = "mean") -> float | None:
        """Cumulative absorbed dose of the named kidney; for "worse", the kidney with the
        higher total. None when a cycle lacks the dose."""
        totals = [self.exact_cumulative_gy(side) for side in GOVERNING_SIDES[kidney]]
        return None if None in totals else float(max(t for t in totals if t is not None))

    def cumulative_bed_gy(self, kidney: Kidney, limit: RenalLimit) -> float | None:
        """Cumulative kidney BED (None when a cycle lacks the dose or the half-life)."""
        totals = [self.exact_cumulative_bed_gy(side, limit) for side in GOVERNING_SIDES[kidney]]
        return None if None in totals else float(max(t for t in totals if t is not None))

    def cumulative_marrow_gy(self) -> float | None:
        total = self.exact_cumulative_marrow_gy()
        return None if total is None or not self.cycles else float(total)

    def worse_kidney(self) -> tuple[Literal["left", "right"] | None, float | None]:
        """The kidney with the higher cumulative dose and that dose, when both sides were
        measured every cycle (left on a tie)."""
        left, right = self.exact_cumulative_gy("left"), self.exact_cumulative_gy("right")
        if not self.cycles or left is None or right is None:
            return None, None
        return ("left", float(left)) if left >= right else ("right", float(right))

    def rows(self, limit: RenalLimit) -> list[dict[str, float | int | None]]:
        """One row per cycle with per-cycle and cumulative values, as a physicist reads them."""
        rows: list[dict[str, float | int | None]] = []
        for index, cycle in enumerate(self.cycles):
            so_far = Course(self.cycles[: index + 1])
            row: dict[str, float | int | None] = {
                "cycle": index + 1,
                "activity_gbq": cycle.activity_gbq,
            }
            for side in ("left", "right", "mean"):
                dose = cycle.dose_gy(side)
                row[f"{side}_kidney_dose_gy"] = dose
                row[f"{side}_kidney_gy_per_gbq"] = (
                    None if dose is None else dose / cycle.activity_gbq
                )
                row[f"cumulative_{side}_kidney_dose_gy"] = so_far.cumulative_gy(side)
            row["cumulative_mean_kidney_bed_gy"] = so_far.cumulative_bed_gy("mean", limit)
            row["marrow_dose_gy"] = cycle.marrow_dose_gy
            rows.append(row)
        return rows


def course_from_records(records: Sequence[Mapping[str, object]]) -> Course:
    """A course from stored cycle records (a ledger file's "cycles"); errors name the cycle
    and the field."""
    return Course(
        tuple(
            parse_record(CycleDose, record, f"cycles[{index}]")
            for index, record in enumerate(records)
        )
    )


def course_records(course: Course) -> list[dict[str, object]]:
    """The stored form of a course: one record per cycle, unset values left out."""
    return [cycle.model_dump(exclude_none=True) for cycle in course.cycles]
