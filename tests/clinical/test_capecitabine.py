"""Capecitabine dosing, contraindications and toxicity modification.

Worked examples are derived by hand from the rounding rule: each administration is the
fewest-tablet combination of 500/150 mg tablets, the evening equals the morning or has one more
150 mg tablet (never 500 mg more: a pharmacist would query it), the daily total is closest to
2 x target, ties prefer equal doses, then the lower total.
Makeable amounts below 1000 mg: 150, 300, 450, 500, 600, 650, 750, 800, 900, 950; every multiple
of 50 from 1000 mg up.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from startrt.clinical.capecitabine import (
    CapecitabineContraindicatedError,
    CapecitabineDose,
    DoseModification,
    capecitabine_dose,
    contraindications,
    dose_modification,
    tablet_combination,
)
from startrt.validation import InvalidInputError

PROTOCOL_DOSE_MG_PER_M2 = 825.0


def tablets_mg(tablets: dict[int, int]) -> int:
    return sum(strength * count for strength, count in tablets.items())


# --- tablet_combination -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose_mg", "expected"),
    [
        (0, {500: 0, 150: 0}),
        (150, {500: 0, 150: 1}),
        (500, {500: 1, 150: 0}),
        (650, {500: 1, 150: 1}),  # 500 + 150
        (1000, {500: 2, 150: 0}),
        (1050, None),  # would need 7 x 150 (or 500 + 550): more than three 150 mg tablets
        (1100, None),  # 500 + 4 x 150
        (1350, None),  # 9 x 150
        (1450, {500: 2, 150: 3}),  # 1000 + 450: the label's 1000 mg/m2 table uses it
        (1700, None),  # 500 + 8 x 150
        (1500, {500: 3, 150: 0}),  # 3 tablets, not 10 x 150
        (1650, {500: 3, 150: 1}),  # 1500 + 150
        (2800, {500: 5, 150: 2}),  # 2500 + 300
    ],
)
def test_tablet_combination_fewest_tablets(dose_mg: int, expected: dict[int, int]) -> None:
    assert tablet_combination(dose_mg) == expected


@pytest.mark.parametrize("dose_mg", [50, 100, 200, 250, 350, 400, 550, 700, 850, 1025])
def test_tablet_combination_not_makeable(dose_mg: int) -> None:
    assert tablet_combination(dose_mg) is None


def test_makeable_doses_are_500s_plus_up_to_three_150s() -> None:
    # second method: with at most three 150 mg tablets the remainder modulo 500 mg must be
    # 0, 150, 300 or 450 mg
    for dose_mg in range(0, 6001, 50):
        tablets = tablet_combination(dose_mg)
        assert (tablets is not None) == (dose_mg % 500 in (0, 150, 300, 450)), dose_mg
        if tablets is not None:
            assert tablets_mg(tablets) == dose_mg
            assert tablets[150] <= 3


@pytest.mark.parametrize("dose_mg", [-150, 1500.0, True, "1500"])
def test_tablet_combination_bad_input(dose_mg: object) -> None:
    with pytest.raises(InvalidInputError) as error:
        tablet_combination(dose_mg)  # type: ignore[arg-type]
    assert error.value.field == "dose_mg"


# --- capecitabine_dose: worked examples -------------------------------------------------------


def assert_dose(
    dose: CapecitabineDose,
    morning_mg: int,
    evening_mg: int,
    tablets_morning: dict[int, int],
    tablets_evening: dict[int, int],
) -> None:
    assert (dose.morning_mg, dose.evening_mg) == (morning_mg, evening_mg)
    assert dose.tablets_morning == tablets_morning
    assert dose.tablets_evening == tablets_evening
    assert tablets_mg(dose.tablets_morning) == dose.morning_mg
    assert tablets_mg(dose.tablets_evening) == dose.evening_mg


def test_equal_split() -> None:
    # target 2.0 * 825 = 1650 mg; daily 3300 = 1650 + 1650 exactly; 1650 = 3 x 500 + 1 x 150
    dose = capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2)
    assert dose.target_mg == pytest.approx(1650.0)
    assert dose.renal_factor == 1.0
    assert dose.dose_level_percent == 100
    assert_dose(dose, 1650, 1650, {500: 3, 150: 1}, {500: 3, 150: 1})
    assert any("rounding rule" in note for note in dose.notes)


def test_uneven_split() -> None:
    # target 1.9 * 825 = 1567.5 mg; 2 x target = 3135
    # makeable doses near target: 1450, 1500, 1650, 1800 (500s plus at most three 150s)
    # equal pairs: 1500+1500 = 3000 (|d| 135), 1650+1650 = 3300 (165)
    # +150 pairs (2m+150): m = 1500 -> 3150 (15): 3 x 500 then 3 x 500 + 1 x 150 (one more tablet)
    # (no +500 pairs: 1300 / 1800 would be 35 mg off, but 500 mg apart)
    # best: 1500 / 1650 (15 mg from target)
    dose = capecitabine_dose(1.9, PROTOCOL_DOSE_MG_PER_M2)
    assert dose.target_mg == pytest.approx(1567.5)
    assert_dose(dose, 1500, 1650, {500: 3, 150: 0}, {500: 3, 150: 1})


def test_never_more_than_three_small_tablets() -> None:
    # target 1.8 * 825 * 0.75 = 1113.75; 2 x target = 2227.5
    # makeable near target: 950 (1x500+3x150), 1000, 1150 (2x500+1x150), 1300
    # equal: 1000+1000 = 2000 (227.5), 1150+1150 = 2300 (72.5)
    # +150: 1000 -> 1150 = 2150 (77.5); 1150 -> 1300 = 2450 (222.5); 950 -> 1100 not makeable
    # best: 1150 / 1150 (72.5 mg); the fewer-mg-off 1050 / 1200 would take 7 and 8 tablets
    dose = capecitabine_dose(1.8, PROTOCOL_DOSE_MG_PER_M2, crcl_ml_min=45.0)
    assert dose.target_mg == pytest.approx(1113.75)
    assert_dose(dose, 1150, 1150, {500: 2, 150: 1}, {500: 2, 150: 1})


def test_tie_prefers_equal_doses() -> None:
    # target 1.88 * 625 = 1175; 2 x target = 2350; makeable: 950, 1000, 1150, 1300, 1450
    # equal: 1150+1150 = 2300 (50); 1300+1300 = 2600 (250)
    # +150: 1000 -> 1150 = 2150 (200); 1150 -> 1300 = 2450 (100)
    # tie at 50 mg would be with 950 -> 1450 (+500), no longer a candidate -> 1150 / 1150
    dose = capecitabine_dose(1.88, 625.0)
    assert dose.target_mg == pytest.approx(1175.0)
    assert_dose(dose, 1150, 1150, {500: 2, 150: 1}, {500: 2, 150: 1})


def test_uneven_pair_at_the_renal_dose() -> None:
    # target 2.0 * 825 * 0.75 = 1237.5; 2 x target = 2475
    # equal: 1150+1150 = 2300 (175); 1300+1300 = 2600 (125)
    # +150: 1150 -> 1300 = 2450 (25) (1000 -> 1500 would tie, but is 500 mg apart)
    dose = capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2, crcl_ml_min=40.0)
    assert dose.renal_factor == 0.75
    assert_dose(dose, 1150, 1300, {500: 2, 150: 1}, {500: 2, 150: 2})


def test_tie_survives_float_noise_in_the_target() -> None:
    # 2.45 * 750 = 1837.5 exactly, but in floating point it is 1837.5000000000002
    # 2 x target = 3675. equal: 1800+1800 = 3600 (75), 1950+1950 = 3900 (225)
    # +150: 1800 (3x500+2x150) -> 1950 (3x500+3x150) = 3750 (75); 1650 -> 1800 = 3450 (225)
    # tie at 75 mg -> equal doses 1800 / 1800 (unrounded float would pick 1800 / 1950)
    dose = capecitabine_dose(2.45, 750.0)
    assert_dose(dose, 1800, 1800, {500: 3, 150: 2}, {500: 3, 150: 2})


def test_a_500_mg_tablet_never_separates_morning_and_evening() -> None:
    # target 1.55 * 250 = 387.5
    # 2 x target = 775. equal: 300+300 = 600 (175), 450+450 = 900 (125)
    # +150: 300 (2x150) -> 450 (3x150) = 750 (25); 450 -> 600 (4x150) = 1050
    # 150 / 650 (800, also 25 mg off) would put 500 mg between the doses: not a candidate
    dose = capecitabine_dose(1.55, 250.0)
    assert_dose(dose, 300, 450, {500: 0, 150: 2}, {500: 0, 150: 3})


def test_renal_reduction_at_moderate_impairment() -> None:
    dose = capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2, crcl_ml_min=40.0)
    assert dose.renal_factor == 0.75
    assert any("75 %" in note and "CrCl 40" in note for note in dose.notes)


@pytest.mark.parametrize("crcl_ml_min", [30.0, 50.0])
def test_renal_reduction_applies_at_exactly_30_and_50(crcl_ml_min: float) -> None:
    dose = capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2, crcl_ml_min=crcl_ml_min)
    assert dose.renal_factor == 0.75
    assert dose.target_mg == pytest.approx(1237.5)  # 2.0 * 825 * 0.75


def test_no_renal_reduction_just_above_50() -> None:
    dose = capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2, crcl_ml_min=50.1)
    assert dose.renal_factor == 1.0
    assert dose.target_mg == pytest.approx(1650.0)


def test_moderate_impairment_not_reduced_when_the_protocol_says_so() -> None:
    dose = capecitabine_dose(
        2.0, PROTOCOL_DOSE_MG_PER_M2, crcl_ml_min=40.0, reduce_for_moderate_renal_impairment=False
    )
    assert dose.renal_factor == 1.0
    assert dose.target_mg == pytest.approx(1650.0)
    assert any("not reduced" in note for note in dose.notes)


@pytest.mark.parametrize("crcl_ml_min", [29.9, 0.0])
def test_severe_renal_impairment_is_contraindicated(crcl_ml_min: float) -> None:
    with pytest.raises(CapecitabineContraindicatedError) as error:
        capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2, crcl_ml_min=crcl_ml_min)
    assert isinstance(error.value, ValueError)
    assert "CrCl" in error.value.reason
    assert "< 30" in error.value.reason


def test_dose_level_after_toxicity() -> None:
    # target 2.0 * 825 * 0.75 (dose level) = 1237.5 -> 1150 / 1300 as at the renal dose
    dose = capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2, dose_level_percent=75)
    assert dose.renal_factor == 1.0
    assert dose.dose_level_percent == 75
    assert_dose(dose, 1150, 1300, {500: 2, 150: 1}, {500: 2, 150: 2})
    assert any("dose level 75 %" in note for note in dose.notes)


def test_renal_factor_and_dose_level_multiply() -> None:
    # target 2.0 * 825 * 0.75 * 0.50 = 618.75; 2 x target = 1237.5
    # makeable: 450 (3x150), 500, 650 (500+150), 800 (500+2x150)
    # equal: 650+650 = 1300 (62.5); 500+500 = 1000 (237.5)
    # +150: 500 -> 650 = 1150 (87.5); 650 -> 800 = 1450 (212.5)
    dose = capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2, crcl_ml_min=35.0, dose_level_percent=50)
    assert dose.target_mg == pytest.approx(618.75)
    assert_dose(dose, 650, 650, {500: 1, 150: 1}, {500: 1, 150: 1})


def test_missing_crcl_is_noted() -> None:
    dose = capecitabine_dose(2.0, PROTOCOL_DOSE_MG_PER_M2)
    assert any("CrCl not given" in note for note in dose.notes)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"bsa_m2": 0.3}, "bsa_m2"),
        ({"bsa_m2": 180.0}, "bsa_m2"),  # height entered as BSA
        ({"dose_mg_per_m2": 5000.0}, "dose_mg_per_m2"),
        ({"dose_mg_per_m2": -825.0}, "dose_mg_per_m2"),
        ({"crcl_ml_min": -1.0}, "crcl_ml_min"),
        ({"crcl_ml_min": math.nan}, "crcl_ml_min"),
        ({"dose_level_percent": 80}, "dose_level_percent"),
        ({"dose_level_percent": 75.0}, "dose_level_percent"),
        ({"reduce_for_moderate_renal_impairment": "yes"}, "reduce_for_moderate_renal_impairment"),
    ],
)
def test_capecitabine_dose_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"bsa_m2": 1.8, "dose_mg_per_m2": 825.0, **kwargs}
    with pytest.raises(InvalidInputError) as error:
        capecitabine_dose(**arguments)  # type: ignore[arg-type]
    assert error.value.field == field


# --- capecitabine_dose: properties ------------------------------------------------------------


@given(
    bsa_m2=st.floats(min_value=0.5, max_value=3.5),
    dose_level_percent=st.sampled_from([100, 75, 50]),
    crcl_ml_min=st.sampled_from([None, 40.0, 90.0]),
)
def test_split_properties(
    bsa_m2: float, dose_level_percent: int, crcl_ml_min: float | None
) -> None:
    dose = capecitabine_dose(
        bsa_m2,
        PROTOCOL_DOSE_MG_PER_M2,
        crcl_ml_min=crcl_ml_min,
        dose_level_percent=dose_level_percent,
    )
    renal_factor = 0.75 if crcl_ml_min == 40.0 else 1.0
    target_mg = bsa_m2 * PROTOCOL_DOSE_MG_PER_M2 * renal_factor * dose_level_percent / 100
    assert dose.target_mg == pytest.approx(target_mg)
    # both administrations are makeable and their tablets add up to the mg
    assert tablets_mg(dose.tablets_morning) == dose.morning_mg
    assert tablets_mg(dose.tablets_evening) == dose.evening_mg
    assert dose.morning_mg > 0
    # evening = morning, or one more 150 mg tablet: never 500 mg apart
    extra = {s: dose.tablets_evening[s] - dose.tablets_morning[s] for s in (500, 150)}
    assert extra in ({500: 0, 150: 0}, {500: 0, 150: 1})
    # daily total within 150 mg of 2 x target
    assert abs(dose.morning_mg + dose.evening_mg - 2 * target_mg) <= 150


@given(
    smaller=st.floats(min_value=0.5, max_value=3.5),
    larger=st.floats(min_value=0.5, max_value=3.5),
)
def test_daily_total_never_falls_as_bsa_rises(smaller: float, larger: float) -> None:
    smaller, larger = sorted((smaller, larger))
    low = capecitabine_dose(smaller, PROTOCOL_DOSE_MG_PER_M2)
    high = capecitabine_dose(larger, PROTOCOL_DOSE_MG_PER_M2)
    assert low.morning_mg + low.evening_mg <= high.morning_mg + high.evening_mg


# --- contraindications ------------------------------------------------------------------------


def test_no_contraindication_when_all_is_well_or_unknown() -> None:
    assert contraindications() == ()
    assert (
        contraindications(
            crcl_ml_min=30.0,  # exactly 30: not severe
            dpd_deficiency=False,
            neutrophils_10e9_l=1.5,  # exactly 1.5: may start
            platelets_10e9_l=100.0,  # exactly 100: may start
            severe_hepatic_impairment=False,
            pregnant_or_lactating=False,
            brivudine_within_4_weeks=False,
        )
        == ()
    )


@pytest.mark.parametrize(
    ("kwargs", "expected_word"),
    [
        ({"crcl_ml_min": 29.9}, "renal"),
        ({"dpd_deficiency": True}, "DPD"),
        ({"neutrophils_10e9_l": 1.49}, "neutrophils"),
        ({"platelets_10e9_l": 99.0}, "platelets"),
        ({"severe_hepatic_impairment": True}, "hepatic"),
        ({"pregnant_or_lactating": True}, "pregnancy"),
        ({"brivudine_within_4_weeks": True}, "brivudine"),
    ],
)
def test_each_contraindication_gives_one_reason(
    kwargs: dict[str, object], expected_word: str
) -> None:
    reasons = contraindications(**kwargs)  # type: ignore[arg-type]
    assert len(reasons) == 1
    assert expected_word in reasons[0]
    assert "SmPC" in reasons[0]


def test_all_contraindications_together() -> None:
    reasons = contraindications(
        crcl_ml_min=20.0,
        dpd_deficiency=True,
        neutrophils_10e9_l=1.0,
        platelets_10e9_l=50.0,
        severe_hepatic_impairment=True,
        pregnant_or_lactating=True,
        brivudine_within_4_weeks=True,
    )
    assert len(reasons) == 7


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"crcl_ml_min": -1.0}, "crcl_ml_min"),
        ({"dpd_deficiency": "yes"}, "dpd_deficiency"),
        ({"neutrophils_10e9_l": -0.1}, "neutrophils_10e9_l"),
        ({"neutrophils_10e9_l": 1500.0}, "neutrophils_10e9_l"),  # cells/uL entered as 10^9/L
        ({"platelets_10e9_l": math.inf}, "platelets_10e9_l"),
        ({"severe_hepatic_impairment": 1}, "severe_hepatic_impairment"),
        ({"pregnant_or_lactating": "no"}, "pregnant_or_lactating"),
        ({"brivudine_within_4_weeks": 0}, "brivudine_within_4_weeks"),
    ],
)
def test_contraindications_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        contraindications(**kwargs)  # type: ignore[arg-type]
    assert error.value.field == field


# --- dose_modification (SmPC 4.2 table) -------------------------------------------------------


@pytest.mark.parametrize(
    ("grade", "occurrence", "action", "resume_level_percent"),
    [
        (0, 1, "continue", 100),
        (1, 3, "continue", 100),
        (2, 1, "interrupt", 100),
        (2, 2, "interrupt", 75),
        (2, 3, "interrupt", 50),
        (2, 4, "discontinue", None),
        (2, 5, "discontinue", None),
        (3, 1, "interrupt", 75),
        (3, 2, "interrupt", 50),
        (3, 3, "discontinue", None),
        (4, 1, "discontinue", None),
        (4, 2, "discontinue", None),
    ],
)
def test_toxicity_table_from_full_dose(
    grade: int, occurrence: int, action: str, resume_level_percent: int | None
) -> None:
    result = dose_modification(grade, occurrence, 100)
    assert isinstance(result, DoseModification)
    assert (result.action, result.resume_level_percent) == (action, resume_level_percent)
    assert f"grade {grade}" in result.reason


def test_grade_4_first_in_patient_interest_resumes_at_50() -> None:
    result = dose_modification(4, 1, 100, continue_in_patient_interest=True)
    assert (result.action, result.resume_level_percent) == ("interrupt", 50)
    assert "patient's interest" in result.reason


def test_grade_4_second_occurrence_stops_even_in_patient_interest() -> None:
    result = dose_modification(4, 2, 50, continue_in_patient_interest=True)
    assert (result.action, result.resume_level_percent) == ("discontinue", None)


def test_patient_interest_does_not_change_lower_grades() -> None:
    result = dose_modification(3, 3, 50, continue_in_patient_interest=True)
    assert result.action == "discontinue"


@pytest.mark.parametrize(
    ("grade", "occurrence", "current", "expected"),
    [
        (2, 1, 75, 75),  # table 100 %, never raised above the current 75 %
        (2, 1, 50, 50),
        (2, 2, 50, 50),  # table 75 % > current 50 %
        (3, 1, 50, 50),  # table 75 % > current 50 %
        (3, 1, 75, 75),
        (2, 3, 75, 50),  # table 50 % < current 75 %
        (1, 1, 75, 75),  # grade 1: continue at the current level
    ],
)
def test_a_reduced_dose_is_never_raised(
    grade: int, occurrence: int, current: int, expected: int
) -> None:
    assert dose_modification(grade, occurrence, current).resume_level_percent == expected


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((5, 1, 100), {}, "grade"),
        ((-1, 1, 100), {}, "grade"),
        ((2.0, 1, 100), {}, "grade"),
        ((2, 0, 100), {}, "occurrence"),
        ((2, True, 100), {}, "occurrence"),
        ((2, 1, 60), {}, "current_level_percent"),
        ((2, 1, 100), {"continue_in_patient_interest": "yes"}, "continue_in_patient_interest"),
    ],
)
def test_dose_modification_bad_input_names_the_field(
    args: tuple[object, ...], kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        dose_modification(*args, **kwargs)  # type: ignore[arg-type]
    assert error.value.field == field
