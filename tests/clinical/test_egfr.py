"""Kidney function equations against hand-computed values (arithmetic in the comments).

Natural logs used below: ln 60 = 4.0943446, ln 70 = 4.2484952, ln 1.2 = 0.1823216.
LMR age term at 60 y: -0.0158*60 + 0.438*ln 60 = -0.948 + 1.7933229 = 0.8453229.
"""

from __future__ import annotations

import math

import pytest

from startrt.clinical.egfr import (
    CombinedEgfr,
    EgfrPanel,
    absolute_gfr_ml_min,
    absolute_gfr_panel,
    capa_egfr,
    ckd_epi_2021_egfr,
    cockcroft_gault_crcl_ml_min,
    combined_egfr,
    egfr_panel,
    lmr_egfr,
    relative_gfr_ml_min_173,
)
from startrt.clinical.sex import Sex
from startrt.validation import InvalidInputError

REL = 1e-6
F, M = Sex.FEMALE, Sex.MALE


# --- LMR (Bjork 2011) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sex", "creatinine_umol_l", "expected"),
    [
        # female, pCr < 150: X = 2.50 + 0.0121*(150-100) = 3.105
        # eGFR = exp(3.105 + 0.8453229) = exp(3.9503229) = 51.952140
        (F, 100.0, 51.952140),
        # female, 1 below the breakpoint: X = 2.50 + 0.0121*1 = 2.5121; exp(3.3574229) = 28.715094
        (F, 149.0, 28.715094),
        # female, exactly 150 (log branch): X = 2.50 - 0.926*ln 1 = 2.50; exp(3.3453229) = 28.369735
        (F, 150.0, 28.369735),
        # female, 1 above: X = 2.50 - 0.926*ln(151/150) = 2.50 - 0.926*0.0066445 = 2.4938472
        # exp(2.4938472 + 0.8453229) = exp(3.3391701) = 28.195717
        (F, 151.0, 28.195717),
        # female, pCr >= 150: X = 2.50 - 0.926*ln(200/150) = 2.50 - 0.926*0.2876821 = 2.2336064
        # exp(2.2336064 + 0.8453229) = exp(3.0789293) = 21.735119
        (F, 200.0, 21.735119),
        # male, pCr < 180: X = 2.56 + 0.00968*(180-100) = 3.3344; exp(4.1797229) = 65.347744
        (M, 100.0, 65.347744),
        # male, 1 below the breakpoint: X = 2.56 + 0.00968 = 2.56968; exp(3.4150029) = 30.417038
        (M, 179.0, 30.417038),
        # male, exactly 180: X = 2.56; exp(3.4053229) = 30.124022
        (M, 180.0, 30.124022),
        # male, 1 above: X = 2.56 - 0.926*ln(181/180) = 2.56 - 0.926*0.0055402 = 2.5548698
        # exp(2.5548698 + 0.8453229) = exp(3.4001927) = 29.969875
        (M, 181.0, 29.969875),
        # male, pCr >= 180: X = 2.56 - 0.926*ln(250/180) = 2.56 - 0.926*0.3285041 = 2.2558052
        # exp(2.2558052 + 0.8453229) = exp(3.1011282) = 22.223008
        (M, 250.0, 22.223008),
    ],
)
def test_lmr_hand_computed_at_60_years(sex: Sex, creatinine_umol_l: float, expected: float) -> None:
    assert lmr_egfr(sex, 60.0, creatinine_umol_l) == pytest.approx(expected, rel=REL)


def test_lmr_age_term() -> None:
    # female 70 y, pCr 150: X = 2.50; age term -0.0158*70 + 0.438*ln 70 = -1.106 + 1.8608409
    # = 0.7548409; exp(2.50 + 0.7548409) = exp(3.2548409) = 25.915491
    assert lmr_egfr(F, 70.0, 150.0) == pytest.approx(25.915491, rel=REL)


@pytest.mark.parametrize(("sex", "breakpoint_umol_l"), [(F, 150.0), (M, 180.0)])
def test_lmr_is_continuous_at_the_breakpoint(sex: Sex, breakpoint_umol_l: float) -> None:
    left = lmr_egfr(sex, 60.0, breakpoint_umol_l - 1e-9)
    at = lmr_egfr(sex, 60.0, breakpoint_umol_l)
    right = lmr_egfr(sex, 60.0, breakpoint_umol_l + 1e-9)
    assert left == pytest.approx(at, rel=1e-9)
    assert right == pytest.approx(at, rel=1e-9)


def test_lmr_falls_as_creatinine_rises_across_the_breakpoint() -> None:
    values = [lmr_egfr(M, 60.0, c) for c in (100.0, 179.0, 180.0, 181.0, 250.0)]
    assert values == sorted(values, reverse=True)


