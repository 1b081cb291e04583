"""A cycle's ledger entry from its computed dosimetry (kidneys, their BED, marrow if measured)."""

from __future__ import annotations

from startrt.dosimetry.cycle_dosimetry import RED_MARROW, CycleDosimetryResult
from startrt.dosimetry.ledger import CycleDosimetry, KidneyDose
from startrt.validation import InvalidInputError


def ledger_cycle(result: CycleDosimetryResult, number: int) -> CycleDosimetry:
    """Cycle `number` of the ledger from a cycle's dosimetry; both kidney VOIs are needed; the
    kidney effective half-life is the mean of both kidneys' (None unless both are known)."""
    missing = [name for name in ("left_kidney", "right_kidney") if name not in result.vois]
    if missing:
        raise InvalidInputError("VOIs", missing, "the ledger needs both kidney VOIs")
    left, right = result.vois["left_kidney"], result.vois["right_kidney"]
    half_lives = [v.effective_half_life_h for v in (left, right) if v.effective_half_life_h]
    return CycleDosimetry(
        cycle=number,
        activity_gbq=result.injected_activity_mbq / 1000.0,
        left_kidney=KidneyDose(left.dose_gy, left.bed_gy),
        right_kidney=KidneyDose(right.dose_gy, right.bed_gy),
        kidney_effective_half_life_h=sum(half_lives) / 2 if len(half_lives) == 2 else None,
        marrow_dose_gy=result.vois[RED_MARROW].dose_gy if RED_MARROW in result.vois else None,
    )
