"""The GFR a decision reads (`lund_model_gfr`): measured first, else the mean of LMR and CAPA,
else one marker's equation where allowed. Expected values worked by hand from the published
equations (Bjork 2011 LMR; Grubb 2014 CAPA), the arithmetic in the comments.

Man, 64 years, creatinine 95 umol/L, cystatin C 1.10 mg/L:
  LMR (male, pCr < 180): X = 2.56 + 0.00968 * (180 - 95) = 2.56 + 0.8228 = 3.3828
      age term -0.0158 * 64 + 0.438 * ln 64 = -1.0112 + 0.438 * 4.1588831 = 0.8103908
      eGFR = exp(3.3828 + 0.8103908) = exp(4.1931908) = 66.233792
  CAPA: 130 * 1.10^-1.069 * 64^-0.117 - 7
      1.10^-1.069 = exp(-1.069 * 0.0953102) = exp(-0.1018866) = 0.9031320
      64^-0.117 = exp(-0.117 * 4.1588831) = exp(-0.4865893) = 0.6147194
      130 * 0.9031320 * 0.6147194 - 7 = 72.172461 - 7 = 65.172461
  mean (66.233792 + 65.172461) / 2 = 65.703127; |LMR - CAPA| / mean = 1.061331 / 65.703127
      = 0.016153 (agree at the protocol's 0.10)
Woman, 70 years, creatinine 130 umol/L, cystatin C 1.60 mg/L:
  LMR (female, pCr < 150): X = 2.50 + 0.0121 * 20 = 2.742; age term -1.106 + 0.438 * ln 70
      = -1.106 + 0.438 * 4.2484952 = 0.7548409; exp(3.4968409) = 33.011003
  CAPA: 1.6^-1.069 = 0.6050563; 70^-0.117 = 0.6083080; 130 * 0.6050563 * 0.6083080 - 7
      = 47.847871 - 7 = 40.847871
  mean 36.929437; |33.011003 - 40.847871| / 36.929437 = 0.212212 (disagree at 0.10)
"""

from __future__ import annotations

from typing import Any

import pytest

from startrt.clinical.egfr import GfrEstimate, GfrMethod, lund_model_gfr
from startrt.clinical.sex import Sex
from startrt.validation import InvalidInputError

REL = 1e-6
MAN = {"sex": Sex.MALE, "age_years": 64.0}
LMR_MAN, CAPA_MAN, MEAN_MAN = 66.233792, 65.172461, 65.703127


def gfr(
    *,
    creatinine: float | None = None,
    cystatin: float | None = None,
    measured: float | None = None,
    single_marker: bool = True,
    **patient: Any,
) -> GfrEstimate | None:
    who = {**MAN, **patient}
    return lund_model_gfr(
        who["sex"],
        who["age_years"],
        creatinine_umol_l=creatinine,
        cystatin_c_mg_l=cystatin,
        measured_gfr_ml_min_173=measured,
        agreement_threshold=0.10,
        single_marker=single_marker,
    )


def test_both_markers_give_the_mean_of_lmr_and_capa() -> None:
    estimate = gfr(creatinine=95, cystatin=1.10)
    assert estimate is not None
    assert estimate.method is GfrMethod.MEAN
    assert estimate.lmr_ml_min_173 == pytest.approx(LMR_MAN, rel=REL)
    assert estimate.capa_ml_min_173 == pytest.approx(CAPA_MAN, rel=REL)
    assert estimate.gfr_ml_min_173 == pytest.approx(MEAN_MAN, rel=REL)
    assert estimate.relative_difference == pytest.approx(0.016153, abs=1e-6)
    assert estimate.agree is True


def test_a_woman_with_disagreeing_markers() -> None:
    estimate = gfr(creatinine=130, cystatin=1.60, sex=Sex.FEMALE, age_years=70.0)
    assert estimate is not None
    assert estimate.lmr_ml_min_173 == pytest.approx(33.011003, rel=REL)
    assert estimate.capa_ml_min_173 == pytest.approx(40.847871, rel=REL)
    assert estimate.gfr_ml_min_173 == pytest.approx(36.929437, rel=REL)
    assert estimate.relative_difference == pytest.approx(0.212212, abs=1e-6)
    assert estimate.agree is False


def test_creatinine_alone_gives_lmr_where_one_marker_is_allowed() -> None:
    estimate = gfr(creatinine=95)
    assert estimate is not None
    assert (estimate.method, estimate.capa_ml_min_173, estimate.agree) == (
        GfrMethod.LMR,
        None,
        None,
    )
    assert estimate.gfr_ml_min_173 == estimate.lmr_ml_min_173 == pytest.approx(LMR_MAN, rel=REL)
    assert gfr(creatinine=95, single_marker=False) is None  # eligibility needs both (or measured)


def test_cystatin_alone_gives_capa_where_one_marker_is_allowed() -> None:
    estimate = gfr(cystatin=1.10)
    assert estimate is not None
    assert (estimate.method, estimate.lmr_ml_min_173) == (GfrMethod.CAPA, None)
    assert estimate.gfr_ml_min_173 == pytest.approx(CAPA_MAN, rel=REL)
    assert gfr(cystatin=1.10, single_marker=False) is None


@pytest.mark.parametrize("single_marker", [True, False])
def test_a_measured_gfr_takes_precedence(single_marker: bool) -> None:
    # the estimates (about 66) are not used when a clearance was measured
    estimate = gfr(creatinine=95, cystatin=1.10, measured=48.0, single_marker=single_marker)
    assert estimate == GfrEstimate(gfr_ml_min_173=48.0, method=GfrMethod.MEASURED)
    # sex and age are not needed for a measured GFR
    assert gfr(measured=48.0, sex=None, age_years=None) == estimate


@pytest.mark.parametrize("patient", [{"sex": None}, {"age_years": None}])
def test_no_estimate_without_sex_or_age(patient: dict[str, Any]) -> None:
    assert gfr(creatinine=95, cystatin=1.10, **patient) is None


def test_no_marker_no_estimate() -> None:
    assert gfr() is None


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"measured": 300.0}, "measured_gfr_ml_min_173"),
        ({"creatinine": -5.0}, "creatinine_umol_l"),
        ({"cystatin": 0.0}, "cystatin_c_mg_l"),
        ({"creatinine": 95, "age_years": 12.0}, "age_years"),  # LMR is for adults
    ],
)
def test_bad_input_names_the_field(call: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        gfr(**call)
    assert refused.value.field == field