# --- CAPA (Grubb 2014) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age_years", "cystatin_c_mg_l", "expected"),
    [
        # 130 * 1.2^-1.069 * 60^-0.117 - 7: 1.2^-1.069 = exp(-1.069*0.1823216) = exp(-0.1949017)
        # = 0.8229155; 60^-0.117 = exp(-0.117*4.0943446) = exp(-0.4790383) = 0.6193788
        # 130 * 0.8229155 * 0.6193788 = 66.260530; - 7 = 59.260530
        (60.0, 1.2, 59.260530),
        # 130 * 1 * 50^-0.117 - 7 = 130 * exp(-0.117*3.9120230) = 130 * 0.6327330 - 7 = 75.255295
        (50.0, 1.0, 75.255295),
        # 0.8^-1.069 = exp(-1.069*-0.2231436) = exp(0.2385405) = 1.2693951
        # 80^-0.117 = exp(-0.117*4.3820266) = exp(-0.5126971) = 0.5988782
        # 130 * 1.2693951 * 0.5988782 - 7 = 98.827686 - 7 = 91.827686
        (80.0, 0.8, 91.827686),
    ],
)
def test_capa_hand_computed(age_years: float, cystatin_c_mg_l: float, expected: float) -> None:
    assert capa_egfr(age_years, cystatin_c_mg_l) == pytest.approx(expected, rel=REL)


def test_capa_refuses_a_non_positive_result() -> None:
    # 130 * 10^-1.069 * 100^-0.117 - 7 = 130 * 0.0853 * 0.5833 - 7 = 6.47 - 7 < 0
    with pytest.raises(InvalidInputError) as error:
        capa_egfr(100.0, 10.0)
    assert error.value.field == "cystatin_c_mg_l"


def test_capa_refuses_age_zero() -> None:
    with pytest.raises(InvalidInputError) as error:
        capa_egfr(0.0, 1.0)
    assert error.value.field == "age_years"


# --- CKD-EPI 2021 (Inker 2021) ----------------------------------------------------------------
# ln 0.9938 = -0.0062193; 0.9938^30 = 0.8297930, ^50 = 0.7327395, ^60 = 0.6885564, ^70 = 0.6470375


@pytest.mark.parametrize(
    ("sex", "age_years", "creatinine_umol_l", "expected"),
    [
        # Inker 2021 converts with 88.4 umol/L per mg/dL.
        # female 50 y, Scr 88.4 umol/L = 1.0 mg/dL; Scr/k = 1/0.7 = 1.4285714 (above k)
        # 1.4285714^-1.2 = exp(-1.2*0.3566749) = 0.6518049
        # 142 * 0.6518049 * 0.7327395 * 1.012 = 68.633497
        (F, 50.0, 88.4, 68.633497),
        # female 30 y, Scr 53.04 umol/L = 0.6 mg/dL; Scr/k = 0.8571429 (below k)
        # 0.8571429^-0.241 = exp(-0.241*-0.1541507) = 1.0378490
        # 142 * 1.0378490 * 0.8297930 * 1.012 = 123.757864
        (F, 30.0, 53.04, 123.757864),
        # male 70 y, Scr 70.72 umol/L = 0.8 mg/dL; Scr/k = 0.8888889 (below k)
        # 0.8888889^-0.302 = exp(-0.302*-0.1177830) = 1.0362107
        # 142 * 1.0362107 * 0.6470375 = 95.206341
        (M, 70.0, 70.72, 95.206341),
        # male 60 y, Scr 176.8 umol/L = 2.0 mg/dL; Scr/k = 2.2222222 (above k)
        # 2.2222222^-1.2 = exp(-1.2*0.7985077) = 0.3835792; 142 * 0.3835792 * 0.6885564 = 37.504459
        (M, 60.0, 176.8, 37.504459),
        # male 60 y, Scr 100 umol/L = 100 / 88.4 = 1.1312217 mg/dL; Scr/k = 1.2569130
        # 1.2569130^-1.2 = exp(-1.2*0.2286587) = 0.7600352; 142 * 0.7600352 * 0.6885564 = 74.312457
        # (with 88.42 it would be 74.3326, outside the tolerance)
        (M, 60.0, 100.0, 74.312457),
    ],
)
def test_ckd_epi_2021_hand_computed(
    sex: Sex, age_years: float, creatinine_umol_l: float, expected: float
) -> None:
    assert ckd_epi_2021_egfr(sex, age_years, creatinine_umol_l) == pytest.approx(expected, rel=REL)


def test_ckd_epi_2021_uses_0_9938_not_0_993() -> None:
    # male 70 y, Scr 0.8 mg/dL: with 0.993^70 = 0.6115717 the result would be
    # 142 * 1.0362107 * 0.6115717 = 89.987834, 5.5 % below the correct 95.206341.
    result = ckd_epi_2021_egfr(M, 70.0, 70.72)
    assert result == pytest.approx(95.206341, rel=REL)
    assert result != pytest.approx(89.987834, rel=1e-2)


