"""Red-marrow self-dose by the blood method (EANM guideline: Hindorf et al., Eur J Nucl Med
Mol Imaging 2010;37:1238).

TIA_RM [MBq*h] = TIAC_blood [MBq*h/mL] * RMBLR * m_RM [g] (blood concentration per mL used as
per g, as in the guideline's formula); self-dose by local deposition of the electron energy:
D = TIA_RM * E / m_RM, so the marrow mass cancels in the self-dose (the cross-dose from organs
and the remainder of the body: `marrow_cross_dose`). Red-marrow mass: ICRP Publication 89 (2002)
adult reference (1170 g male, 900 g female; body mass 73 kg male, 60 kg female), optionally scaled
by patient / reference body mass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from startrt.clinical.sex import Sex
from startrt.dosimetry.tac import FitResult, TimeActivityCurve, fit_best
from startrt.dosimetry.tac_models import ModelName
from startrt.physics.nuclides import LU177, Nuclide
from startrt.validation import (
    WEIGHT_KG,
    InvalidInputError,
    PlausibleRange,
    require_non_negative,
    require_positive,
)

REFERENCE_RED_MARROW_MASS_G = {Sex.MALE: 1170.0, Sex.FEMALE: 900.0}  # ICRP 89
REFERENCE_BODY_MASS_KG = {Sex.MALE: 73.0, Sex.FEMALE: 60.0}  # ICRP 89
HEMATOCRIT_FRACTION = PlausibleRange(0.10, 0.70, "fraction (L/L)")
BLOOD_MODELS: tuple[ModelName, ...] = ("mono", "bi")  # blood clears from its maximum at t = 0


@dataclass(frozen=True)
class MarrowDose:
    """Blood-method red-marrow result: the blood fit, TIA concentration, RMBLR, mass, TIA and
    self-dose (Gy)."""

    blood_fit: FitResult
    blood_tia_mbq_h_per_ml: float
    red_marrow_to_blood_ratio: float
    red_marrow_mass_g: float
    red_marrow_tia_mbq_h: float
    self_dose_gy: float


def red_marrow_mass_g(sex: Sex, weight_kg: float | None = None) -> float:
    """ICRP 89 reference red-marrow mass (g), scaled by weight / reference body mass if given."""
    if sex not in REFERENCE_RED_MARROW_MASS_G:
        raise InvalidInputError("sex", sex, f"must be one of {[str(s) for s in Sex]}")
    reference = REFERENCE_RED_MARROW_MASS_G[Sex(sex)]
    if weight_kg is None:
        return reference
    return reference * WEIGHT_KG.check("weight_kg", weight_kg) / REFERENCE_BODY_MASS_KG[Sex(sex)]


def sgouros_red_marrow_to_blood_ratio(hematocrit_fraction: float) -> float:
    """RMBLR = 0.19 / (1 - HCT) (Sgouros, J Nucl Med 1993;34:689; for agents that stay in
    plasma and extracellular fluid); the EANM guideline's default for peptides is 1."""
    hematocrit = HEMATOCRIT_FRACTION.check("hematocrit_fraction", hematocrit_fraction)
    return 0.19 / (1.0 - hematocrit)


def red_marrow_self_dose(
    times_h: Sequence[float],
    blood_mbq_per_ml: Sequence[float],
    *,
    sex: Sex,
    weight_kg: float | None = None,
    red_marrow_to_blood_ratio: float = 1.0,
    models: Sequence[ModelName] = BLOOD_MODELS,
    nuclide: Nuclide = LU177,
) -> MarrowDose:
    """Red-marrow self-dose (Gy) from blood samples (h after injection, MBq/mL): the blood
    curve is fitted with `fit_best` (the activity of 1 mL of blood) and integrated to infinity.
    Source: Hindorf et al., Eur J Nucl Med Mol Imaging 2010;37:1238."""
    ratio = require_positive("red_marrow_to_blood_ratio", red_marrow_to_blood_ratio, "")
    mass_g = red_marrow_mass_g(sex, weight_kg)
    concentrations = tuple(
        require_non_negative(f"blood_mbq_per_ml[{i}]", c, "MBq/mL")
        for i, c in enumerate(blood_mbq_per_ml)
    )
    curve = TimeActivityCurve("blood_per_ml", tuple(times_h), concentrations)
    fit = fit_best(curve, models=models, decay_constant_per_h=nuclide.decay_constant_per_h)
    tia_mbq_h = fit.tia_mbq_h * ratio * mass_g
    return MarrowDose(
        blood_fit=fit,
        blood_tia_mbq_h_per_ml=fit.tia_mbq_h,
        red_marrow_to_blood_ratio=ratio,
        red_marrow_mass_g=mass_g,
        red_marrow_tia_mbq_h=tia_mbq_h,
        self_dose_gy=tia_mbq_h * nuclide.local_deposition_gy_g_per_mbq_h / mass_g,
    )
