"""Eligibility per criterion on START-01 v1.0 screening records, boundaries included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from startrt.protocol.criteria import Status
from startrt.protocol.definition import Protocol
from startrt.protocol.eligibility import assess_eligibility
from startrt.protocol.records import parse_record
from startrt.protocol.screening import ScreeningRecord
from startrt.validation import InvalidInputError
from support.records import SCREENING, eligible_screening


def eligible_record(**changes: Any) -> dict[str, Any]:
    """The shared eligible record (male, 64 y, creatinine 85 umol/L), with `changes` applied."""
    return eligible_screening(**{"sex": "male", **changes})


def assess(protocol: Protocol, **changes: Any) -> Any:
    record = parse_record(ScreeningRecord, eligible_record(**changes), "screening")
    return assess_eligibility(record, protocol)


def status_of(decision: Any, criterion_id: str) -> Status:
    return next(c.status for c in decision.criteria if c.id == criterion_id)


def test_complete_record_is_eligible_and_lists_every_criterion(protocol: Protocol) -> None:
    decision = assess(protocol)
    assert decision.eligible is True
    expected = len(protocol.eligibility.inclusion) + len(protocol.eligibility.exclusion)
    assert len(decision.criteria) == expected
    inclusion = [c for c in decision.criteria if c.kind == "inclusion"]
    exclusion = [c for c in decision.criteria if c.kind == "exclusion"]
    assert all(c.status is Status.MET for c in inclusion)
    assert all(c.status is Status.NOT_MET for c in exclusion)
    assert decision.protocol == "START-01 v1.0"
    assert decision.inputs["hemoglobin_g_l"] == 128


@pytest.mark.parametrize(
    ("field", "value", "criterion", "eligible"),
    [
        ("hemoglobin_g_l", 90, "IN13", False),  # "> 90": exactly 90 is not enough
        ("hemoglobin_g_l", 90.5, "IN13", True),
        ("platelets_10e9_l", 100, "IN14", False),
        ("leukocytes_10e9_l", 3.0, "IN15", False),
        ("neutrophils_10e9_l", 1.5, "IN16", False),
        ("neutrophils_10e9_l", 1.6, "IN16", True),
        ("albumin_g_l", 25, "IN20", False),
        ("measured_gfr_ml_min_173", 50, "IN12", False),
        ("measured_gfr_ml_min_173", 50.1, "IN12", True),
        ("age_years", 17.9, "IN01", False),
        ("age_years", 18, "IN01", True),
        ("ecog", 2, "IN03", False),
        ("krenning_score", 2, "IN06", False),
        ("pheochromocytoma_or_paraganglioma", True, "IN05", False),
    ],
)
def test_thresholds(
    protocol: Protocol, field: str, value: Any, criterion: str, eligible: bool
) -> None:
    decision = assess(protocol, **{field: value})
    assert decision.eligible is eligible
    assert status_of(decision, criterion) is (Status.MET if eligible else Status.NOT_MET)


@pytest.mark.parametrize(
    ("field", "uln_field", "value", "uln", "eligible"),
    [
        ("ast_u_l", "ast_u_l_uln", 134.9, 45, True),  # < 3 x 45 = 135
        ("ast_u_l", "ast_u_l_uln", 135, 45, False),
        ("alt_u_l", "alt_u_l_uln", 150, 50, False),
        ("bilirubin_umol_l", "bilirubin_umol_l_uln", 51.9, 26, True),  # < 2 x 26 = 52
        ("bilirubin_umol_l", "bilirubin_umol_l_uln", 52, 26, False),
    ],
)
def test_liver_limits_scale_with_the_labs_own_uln(
    protocol: Protocol, field: str, uln_field: str, value: float, uln: float, eligible: bool
) -> None:
    assert assess(protocol, **{field: value, uln_field: uln}).eligible is eligible


def test_missing_uln_makes_the_criterion_missing(protocol: Protocol) -> None:
    decision = assess(protocol, ast_u_l_uln=None)
    assert status_of(decision, "IN17") is Status.MISSING
    assert decision.eligible is None


@pytest.mark.parametrize(
    ("days_before", "met"),
    # months = days / 30.4375: 30 d -> 0.986 (< 1), 31 d -> 1.018; 730 d -> 23.98, 731 d -> 24.02
    [(30, False), (31, True), (730, True), (731, False)],
)
def test_progression_window_1_to_24_months(protocol: Protocol, days_before: int, met: bool) -> None:
    imaging = (SCREENING - timedelta(days=days_before)).isoformat()
    decision = assess(protocol, progression_imaging_date=imaging)
    assert status_of(decision, "IN07") is (Status.MET if met else Status.NOT_MET)


@pytest.mark.parametrize(("days", "met"), [(27, False), (28, True)])
def test_washout_four_weeks_applies_only_after_non_ssa_therapy(
    protocol: Protocol, days: int, met: bool
) -> None:
    assert status_of(assess(protocol), "IN09") is Status.MET  # no earlier non-SSA therapy
    end = (SCREENING - timedelta(days=days)).isoformat()
    decision = assess(protocol, prior_non_ssa_therapy=True, prior_non_ssa_therapy_end_date=end)
    assert status_of(decision, "IN09") is (Status.MET if met else Status.NOT_MET)


def test_contraception_only_for_women_of_childbearing_potential(protocol: Protocol) -> None:
    assert next(c for c in assess(protocol).criteria if c.id == "IN21").value == "not applicable"
    woman = {"sex": "female", "childbearing_potential": True}
    assert assess(protocol, **woman, highly_effective_contraception=False).eligible is False
    assert assess(protocol, **woman, highly_effective_contraception=True).eligible is True
    assert assess(protocol, **woman).eligible is None


def test_exclusion_met_excludes(protocol: Protocol) -> None:
    decision = assess(protocol, prior_prrt=True)
    assert decision.eligible is False
    assert [c.id for c in decision.failing()] == ["EX02"]


def test_missing_data_is_undecided_but_a_failure_decides(protocol: Protocol) -> None:
    missing = assess(protocol, consent_signed=None)
    assert missing.eligible is None
    assert [c.id for c in missing.missing()] == ["IN02"]
    assert assess(protocol, consent_signed=None, ecog=3).eligible is False


def test_judgement_criteria_are_marked_as_inputs(protocol: Protocol) -> None:
    judged = {c.id for c in assess(protocol).criteria if c.judgement}
    assert judged == {"IN11", "EX06", "EX07"}


def test_combined_gfr_is_the_mean_of_lmr_and_capa(protocol: Protocol) -> None:
    # male 64 y, creatinine 85 umol/L (< 180): X = 2.56 + 0.00968 * 95 = 3.4796
    # LMR = exp(3.4796 - 0.0158*64 + 0.438*ln 64) = exp(3.4796 - 1.0112 + 1.821586) = 72.99
    # CAPA, cystatin C 1.0: 130 * 1 * 64^-0.117 - 7 = 130 * 0.614703 - 7 = 72.91
    # mean 72.95
    decision = assess(protocol, measured_gfr_ml_min_173=None, cystatin_c_mg_l=1.0)
    assert decision.derived["gfr_source"] == "mean of LMR and CAPA"
    assert decision.derived["lmr_ml_min_173"] == pytest.approx(72.99, abs=0.1)
    assert decision.derived["capa_ml_min_173"] == pytest.approx(72.91, abs=0.1)
    assert decision.derived["gfr_ml_min_173"] == pytest.approx(72.95, abs=0.1)
    assert decision.warnings == ()


def test_disagreeing_lmr_and_capa_are_flagged(protocol: Protocol) -> None:
    decision = assess(protocol, measured_gfr_ml_min_173=None, cystatin_c_mg_l=2.0)
    assert any("LMR" in warning and "CAPA" in warning for warning in decision.warnings)


def test_capecitabine_contraindication_excludes(protocol: Protocol) -> None:
    decision = assess(protocol, dpd_deficiency=True)
    assert status_of(decision, "EX04") is Status.MET
    assert decision.eligible is False
    # Cockcroft-Gault: (140 - 64) * 78 * 1.23 / 300 = 24.3 ml/min < 30: contraindicated
    assert status_of(assess(protocol, creatinine_umol_l=300), "EX04") is Status.MET
    assert status_of(assess(protocol, dpd_deficiency=None), "EX04") is Status.MISSING


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("hemoglobin_g_l", 900),  # g/L: 900 is impossible (a g/dL mix-up gives 9)
        ("platelets_10e9_l", -5),
        ("ecog", 7),
        ("age_years", 140),
        ("krenning_score", 5),
    ],
)
def test_implausible_values_are_refused_with_the_field_named(field: str, value: Any) -> None:
    with pytest.raises(InvalidInputError, match=field):
        parse_record(ScreeningRecord, eligible_record(**{field: value}), "screening")


def test_dates_after_screening_are_refused() -> None:
    later = (SCREENING + timedelta(days=1)).isoformat()
    with pytest.raises(InvalidInputError, match="progression_imaging_date"):
        parse_record(ScreeningRecord, eligible_record(progression_imaging_date=later), "screening")


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="haemoglobin"):
        parse_record(ScreeningRecord, eligible_record(haemoglobin=120), "screening")


def test_eu_register_criteria_are_a_protocol_amendment(
    protocol: Protocol, amend: Callable[..., Protocol]
) -> None:
    """The EU register's extra criteria need no code: they are added in a protocol version."""
    extra = [
        {
            "id": "IN22",
            "text": "Lesion SUVmean >= 2 x liver SUVmean",
            "field": "lesion_to_liver_suv_ratio",
            "operator": ">=",
            "threshold": 2,
        },
        {
            "id": "IN23",
            "text": "SSTR PET <= 3 months before randomization",
            "field": "sstr_pet_months_before_screening",
            "operator": "<=",
            "threshold": 3,
        },
        {
            "id": "IN24",
            "text": "Ki-67 <= 50 %",
            "field": "ki67_percent",
            "operator": "<=",
            "threshold": 50,
        },
        {
            "id": "IN25",
            "text": "Life expectancy > 3 months",
            "field": "life_expectancy_months",
            "operator": ">",
            "threshold": 3,
        },
    ]
    inclusion = protocol.model_dump()["eligibility"]["inclusion"]
    eu = amend("eligibility", inclusion=[*inclusion, *extra])
    complete = {
        "lesion_to_liver_suv_ratio": 2.0,
        "sstr_pet_date": (SCREENING - timedelta(days=91)).isoformat(),  # 2.99 months
        "ki67_percent": 50,
        "life_expectancy_months": 12,
    }
    assert assess(eu, **complete).eligible is True
    assert assess(eu).eligible is None  # the v1.0 record lacks the new values
    assert assess(eu, **{**complete, "lesion_to_liver_suv_ratio": 1.9}).eligible is False
    assert assess(eu, **{**complete, "ki67_percent": 51}).eligible is False
    late_pet = (SCREENING - timedelta(days=92)).isoformat()  # 92 / 30.4375 = 3.02 months
    assert assess(eu, **{**complete, "sstr_pet_date": late_pet}).eligible is False


def test_a_very_high_cockcroft_gault_clearance_is_judged_not_refused(protocol: Protocol) -> None:
    # 18 y, 200 kg, creatinine 40 umol/L: (140 - 18) x 200 x 1.23 / 40 = 750.3 ml/min, from
    # plausible inputs; the capecitabine renal check must judge it (no contraindication)
    decision = assess(protocol, age_years=18, weight_kg=200, creatinine_umol_l=40)
    assert status_of(decision, "EX04") is Status.NOT_MET  # contraindication to capecitabine
    assert decision.eligible is True