def test_ckd_epi_2021_at_kappa_both_factors_are_one() -> None:
    # female 60 y, Scr = 0.7 mg/dL = 61.88 umol/L: 142 * 1 * 1 * 0.6885564 * 1.012 = 98.948315
    assert ckd_epi_2021_egfr(F, 60.0, 61.88) == pytest.approx(98.948315, rel=REL)


# --- Cockcroft-Gault --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sex", "expected"),
    [
        (M, 68.88),  # (140-60) * 70 * 1.23 / 100 = 80*70 = 5600; *1.23 = 6888; /100 = 68.88
        (F, 58.24),  # 5600 * 1.04 / 100 = 58.24
    ],
)
def test_cockcroft_gault_hand_computed(sex: Sex, expected: float) -> None:
    assert cockcroft_gault_crcl_ml_min(sex, 60.0, 70.0, 100.0) == pytest.approx(expected, rel=REL)


def test_cockcroft_gault_published_example() -> None:
    # transplantr::cockcroft(creat = 88.4, age = 25, sex = "F", weight = 60) docs example:
    # (140-25) * 60 * 1.04 / 88.4 = 7176 / 88.4 = 81.176471 ml/min
    assert cockcroft_gault_crcl_ml_min(F, 25.0, 60.0, 88.4) == pytest.approx(81.176471, rel=REL)


# --- Combined LMR + CAPA ----------------------------------------------------------------------


def test_combined_egfr_mean_and_relative_difference() -> None:
    # female 60 y, creatinine 100, cystatin C 1.2: LMR 51.952140, CAPA 59.260530
    # mean (51.952140 + 59.260530)/2 = 55.606335; |diff| = 7.308389; 7.308389/55.606335 = 0.1314309
    result = combined_egfr(F, 60.0, 100.0, 1.2, agreement_threshold=0.2)
    assert isinstance(result, CombinedEgfr)
    assert result.lmr == pytest.approx(51.952140, rel=REL)
    assert result.capa == pytest.approx(59.260530, rel=REL)
    assert result.mean == pytest.approx(55.606335, rel=REL)
    assert result.relative_difference == pytest.approx(0.1314309, rel=1e-5)
    assert result.agree


@pytest.mark.parametrize(("threshold", "agree"), [(0.1314, False), (0.1315, True), (0.0, False)])
def test_combined_egfr_agreement_threshold(threshold: float, agree: bool) -> None:
    # relative difference 0.1314309 (above): agree iff it is <= threshold
    assert combined_egfr(F, 60.0, 100.0, 1.2, threshold).agree is agree


def test_combined_egfr_agrees_at_exactly_the_threshold() -> None:
    relative = combined_egfr(F, 60.0, 100.0, 1.2, 1.0).relative_difference
    assert combined_egfr(F, 60.0, 100.0, 1.2, relative).agree


@pytest.mark.parametrize("threshold", [-0.1, 1.5, math.nan])
def test_combined_egfr_refuses_bad_threshold(threshold: float) -> None:
    with pytest.raises(InvalidInputError) as error:
        combined_egfr(F, 60.0, 100.0, 1.2, threshold)
    assert error.value.field == "agreement_threshold"


# --- Relative <-> absolute GFR ----------------------------------------------------------------


def test_absolute_and_relative_gfr() -> None:
    # 60 * 2.0 / 1.73 = 69.364162 ml/min; back: 69.364162 * 1.73 / 2.0 = 60
    assert absolute_gfr_ml_min(60.0, 2.0) == pytest.approx(69.364162, rel=REL)
    assert relative_gfr_ml_min_173(69.364162, 2.0) == pytest.approx(60.0, rel=REL)
    # 100 * 1.73 / 1.5 = 115.333333
    assert relative_gfr_ml_min_173(100.0, 1.5) == pytest.approx(115.333333, rel=REL)
    assert absolute_gfr_ml_min(80.0, 1.73) == pytest.approx(80.0, rel=1e-12)


# --- Panel ------------------------------------------------------------------------------------


def test_panel_with_every_input() -> None:
    # male 60 y, creatinine 100, cystatin C 1.2, 70 kg: LMR 65.347744, CAPA 59.260530,
    # mean (65.347744 + 59.260530)/2 = 62.304137, CKD-EPI 74.312457, CG 68.88 (see above)
    panel = egfr_panel(M, 60.0, creatinine_umol_l=100.0, cystatin_c_mg_l=1.2, weight_kg=70.0)
    assert isinstance(panel, EgfrPanel)
    assert panel.lmr == pytest.approx(65.347744, rel=REL)
    assert panel.capa == pytest.approx(59.260530, rel=REL)
    assert panel.combined == pytest.approx(62.304137, rel=REL)
    assert panel.ckd_epi_2021 == pytest.approx(74.312457, rel=REL)
    assert panel.cockcroft_gault == pytest.approx(68.88, rel=REL)


