"""A cycle of the course from its computed dosimetry (kidneys, their kinetics, marrow if
measured), and the protocol's kidney radiobiology for the dosimetry report. Kept apart from
`course` so that the planner does not import the dosimetry stack."""

from __future__ import annotations

from startrt.dosimetry.bed import Radiobiology
from startrt.dosimetry.cycle_dosimetry import RED_MARROW, CycleDosimetryResult
from startrt.dosimetry.uncertainty import VoiUncertainty
from startrt.protocol.course import CycleDose
from startrt.protocol.definition import RenalLimit
from startrt.protocol.records import parse_record
from startrt.validation import InvalidInputError


def cycle_dose(result: CycleDosimetryResult) -> CycleDose:
    """The cycle's doses from its dosimetry; both kidney VOIs are needed; the kidney effective
    half-life is the mean of both kidneys' (None unless both are known)."""
    missing = [name for name in ("left_kidney", "right_kidney") if name not in result.vois]
    if missing:
        raise InvalidInputError("VOIs", missing, "the course needs both kidney VOIs")
    left, right = result.vois["left_kidney"], result.vois["right_kidney"]
    half_lives = [v.effective_half_life_h for v in (left, right) if v.effective_half_life_h]
    marrow = result.vois.get(RED_MARROW)
    doses = {
        "activity_gbq": result.injected_activity_mbq / 1000.0,
        "left_kidney_dose_gy": left.dose_gy,
        "right_kidney_dose_gy": right.dose_gy,
        "kidney_effective_half_life_h": sum(half_lives) / 2 if len(half_lives) == 2 else None,
        "marrow_dose_gy": None if marrow is None else marrow.dose_gy,
        **_kidney_uncertainties(left.uncertainty, right.uncertainty),
    }
    return parse_record(CycleDose, doses, "dosimetry")


def _kidney_uncertainties(
    left: VoiUncertainty | None, right: VoiUncertainty | None
) -> dict[str, float]:
    """Both kidneys' dose SDs and the share of their variance every cycle shares (the mean of
    the two kidneys' shares), when the dosimetry computed them."""
    if left is None or right is None:
        return {}
    shares = [(u.dose_shared_sd_gy / u.dose_sd_gy) ** 2 for u in (left, right) if u.dose_sd_gy > 0]
    return {
        "left_kidney_dose_sd_gy": left.dose_sd_gy,
        "right_kidney_dose_sd_gy": right.dose_sd_gy,
        **({"kidney_dose_sd_systematic_share": sum(shares) / len(shares)} if shares else {}),
    }


def kidney_radiobiology(limit: RenalLimit) -> Radiobiology:
    """The protocol's kidney alpha/beta and repair half-time, for the dosimetry report's BED."""
    return Radiobiology(limit.alpha_beta_gy, limit.repair_half_time_h)
