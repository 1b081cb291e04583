"""Kidney function estimates: LMR, CAPA, their mean, CKD-EPI 2021 and Cockcroft-Gault; the GFR
a decision reads (measured, the mean, or one marker's equation: `lund_model_gfr`).

Relative GFR in ml/min/1.73 m2, creatinine clearance and absolute GFR in ml/min.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from startrt.clinical.sex import Sex
from startrt.validation import (
    ABSOLUTE_GFR_ML_MIN,
    ADULT_AGE_YEARS,
    AGE_YEARS,
    BSA_M2,
    CREATININE_UMOL_L,
    CYSTATIN_C_MG_L,
    GFR_ML_MIN_173,
    WEIGHT_KG,
    InvalidInputError,
    PlausibleRange,
    require_positive,
)

STANDARD_BSA_M2 = 1.73
# The factor of CKD-EPI (Inker 2021; Levey 2009): 88.4 umol/L per mg/dL (creatinine 113.12 g/mol
# gives 88.40). LMR and CAPA are defined in umol/L and mg/L directly; Cockcroft-Gault's SI
# factors 1.23 / 1.04 are published as such. None of them converts units.
CREATININE_UMOL_L_PER_MG_DL = 88.4
AGREEMENT_THRESHOLD_FRACTION = PlausibleRange(0.0, 1.0, "(fraction of the mean)")


@dataclass(frozen=True)
class _LmrCoefficients:
    x_at_breakpoint: float
    breakpoint_umol_l: float
    slope_per_umol_l: float


_LMR = {
    Sex.FEMALE: _LmrCoefficients(2.50, 150.0, 0.0121),
    Sex.MALE: _LmrCoefficients(2.56, 180.0, 0.00968),
}
_LMR_LOG_SLOPE = 0.926


@dataclass(frozen=True)
class _CkdEpiCoefficients:
    kappa_mg_dl: float
    alpha: float
    sex_factor: float


_CKD_EPI_2021 = {
    Sex.FEMALE: _CkdEpiCoefficients(0.7, -0.241, 1.012),
    Sex.MALE: _CkdEpiCoefficients(0.9, -0.302, 1.0),
}

_COCKCROFT_GAULT_FACTOR = {Sex.FEMALE: 1.04, Sex.MALE: 1.23}


def _require_sex(sex: object) -> Sex:
    if not isinstance(sex, Sex):
        raise InvalidInputError("sex", sex, f"must be one of {', '.join(s.value for s in Sex)}")
    return sex


def lmr_egfr(sex: Sex, age_years: float, creatinine_umol_l: float) -> float:
    """Revised Lund-Malmo creatinine eGFR (LMR; LMR18 for adults), ml/min/1.73 m2.

    Plasma creatinine in umol/L, age in years (adults). Source: Bjork J, Grubb A, Sterner G,
    Nyman U. Scand J Clin Lab Invest 2011;71:232-239.
    """
    coefficients = _LMR[_require_sex(sex)]
    age = ADULT_AGE_YEARS.check("age_years", age_years)
    creatinine = CREATININE_UMOL_L.check("creatinine_umol_l", creatinine_umol_l)
    breakpoint_umol_l = coefficients.breakpoint_umol_l
    if creatinine < breakpoint_umol_l:
        x = coefficients.x_at_breakpoint + coefficients.slope_per_umol_l * (
            breakpoint_umol_l - creatinine
        )
    else:
        x = coefficients.x_at_breakpoint - _LMR_LOG_SLOPE * math.log(creatinine / breakpoint_umol_l)
    return math.exp(x - 0.0158 * age + 0.438 * math.log(age))


def capa_egfr(age_years: float, cystatin_c_mg_l: float) -> float:
    """CAPA cystatin C eGFR, ml/min/1.73 m2: 130 * cysC^-1.069 * age^-0.117 - 7.

    Cystatin C in mg/L (IFCC-calibrated), age in years (> 0). Source: Grubb A et al.,
    Clin Chem 2014;60:974-986. Refused where the equation gives no positive GFR.
    """
    age = require_positive("age_years", AGE_YEARS.check("age_years", age_years), "years")
    cystatin_c = CYSTATIN_C_MG_L.check("cystatin_c_mg_l", cystatin_c_mg_l)
    egfr = 130.0 * math.pow(cystatin_c, -1.069) * math.pow(age, -0.117) - 7.0
    if egfr <= 0.0:
        raise InvalidInputError(
            "cystatin_c_mg_l",
            cystatin_c_mg_l,
            f"CAPA gives no positive GFR at this cystatin C and age {age:g} years; measure GFR",
        )
    return egfr


def ckd_epi_2021_egfr(sex: Sex, age_years: float, creatinine_umol_l: float) -> float:
    """CKD-EPI 2021 race-free creatinine eGFR, ml/min/1.73 m2.

    Creatinine in umol/L (converted with 88.4 umol/L per mg/dL, the factor of the source),
    age in years (adults). Source: Inker LA et al., N Engl J Med 2021;385:1737-1749.
    """
    coefficients = _CKD_EPI_2021[_require_sex(sex)]
    age = ADULT_AGE_YEARS.check("age_years", age_years)
    creatinine = CREATININE_UMOL_L.check("creatinine_umol_l", creatinine_umol_l)
    ratio = creatinine / CREATININE_UMOL_L_PER_MG_DL / coefficients.kappa_mg_dl
    return (
        142.0
        * math.pow(min(ratio, 1.0), coefficients.alpha)
        * math.pow(max(ratio, 1.0), -1.200)
        * math.pow(0.9938, age)
        * coefficients.sex_factor
    )


def cockcroft_gault_crcl_ml_min(
    sex: Sex, age_years: float, weight_kg: float, creatinine_umol_l: float
) -> float:
    """Cockcroft-Gault creatinine clearance, ml/min: (140 - age) * weight * k / creatinine.

    k = 1.23 male, 1.04 female for creatinine in umol/L; weight in kg, age in years (adults).
    Source: Cockcroft DW, Gault MH, Nephron 1976;16:31-41 (as used in the capecitabine label).
    """
    factor = _COCKCROFT_GAULT_FACTOR[_require_sex(sex)]
    age = ADULT_AGE_YEARS.check("age_years", age_years)
    weight = WEIGHT_KG.check("weight_kg", weight_kg)
    creatinine = CREATININE_UMOL_L.check("creatinine_umol_l", creatinine_umol_l)
    return (140.0 - age) * weight * factor / creatinine


@dataclass(frozen=True)
class CombinedEgfr:
    """LMR and CAPA (ml/min/1.73 m2), their mean, |LMR - CAPA| / mean, and whether they agree."""

    lmr: float
    capa: float
    mean: float
    relative_difference: float
    agree: bool


def _mean(first: float, second: float) -> float:
    return (first + second) / 2.0


def combined_egfr(
    sex: Sex,
    age_years: float,
    creatinine_umol_l: float,
    cystatin_c_mg_l: float,
    agreement_threshold: float,
) -> CombinedEgfr:
    """Mean of LMR and CAPA, ml/min/1.73 m2, with their agreement ("Lund model").

    The estimates agree when |LMR - CAPA| / mean <= agreement_threshold (a fraction, protocol
    setting); when they disagree look for a clinical reason or measure GFR. Sources: Bjork J et
    al., Scand J Clin Lab Invest 2011;71:232-239; Grubb A et al., Clin Chem 2014;60:974-986.
    """
    threshold = AGREEMENT_THRESHOLD_FRACTION.check("agreement_threshold", agreement_threshold)
    lmr = lmr_egfr(sex, age_years, creatinine_umol_l)
    capa = capa_egfr(age_years, cystatin_c_mg_l)
    mean = _mean(lmr, capa)
    relative_difference = abs(lmr - capa) / mean
    return CombinedEgfr(
        lmr=lmr,
        capa=capa,
        mean=mean,
        relative_difference=relative_difference,
        agree=relative_difference <= threshold,
    )


def absolute_gfr_ml_min(relative_ml_min_173: float, bsa_m2: float) -> float:
    """Absolute GFR, ml/min, from GFR per 1.73 m2: GFR_rel * BSA / 1.73 (BSA in m2)."""
    relative = GFR_ML_MIN_173.check("relative_ml_min_173", relative_ml_min_173)
    bsa = BSA_M2.check("bsa_m2", bsa_m2)
    return relative * bsa / STANDARD_BSA_M2


def relative_gfr_ml_min_173(absolute_ml_min: float, bsa_m2: float) -> float:
    """GFR per 1.73 m2, ml/min/1.73 m2, from absolute GFR in ml/min: GFR_abs * 1.73 / BSA."""
    absolute = ABSOLUTE_GFR_ML_MIN.check("absolute_ml_min", absolute_ml_min)
    bsa = BSA_M2.check("bsa_m2", bsa_m2)
    return absolute * STANDARD_BSA_M2 / bsa


@dataclass(frozen=True)
class EgfrPanel:
    """Every estimate whose inputs were given (None otherwise).

    lmr, capa, combined (their mean) and ckd_epi_2021 in ml/min/1.73 m2; cockcroft_gault in ml/min.
    """

    lmr: float | None
    capa: float | None
    combined: float | None
    ckd_epi_2021: float | None
    cockcroft_gault: float | None


def egfr_panel(
    sex: Sex,
    age_years: float,
    creatinine_umol_l: float | None = None,
    cystatin_c_mg_l: float | None = None,
    weight_kg: float | None = None,
) -> EgfrPanel:
    """Compute LMR, CAPA, their mean, CKD-EPI 2021 and Cockcroft-Gault from the inputs present.

    Units and sources as in the single-equation functions of this module.
    """
    _require_sex(sex)
    lmr = ckd_epi = cockcroft_gault = capa = None
    if creatinine_umol_l is not None:
        lmr = lmr_egfr(sex, age_years, creatinine_umol_l)
        ckd_epi = ckd_epi_2021_egfr(sex, age_years, creatinine_umol_l)
        if weight_kg is not None:
            cockcroft_gault = cockcroft_gault_crcl_ml_min(
                sex, age_years, weight_kg, creatinine_umol_l
            )
    if cystatin_c_mg_l is not None:
        capa = capa_egfr(age_years, cystatin_c_mg_l)
    return EgfrPanel(
        lmr=lmr,
        capa=capa,
        combined=_mean(lmr, capa) if lmr is not None and capa is not None else None,
        ckd_epi_2021=ckd_epi,
        cockcroft_gault=cockcroft_gault,
    )


@dataclass(frozen=True)
class AbsoluteGfrPanel:
    """The panel's relative estimates scaled to the patient's BSA, ml/min (None where absent)."""

    bsa_m2: float
    lmr_ml_min: float | None
    capa_ml_min: float | None
    combined_ml_min: float | None
    ckd_epi_2021_ml_min: float | None


def absolute_gfr_panel(panel: EgfrPanel, bsa_m2: float) -> AbsoluteGfrPanel:
    """Absolute GFR (ml/min) of each relative estimate of `panel` (ml/min/1.73 m2) at `bsa_m2`,
    by `absolute_gfr_ml_min`. Cockcroft-Gault is already in ml/min and is not rescaled."""

    def scaled(relative: float | None) -> float | None:
        return None if relative is None else absolute_gfr_ml_min(relative, bsa_m2)

    return AbsoluteGfrPanel(
        bsa_m2=BSA_M2.check("bsa_m2", bsa_m2),
        lmr_ml_min=scaled(panel.lmr),
        capa_ml_min=scaled(panel.capa),
        combined_ml_min=scaled(panel.combined),
        ckd_epi_2021_ml_min=scaled(panel.ckd_epi_2021),
    )


class GfrMethod(StrEnum):
    """How the GFR a decision reads was obtained."""

    MEASURED = "measured"
    MEAN = "mean of LMR and CAPA"
    LMR = "LMR"
    CAPA = "CAPA"


@dataclass(frozen=True)
class GfrEstimate:
    """The GFR a decision reads (ml/min/1.73 m2) and how it was obtained.

    lmr_ml_min_173 / capa_ml_min_173 are the equations' values used (None when not used);
    relative_difference (|LMR - CAPA| / mean) and agree are set for the mean only.
    """

    gfr_ml_min_173: float
    method: GfrMethod
    lmr_ml_min_173: float | None = None
    capa_ml_min_173: float | None = None
    relative_difference: float | None = None
    agree: bool | None = None


def lund_model_gfr(
    sex: Sex | None,
    age_years: float | None,
    *,
    creatinine_umol_l: float | None,
    cystatin_c_mg_l: float | None,
    measured_gfr_ml_min_173: float | None,
    agreement_threshold: float,
    single_marker: bool,
) -> GfrEstimate | None:
    """The GFR to decide on, ml/min/1.73 m2 (Swedish "Lund model"): a measured GFR (iohexol or
    51Cr-EDTA clearance) when given; else the mean of LMR and CAPA when both markers are given
    (`combined_egfr`, with its agreement); else, when `single_marker` allows it, LMR from
    creatinine or CAPA from cystatin C alone. None when none of these applies (sex or age
    unknown, or no marker).

    Sources: Bjork J et al., Scand J Clin Lab Invest 2011;71:232-239 and Nyman U et al., Clin
    Chem Lab Med 2014;52:815-824 (LMR); Grubb A et al., Clin Chem 2014;60:974-986 (CAPA); the
    mean as START-01's protocol states it ("the combination (mean) of LMR18 and CAPA").
    """
    if measured_gfr_ml_min_173 is not None:
        measured = GFR_ML_MIN_173.check("measured_gfr_ml_min_173", measured_gfr_ml_min_173)
        return GfrEstimate(gfr_ml_min_173=measured, method=GfrMethod.MEASURED)
    if sex is None or age_years is None:
        return None
    if creatinine_umol_l is not None and cystatin_c_mg_l is not None:
        combined = combined_egfr(
            sex, age_years, creatinine_umol_l, cystatin_c_mg_l, agreement_threshold
        )
        return GfrEstimate(
            gfr_ml_min_173=combined.mean,
            method=GfrMethod.MEAN,
            lmr_ml_min_173=combined.lmr,
            capa_ml_min_173=combined.capa,
            relative_difference=combined.relative_difference,
            agree=combined.agree,
        )
    if not single_marker:
        return None
    if creatinine_umol_l is not None:
        lmr = lmr_egfr(sex, age_years, creatinine_umol_l)
        return GfrEstimate(gfr_ml_min_173=lmr, method=GfrMethod.LMR, lmr_ml_min_173=lmr)
    if cystatin_c_mg_l is not None:
        capa = capa_egfr(age_years, cystatin_c_mg_l)
        return GfrEstimate(gfr_ml_min_173=capa, method=GfrMethod.CAPA, capa_ml_min_173=capa)
    return None
