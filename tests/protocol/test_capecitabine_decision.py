"""Capecitabine as a protocol decision, against values computed by hand.

START-01 v1.0: 825 mg/m2 twice daily (DuBois BSA), days 1-14 with PRRT cycles 1-4 of CAP-dTOC;
75 % at CrCl 30-50 ml/min, contraindicated below 30 (Xeloda SmPC 4.2-4.3); whole 500 mg tablets
and at most three 150 mg tablets per administration, the evening dose equal or one tablet more,
the daily total closest to 2 x target (the software's rounding rule)."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.conftest import Amend
from startrt.clinical.sex import Sex
from startrt.protocol.capecitabine import (
    CapecitabineDecision,
    CapecitabineFindings,
    capecitabine_decision,
    gives_capecitabine,
)
from startrt.protocol.definition import Protocol
from startrt.validation import InvalidInputError

# 180 cm, 80 kg. DuBois: 0.007184 x 80^0.425 x 180^0.725 = 0.007184 x 6.4385 x 43.164 = 1.9964 m2.
# Mosteller: sqrt(180 x 80 / 3600) = sqrt(4) = 2 m2 exactly.
BODY: dict[str, Any] = {"height_cm": 180.0, "weight_kg": 80.0}


def decide(
    protocol: Protocol, arm: str = "CAP-dTOC", cycle: int = 1, **values: Any
) -> CapecitabineDecision:
    return capecitabine_decision(arm, cycle, protocol=protocol, **{**BODY, **values})


def tablets(decision: CapecitabineDecision) -> tuple[dict[int, int], dict[int, int]]:
    assert decision.dose is not None
    return decision.dose.tablets_morning, decision.dose.tablets_evening


def test_full_dose_by_dubois_bsa_in_whole_tablets(protocol: Protocol) -> None:
    decision = decide(protocol, crcl_ml_min=90.0)
    # 1.9964 m2 x 825 mg/m2 = 1647.0 mg per administration, 3294.1 mg daily. 1650 = 3 x 500 +
    # 1 x 150 twice: 3300 (5.9 off); 1500 + 1650 = 3150 (144 off); 1600 cannot be made.
    assert decision.bsa_m2 == pytest.approx(1.9964, abs=1e-4)
    assert decision.dose.target_mg == pytest.approx(1647.0, abs=0.1)
    assert (decision.dose.morning_mg, decision.dose.evening_mg) == (1650, 1650)
    assert tablets(decision) == ({500: 3, 150: 1}, {500: 3, 150: 1})
    assert decision.dose.renal_factor == 1.0
    # 14 days x 2 administrations: 84 x 500 mg and 28 x 150 mg
    assert (decision.course_days, decision.course_tablets) == (14, {500: 84, 150: 28})
    assert (decision.crcl_ml_min, decision.crcl_source) == (90.0, "given")
    assert (decision.prescribable, decision.contraindications) == (True, ())
    assert decision.reason == "no contraindication found"


def test_the_decision_record_names_inputs_rule_and_protocol(protocol: Protocol) -> None:
    decision = decide(protocol, cycle=3, crcl_ml_min=90.0, dose_level_percent=75)
    assert (decision.kind, decision.protocol) == ("capecitabine", "START-01 v1.0")
    assert (decision.arm, decision.cycle_number, decision.bsa_formula) == ("CAP-dTOC", 3, "dubois")
    for part in ("825 mg/m2", "dubois", "days 1-14", "cycles 1-4", "CAP-dTOC", "< 30", "75 %"):
        assert part in decision.rule
    assert decision.inputs == {
        "arm_id": "CAP-dTOC",
        "cycle_number": 3,
        "height_cm": 180.0,
        "weight_kg": 80.0,
        "crcl_ml_min": 90.0,
        "sex": None,
        "age_years": None,
        "creatinine_umol_l": None,
        "dose_level_percent": 75,
        "dpd_deficiency": None,
        "pregnant_or_lactating": None,
        "severe_hepatic_impairment": None,
        "brivudine_within_4_weeks": None,
        "neutrophils_10e9_l": None,
        "platelets_10e9_l": None,
        "other_contraindication": None,
    }
    stored = decision.model_dump(mode="json")  # as the web stores it
    assert stored["course_tablets"] == {str(k): v for k, v in decision.course_tablets.items()}
    assert CapecitabineDecision.model_validate(stored) == decision


def test_mosteller_bsa_and_dose_levels(amend: Amend) -> None:
    mosteller = amend("capecitabine", bsa_formula="mosteller")
    full = decide(mosteller, crcl_ml_min=90.0)
    # 2 m2 x 825 = 1650 mg: exactly 3 x 500 + 1 x 150, morning and evening
    assert full.bsa_m2 == 2.0
    assert (full.dose.target_mg, full.dose.morning_mg, full.dose.evening_mg) == (1650, 1650, 1650)
    half = decide(mosteller, crcl_ml_min=90.0, dose_level_percent=50)
    # 50 %: 825 mg, 1650 daily. 800 (500 + 2 x 150) twice = 1600 (50 off); 800 + 950 = 1750
    # (100 off); 825 and 850 cannot be made
    assert half.dose.target_mg == 825.0
    assert tablets(half) == ({500: 1, 150: 2}, {500: 1, 150: 2})
    assert half.course_tablets == {500: 28, 150: 56}
    with pytest.raises(InvalidInputError) as refused:
        decide(mosteller, crcl_ml_min=90.0, dose_level_percent=60)
    assert refused.value.field == "dose_level_percent"


@pytest.mark.parametrize(
    ("crcl_ml_min", "factor"), [(30.0, 0.75), (45.0, 0.75), (50.0, 0.75), (50.1, 1.0)]
)
def test_moderate_renal_impairment_gives_75_percent(
    protocol: Protocol, crcl_ml_min: float, factor: float
) -> None:
    decision = decide(protocol, crcl_ml_min=crcl_ml_min)
    assert decision.dose.renal_factor == factor
    assert decision.dose.target_mg == pytest.approx(1.9964 * 825 * factor, abs=0.1)
    assert decision.prescribable


def test_75_percent_in_tablets(protocol: Protocol) -> None:
    decision = decide(protocol, crcl_ml_min=45.0)
    # 1647.0 x 0.75 = 1235.3 mg, 2470.6 daily. 1150 (2 x 500 + 150) + 1300 (2 x 500 + 2 x 150)
    # = 2450 (20.6 off); 1300 twice = 2600; 950 + 1450 = 2400; 1250 cannot be made.
    assert (decision.dose.morning_mg, decision.dose.evening_mg) == (1150, 1300)
    assert tablets(decision) == ({500: 2, 150: 1}, {500: 2, 150: 2})
    assert decision.course_tablets == {500: 56, 150: 42}


def test_the_protocol_may_keep_the_full_dose_in_moderate_impairment(amend: Amend) -> None:
    unreduced = amend("capecitabine", reduce_for_moderate_renal_impairment=False)
    decision = decide(unreduced, crcl_ml_min=40.0)
    assert decision.dose.renal_factor == 1.0
    assert "not reduced" in decision.rule


def test_below_crcl_30_contraindicated_without_a_dose(protocol: Protocol) -> None:
    decision = decide(protocol, crcl_ml_min=29.9)
    assert (decision.dose, decision.course_tablets, decision.prescribable) == (None, None, False)
    [found] = decision.contraindications
    assert (found.field, found.value) == ("crcl_ml_min", 29.9)
    assert "severe renal impairment" in found.reason
    assert decision.reason.startswith("contraindicated: severe renal impairment")


def test_cockcroft_gault_crcl_from_creatinine(protocol: Protocol) -> None:
    # male, 70 y, 60 kg, creatinine 150 umol/L: (140 - 70) x 60 x 1.23 / 150 = 34.44 ml/min
    values = {"weight_kg": 60.0, "sex": Sex.MALE, "age_years": 70.0, "creatinine_umol_l": 150.0}
    decision = decide(protocol, **values)
    assert decision.crcl_ml_min == pytest.approx(34.44)
    assert decision.crcl_source == "Cockcroft-Gault"
    assert decision.dose.renal_factor == 0.75
    assert decision.inputs["sex"] == "male"
    with pytest.raises(InvalidInputError) as both:
        decide(protocol, **values, crcl_ml_min=34.0)
    assert both.value.field == "crcl_ml_min"
    with pytest.raises(InvalidInputError) as missing:
        decide(protocol, creatinine_umol_l=150.0, age_years=70.0)
    assert missing.value.field == "sex"


def test_without_renal_function_not_prescribable(protocol: Protocol) -> None:
    decision = decide(protocol)
    assert decision.dose.renal_factor == 1.0
    assert (decision.crcl_ml_min, decision.crcl_source, decision.prescribable) == (
        None,
        None,
        False,
    )
    assert decision.reason.startswith("renal function not assessed")


def test_every_contraindication_is_named_with_its_reason(protocol: Protocol) -> None:
    findings = CapecitabineFindings(
        dpd_deficiency=True,
        pregnant_or_lactating=False,
        neutrophils_10e9_l=1.5,  # not < 1.5
        platelets_10e9_l=80.0,
        other_contraindication=True,
    )
    decision = decide(protocol, crcl_ml_min=25.0, findings=findings)
    found = {item.field: item.reason for item in decision.contraindications}
    assert list(found) == [
        "crcl_ml_min",
        "dpd_deficiency",
        "platelets_10e9_l",
        "other_contraindication",
    ]
    assert "DPD deficiency" in found["dpd_deficiency"]
    assert "platelets 80 x10^9/L < 100" in found["platelets_10e9_l"]
    assert found["other_contraindication"] == (
        "other label contraindication recorded by the investigator"
    )
    assert not decision.prescribable
    # a dose is still computed (shown) when only a finding other than the kidneys refuses it
    low_platelets = decide(
        protocol, crcl_ml_min=90.0, findings=CapecitabineFindings(platelets_10e9_l=80.0)
    )
    assert (low_platelets.dose is not None, low_platelets.prescribable) == (True, False)
    with pytest.raises(InvalidInputError) as refused:
        decide(protocol, crcl_ml_min=90.0, findings=CapecitabineFindings(dpd_deficiency="yes"))
    assert refused.value.field == "dpd_deficiency"


@pytest.mark.parametrize(
    ("arm", "cycle", "field", "rule"),
    [
        ("dTOC", 1, "arm_id", "arm dTOC gives no capecitabine"),
        ("standard", 1, "arm_id", "arm standard gives no capecitabine"),
        ("CAP-dTOC", 5, "cycle_number", "capecitabine in cycles 1-4 only"),
        ("CAP-dTOC", 0, "cycle_number", "must be a whole number >= 1"),
    ],
)
def test_another_arm_or_a_later_cycle_is_refused(
    protocol: Protocol, arm: str, cycle: int, field: str, rule: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        decide(protocol, arm, cycle, crcl_ml_min=90.0)
    assert (refused.value.field, refused.value.rule) == (field, rule)


def test_an_unknown_arm_is_refused_by_name(protocol: Protocol) -> None:
    with pytest.raises(InvalidInputError) as refused:
        decide(protocol, "CAP", crcl_ml_min=90.0)
    assert refused.value.field == "arm_id"
    assert "CAP-dTOC" in refused.value.rule


def test_which_cycles_give_capecitabine_comes_from_the_protocol(
    protocol: Protocol, amend: Amend
) -> None:
    assert [gives_capecitabine("CAP-dTOC", n, protocol) for n in range(1, 7)] == [
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert not gives_capecitabine("dTOC", 1, protocol)
    shorter = amend("schedule", capecitabine_prrt_cycles=2, capecitabine_days=7)
    assert not gives_capecitabine("CAP-dTOC", 3, shorter)
    with pytest.raises(InvalidInputError, match="cycles 1-2 only"):
        decide(shorter, cycle=3, crcl_ml_min=90.0)
    # 7 days x 2 x (3 x 500 + 1 x 150): 42 x 500 mg and 14 x 150 mg
    assert decide(shorter, cycle=2, crcl_ml_min=90.0).course_tablets == {500: 42, 150: 14}
