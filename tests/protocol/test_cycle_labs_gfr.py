"""The GFR of the pre-cycle check on START-01 v1.0 (CY05: GFR > 50 delays, CY06: >= 30 stops):
creatinine alone is enough (LMR), both markers give their mean, a measured GFR takes
precedence; eligibility still needs the mean or a measured GFR. LMR and CAPA values are worked
by hand in tests/clinical/test_egfr_lund_model.py (man, 64 years):
creatinine 95 -> LMR 66.233792; cystatin C 1.10 -> CAPA 65.172461; mean 65.703127;
creatinine 150: X = 2.56 + 0.00968 * 30 = 2.8504, exp(2.8504 + 0.8103908) = 38.892086.
"""

from __future__ import annotations

from typing import Any

from startrt.clinical.sex import Sex
from startrt.protocol.criteria import Status
from startrt.protocol.cycle_labs import CycleLabDecision, check_pre_cycle_labs
from startrt.protocol.definition import Protocol
from startrt.protocol.screening import PatientLabs, gfr_values

COUNTS = {
    "hemoglobin_g_l": 118,
    "platelets_10e9_l": 160,
    "leukocytes_10e9_l": 4.8,
    "neutrophils_10e9_l": 2.9,
}
MAN = {"sex": Sex.MALE, "age_years": 64.0}


def check(protocol: Protocol, **labs: Any) -> CycleLabDecision:
    return check_pre_cycle_labs(PatientLabs(**COUNTS, **MAN, **labs), protocol)


def gfr_condition(decision: CycleLabDecision) -> Any:
    return next(result for result in decision.conditions if result.id == "CY05")


def test_creatinine_alone_decides_on_lmr(protocol: Protocol) -> None:
    decision = check(protocol, creatinine_umol_l=95)
    assert decision.action == "go"
    assert gfr_condition(decision).value == 66.2  # LMR 66.233792 to 0.1
    assert decision.inputs["gfr_ml_min_173"] == 66.2
    assert decision.inputs["gfr_source"] == "LMR"
    assert decision.inputs["lmr_ml_min_173"] == 66.2
    assert "capa_ml_min_173" not in decision.inputs
    assert decision.inputs["age_years"] == 64.0


def test_a_high_creatinine_alone_delays(protocol: Protocol) -> None:
    decision = check(protocol, creatinine_umol_l=150)  # LMR 38.892086: <= 50, >= 30
    assert decision.action == "delay"
    assert gfr_condition(decision).value == 38.9


def test_both_markers_decide_on_their_mean(protocol: Protocol) -> None:
    decision = check(protocol, creatinine_umol_l=95, cystatin_c_mg_l=1.10)
    assert decision.action == "go"
    assert decision.inputs["gfr_ml_min_173"] == 65.7  # (66.233792 + 65.172461) / 2
    assert decision.inputs["gfr_source"] == "mean of LMR and CAPA"
    assert (decision.inputs["lmr_ml_min_173"], decision.inputs["capa_ml_min_173"]) == (66.2, 65.2)
    assert decision.warnings == ()  # 1.6 % apart


def test_a_measured_gfr_takes_precedence(protocol: Protocol) -> None:
    # the estimate (66) would go; the measured 45 delays
    decision = check(protocol, creatinine_umol_l=95, measured_gfr_ml_min_173=45)
    assert decision.action == "delay"
    assert (decision.inputs["gfr_ml_min_173"], decision.inputs["gfr_source"]) == (45, "measured")
    assert "lmr_ml_min_173" not in decision.inputs


def test_without_age_the_gfr_is_missing(protocol: Protocol) -> None:
    labs = PatientLabs(**COUNTS, sex=Sex.MALE, creatinine_umol_l=95)
    decision = check_pre_cycle_labs(labs, protocol)
    assert decision.action == "incomplete"
    assert gfr_condition(decision).status is Status.MISSING


def test_a_refused_estimate_is_a_warning_and_leaves_the_gfr_missing(protocol: Protocol) -> None:
    decision = check_pre_cycle_labs(
        PatientLabs(**COUNTS, sex=Sex.MALE, age_years=16, creatinine_umol_l=95), protocol
    )
    assert decision.action == "incomplete"
    assert decision.warnings[0].startswith("GFR not computed: age_years")


def test_eligibility_still_needs_both_markers_or_a_measured_gfr() -> None:
    labs = PatientLabs(**MAN, creatinine_umol_l=95)
    values, _ = gfr_values(labs, 0.10)
    assert values == {"gfr_ml_min_173": None, "gfr_source": None}
    values, _ = gfr_values(labs, 0.10, single_marker=True)
    assert (values["gfr_ml_min_173"], values["gfr_source"]) == (66.2, "LMR")