def test_absolute_panel_scales_every_relative_estimate_to_the_bsa() -> None:
    # The panel above at BSA 2.0 m2: x 2.0 / 1.73 = x 1.1560694.
    # LMR 65.347744 -> 75.546525, CAPA 59.260530 -> 68.509283, mean 62.304137 -> 72.027904,
    # CKD-EPI 74.312457 -> 85.910355 ml/min.
    panel = egfr_panel(M, 60.0, creatinine_umol_l=100.0, cystatin_c_mg_l=1.2, weight_kg=70.0)
    absolute = absolute_gfr_panel(panel, 2.0)
    assert absolute.bsa_m2 == 2.0
    assert absolute.lmr_ml_min == pytest.approx(75.546525, rel=REL)
    assert absolute.capa_ml_min == pytest.approx(68.509283, rel=REL)
    assert absolute.combined_ml_min == pytest.approx(72.027904, rel=REL)
    assert absolute.ckd_epi_2021_ml_min == pytest.approx(85.910355, rel=REL)


def test_absolute_panel_keeps_absent_estimates_absent_and_checks_the_bsa() -> None:
    panel = egfr_panel(F, 60.0, cystatin_c_mg_l=1.2)
    absolute = absolute_gfr_panel(panel, 1.73)  # at 1.73 m2 absolute = relative
    assert absolute.capa_ml_min == pytest.approx(panel.capa, rel=REL)
    assert (absolute.lmr_ml_min, absolute.combined_ml_min, absolute.ckd_epi_2021_ml_min) == (
        None,
        None,
        None,
    )
    with pytest.raises(InvalidInputError) as error:
        absolute_gfr_panel(panel, 0.1)
    assert (error.value.field, error.value.value) == ("bsa_m2", 0.1)


def test_panel_with_cystatin_only() -> None:
    panel = egfr_panel(M, 60.0, cystatin_c_mg_l=1.2)
    assert panel.capa == pytest.approx(59.260530, rel=REL)
    assert (panel.lmr, panel.combined, panel.ckd_epi_2021, panel.cockcroft_gault) == (None,) * 4


def test_panel_with_creatinine_without_weight_has_no_cockcroft_gault() -> None:
    panel = egfr_panel(F, 60.0, creatinine_umol_l=100.0)
    assert panel.lmr == pytest.approx(51.952140, rel=REL)
    assert panel.cockcroft_gault is None
    assert panel.capa is None
    assert panel.combined is None


def test_panel_with_nothing_measured() -> None:
    assert egfr_panel(F, 60.0) == EgfrPanel(None, None, None, None, None)


# --- Validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: lmr_egfr(F, 17.0, 100.0), "age_years"),  # LMR is an adult equation
        (lambda: lmr_egfr(F, 60.0, 1.1), "creatinine_umol_l"),  # mg/dL entered as umol/L
        (lambda: lmr_egfr("F", 60.0, 100.0), "sex"),  # type: ignore[arg-type]
        (lambda: ckd_epi_2021_egfr(M, 16.0, 100.0), "age_years"),
        (lambda: ckd_epi_2021_egfr(M, 60.0, math.inf), "creatinine_umol_l"),
        (lambda: cockcroft_gault_crcl_ml_min(M, 60.0, 5.0, 100.0), "weight_kg"),
        (lambda: cockcroft_gault_crcl_ml_min(M, 60.0, 70.0, -1.0), "creatinine_umol_l"),
        (lambda: capa_egfr(60.0, 120.0), "cystatin_c_mg_l"),  # mg/dL-like mix-up
        (lambda: capa_egfr(130.0, 1.0), "age_years"),
        (lambda: absolute_gfr_ml_min(-5.0, 1.8), "relative_ml_min_173"),
        (lambda: absolute_gfr_ml_min(60.0, 180.0), "bsa_m2"),  # height given for BSA
        (lambda: relative_gfr_ml_min_173(500.0, 1.8), "absolute_ml_min"),
        (lambda: egfr_panel(M, 60.0, creatinine_umol_l=100.0, weight_kg=0.0), "weight_kg"),
        (lambda: egfr_panel(None, 60.0), "sex"),  # type: ignore[arg-type]
        (lambda: combined_egfr(F, 60.0, 100.0, True, 0.2), "cystatin_c_mg_l"),
    ],
)
def test_bad_input_names_the_field(call: object, field: str) -> None:
    assert callable(call)
    with pytest.raises(InvalidInputError) as error:
        call()
    assert error.value.field == field
