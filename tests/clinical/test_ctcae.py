"""CTCAE v5.0 laboratory grading: every band edge, hand-computed from the NCI v5.0 table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from startrt.clinical.ctcae import CtcaeGrade, LabTerm, grade_lab
from startrt.validation import InvalidInputError

# Decreases: (term, lln, value, expected grade). Bands per v5.0: G1 cutoff1 <= v < LLN,
# then absolute cut-offs regardless of LLN, each cut-off belonging to the milder grade.
DECREASE_CASES = [
    # Anemia, Hb g/L, LLN 120: G1 100 <= v < 120; G2 80 <= v < 100; G3 v < 80; no lab G4.
    (LabTerm.ANEMIA, 120.0, 120.1, 0),
    (LabTerm.ANEMIA, 120.0, 120.0, 0),  # = LLN is normal
    (LabTerm.ANEMIA, 120.0, 119.9, 1),
    (LabTerm.ANEMIA, 120.0, 100.0, 1),
    (LabTerm.ANEMIA, 120.0, 99.9, 2),
    (LabTerm.ANEMIA, 120.0, 80.0, 2),
    (LabTerm.ANEMIA, 120.0, 79.9, 3),
    (LabTerm.ANEMIA, 120.0, 20.0, 3),  # lowest accepted Hb: still 3, grade 4 is clinical
    # Platelets 10^9/L, LLN 150: G1 75-<150; G2 50-<75; G3 25-<50; G4 < 25.
    (LabTerm.PLATELETS, 150.0, 150.0, 0),
    (LabTerm.PLATELETS, 150.0, 149.9, 1),
    (LabTerm.PLATELETS, 150.0, 75.0, 1),
    (LabTerm.PLATELETS, 150.0, 74.9, 2),
    (LabTerm.PLATELETS, 150.0, 50.0, 2),
    (LabTerm.PLATELETS, 150.0, 49.9, 3),
    (LabTerm.PLATELETS, 150.0, 25.0, 3),
    (LabTerm.PLATELETS, 150.0, 24.9, 4),
    (LabTerm.PLATELETS, 150.0, 0.0, 4),
    # Neutrophils 10^9/L, LLN 2.0: G1 1.5-<2.0; G2 1.0-<1.5; G3 0.5-<1.0; G4 < 0.5.
    (LabTerm.NEUTROPHILS, 2.0, 2.0, 0),
    (LabTerm.NEUTROPHILS, 2.0, 1.99, 1),
    (LabTerm.NEUTROPHILS, 2.0, 1.5, 1),
    (LabTerm.NEUTROPHILS, 2.0, 1.49, 2),
    (LabTerm.NEUTROPHILS, 2.0, 1.0, 2),
    (LabTerm.NEUTROPHILS, 2.0, 0.99, 3),
    (LabTerm.NEUTROPHILS, 2.0, 0.5, 3),
    (LabTerm.NEUTROPHILS, 2.0, 0.49, 4),
    # WBC 10^9/L, LLN 3.5: G1 3.0-<3.5; G2 2.0-<3.0; G3 1.0-<2.0; G4 < 1.0.
    (LabTerm.WBC, 3.5, 3.5, 0),
    (LabTerm.WBC, 3.5, 3.49, 1),
    (LabTerm.WBC, 3.5, 3.0, 1),
    (LabTerm.WBC, 3.5, 2.99, 2),
    (LabTerm.WBC, 3.5, 2.0, 2),
    (LabTerm.WBC, 3.5, 1.99, 3),
    (LabTerm.WBC, 3.5, 1.0, 3),
    (LabTerm.WBC, 3.5, 0.99, 4),
    # Lymphocytes 10^9/L, LLN 1.1: G1 0.8-<1.1; G2 0.5-<0.8; G3 0.2-<0.5; G4 < 0.2.
    (LabTerm.LYMPHOCYTES, 1.1, 1.1, 0),
    (LabTerm.LYMPHOCYTES, 1.1, 1.09, 1),
    (LabTerm.LYMPHOCYTES, 1.1, 0.8, 1),
    (LabTerm.LYMPHOCYTES, 1.1, 0.79, 2),
    (LabTerm.LYMPHOCYTES, 1.1, 0.5, 2),
    (LabTerm.LYMPHOCYTES, 1.1, 0.49, 3),
    (LabTerm.LYMPHOCYTES, 1.1, 0.2, 3),
    (LabTerm.LYMPHOCYTES, 1.1, 0.19, 4),
    # Albumin g/L, LLN 36: G1 30-<36; G2 20-<30; G3 < 20; no lab G4.
    (LabTerm.ALBUMIN, 36.0, 36.0, 0),
    (LabTerm.ALBUMIN, 36.0, 35.9, 1),
    (LabTerm.ALBUMIN, 36.0, 30.0, 1),
    (LabTerm.ALBUMIN, 36.0, 29.9, 2),
    (LabTerm.ALBUMIN, 36.0, 20.0, 2),
    (LabTerm.ALBUMIN, 36.0, 19.9, 3),
    (LabTerm.ALBUMIN, 36.0, 5.0, 3),
    # eGFR ml/min/1.73 m2, LLN 90: G1 60-<90; G2 30-<60; G3 15-<30; G4 < 15.
    (LabTerm.EGFR, 90.0, 90.0, 0),
    (LabTerm.EGFR, 90.0, 89.9, 1),
    (LabTerm.EGFR, 90.0, 60.0, 1),
    (LabTerm.EGFR, 90.0, 59.9, 2),
    (LabTerm.EGFR, 90.0, 30.0, 2),
    (LabTerm.EGFR, 90.0, 29.9, 3),
    (LabTerm.EGFR, 90.0, 15.0, 3),
    (LabTerm.EGFR, 90.0, 14.9, 4),
    (LabTerm.EGFR, 90.0, 0.0, 4),
]


@pytest.mark.parametrize(("term", "lln", "value", "expected"), DECREASE_CASES)
def test_decrease_bands(term: LabTerm, lln: float, value: float, expected: int) -> None:
    assert grade_lab(term, value, lln=lln).grade == expected


# Increases with normal baseline: (term, uln, value, expected). Each multiple belongs to the
# milder grade: G1 ULN < v <= m1 x ULN, ...
INCREASE_NORMAL_BASELINE_CASES = [
    # AST, ULN 40 U/L: 3x = 120, 5x = 200, 20x = 800.
    (LabTerm.AST, 40.0, 40.0, 0),
    (LabTerm.AST, 40.0, 40.1, 1),
    (LabTerm.AST, 40.0, 120.0, 1),
    (LabTerm.AST, 40.0, 120.1, 2),
    (LabTerm.AST, 40.0, 200.0, 2),
    (LabTerm.AST, 40.0, 200.1, 3),
    (LabTerm.AST, 40.0, 800.0, 3),
    (LabTerm.AST, 40.0, 800.1, 4),
    # ALT, ULN 45 U/L: 3x = 135, 5x = 225, 20x = 900.
    (LabTerm.ALT, 45.0, 45.0, 0),
    (LabTerm.ALT, 45.0, 45.1, 1),
    (LabTerm.ALT, 45.0, 135.0, 1),
    (LabTerm.ALT, 45.0, 135.1, 2),
    (LabTerm.ALT, 45.0, 225.0, 2),
    (LabTerm.ALT, 45.0, 225.1, 3),
    (LabTerm.ALT, 45.0, 900.0, 3),
    (LabTerm.ALT, 45.0, 900.1, 4),
    # Bilirubin, ULN 20 umol/L: 1.5x = 30, 3x = 60, 10x = 200.
    (LabTerm.BILIRUBIN, 20.0, 20.0, 0),
    (LabTerm.BILIRUBIN, 20.0, 20.1, 1),
    (LabTerm.BILIRUBIN, 20.0, 30.0, 1),
    (LabTerm.BILIRUBIN, 20.0, 30.1, 2),
    (LabTerm.BILIRUBIN, 20.0, 60.0, 2),
    (LabTerm.BILIRUBIN, 20.0, 60.1, 3),
    (LabTerm.BILIRUBIN, 20.0, 200.0, 3),
    (LabTerm.BILIRUBIN, 20.0, 200.1, 4),
    # Creatinine without baseline, ULN 100 umol/L: 1.5x = 150, 3x = 300, 6x = 600.
    (LabTerm.CREATININE, 100.0, 100.0, 0),
    (LabTerm.CREATININE, 100.0, 100.1, 1),
    (LabTerm.CREATININE, 100.0, 150.0, 1),
    (LabTerm.CREATININE, 100.0, 150.1, 2),
    (LabTerm.CREATININE, 100.0, 300.0, 2),
    (LabTerm.CREATININE, 100.0, 300.1, 3),
    (LabTerm.CREATININE, 100.0, 600.0, 3),
    (LabTerm.CREATININE, 100.0, 600.1, 4),
]


@pytest.mark.parametrize(("term", "uln", "value", "expected"), INCREASE_NORMAL_BASELINE_CASES)
def test_increase_bands_normal_baseline(
    term: LabTerm, uln: float, value: float, expected: int
) -> None:
    assert grade_lab(term, value, uln=uln).grade == expected


@pytest.mark.parametrize(("term", "uln", "value", "expected"), INCREASE_NORMAL_BASELINE_CASES[:24])
def test_baseline_at_uln_counts_as_normal(
    term: LabTerm, uln: float, value: float, expected: int
) -> None:
    # baseline == ULN is not "abnormal" (abnormal means > ULN): ULN bands still apply.
    assert grade_lab(term, value, uln=uln, baseline=uln).grade == expected


# Abnormal baseline (baseline > ULN): (term, uln, baseline, value, expected).
ABNORMAL_BASELINE_CASES = [
    # AST, ULN 40, baseline 60: 1.5x = 90 (inclusive for G1), 3x = 180, 5x = 300, 20x = 1200.
    (LabTerm.AST, 40.0, 60.0, 50.0, 0),  # above ULN but below 1.5 x baseline
    (LabTerm.AST, 40.0, 60.0, 89.9, 0),
    (LabTerm.AST, 40.0, 60.0, 90.0, 1),
    (LabTerm.AST, 40.0, 60.0, 180.0, 1),
    (LabTerm.AST, 40.0, 60.0, 180.1, 2),
    (LabTerm.AST, 40.0, 60.0, 300.0, 2),
    (LabTerm.AST, 40.0, 60.0, 300.1, 3),
    (LabTerm.AST, 40.0, 60.0, 1200.0, 3),
    (LabTerm.AST, 40.0, 60.0, 1200.1, 4),
    # ALT, ULN 45, baseline 50: 1.5x = 75, 3x = 150, 5x = 250, 20x = 1000.
    (LabTerm.ALT, 45.0, 50.0, 74.9, 0),
    (LabTerm.ALT, 45.0, 50.0, 75.0, 1),
    (LabTerm.ALT, 45.0, 50.0, 150.0, 1),
    (LabTerm.ALT, 45.0, 50.0, 150.1, 2),
    (LabTerm.ALT, 45.0, 50.0, 250.0, 2),
    (LabTerm.ALT, 45.0, 50.0, 250.1, 3),
    (LabTerm.ALT, 45.0, 50.0, 1000.0, 3),
    (LabTerm.ALT, 45.0, 50.0, 1000.1, 4),
    # Bilirubin, ULN 20, baseline 30: G1 > 1.0x = 30, 1.5x = 45, 3x = 90, 10x = 300.
    (LabTerm.BILIRUBIN, 20.0, 30.0, 30.0, 0),
    (LabTerm.BILIRUBIN, 20.0, 30.0, 30.1, 1),
    (LabTerm.BILIRUBIN, 20.0, 30.0, 45.0, 1),
    (LabTerm.BILIRUBIN, 20.0, 30.0, 45.1, 2),
    (LabTerm.BILIRUBIN, 20.0, 30.0, 90.0, 2),
    (LabTerm.BILIRUBIN, 20.0, 30.0, 90.1, 3),
    (LabTerm.BILIRUBIN, 20.0, 30.0, 300.0, 3),
    (LabTerm.BILIRUBIN, 20.0, 30.0, 300.1, 4),
]


@pytest.mark.parametrize(("term", "uln", "baseline", "value", "expected"), ABNORMAL_BASELINE_CASES)
def test_increase_bands_abnormal_baseline(
    term: LabTerm, uln: float, baseline: float, value: float, expected: int
) -> None:
    assert grade_lab(term, value, uln=uln, baseline=baseline).grade == expected


# Creatinine with baseline: grade = higher of ULN bands and baseline bands
# (G2 > 1.5-3.0 x baseline, G3 > 3.0 x baseline). ULN 100, baseline 80: 1.5x = 120, 3x = 240.
CREATININE_BASELINE_CASES = [
    (80.0, 120.0, 1, "ULN < value <= 1.5 x ULN"),  # baseline G0, ULN G1
    (80.0, 120.1, 2, "1.5 x baseline < value <= 3.0 x baseline"),  # baseline G2 beats ULN G1
    (80.0, 240.0, 2, "1.5 x ULN < value <= 3.0 x ULN"),  # both G2: ULN rule reported
    (80.0, 240.1, 3, "value > 3.0 x baseline"),  # baseline G3 beats ULN G2
    (80.0, 600.1, 4, "value > 6.0 x ULN"),  # only ULN bands reach G4
    # Baseline 40: 1.5x = 60. v5.0 grades by baseline even inside the normal range.
    (40.0, 60.0, 0, "value <= ULN"),
    (40.0, 60.1, 2, "1.5 x baseline < value <= 3.0 x baseline"),
]


@pytest.mark.parametrize(("baseline", "value", "expected", "rule"), CREATININE_BASELINE_CASES)
def test_creatinine_takes_higher_of_uln_and_baseline_bands(
    baseline: float, value: float, expected: int, rule: str
) -> None:
    result = grade_lab(LabTerm.CREATININE, value, uln=100.0, baseline=baseline)
    assert (result.grade, result.rule) == (expected, rule)


def test_cut_offs_compare_numbers_as_written_not_binary_floats() -> None:
    # ULN 18.9: 3.0 x 18.9 = 56.7 and 1.5 x 18.9 = 28.35 exactly; in binary floating point
    # both products round below (56.699999..., 28.349999...), which would upgrade the value.
    assert grade_lab(LabTerm.BILIRUBIN, 56.7, uln=18.9).grade == 2
    assert grade_lab(LabTerm.BILIRUBIN, 56.71, uln=18.9).grade == 3
    assert grade_lab(LabTerm.BILIRUBIN, 28.35, uln=18.9).grade == 1
    assert grade_lab(LabTerm.BILIRUBIN, 28.36, uln=18.9).grade == 2


def test_egfr_needs_lln_only_to_tell_grade_0_from_1() -> None:
    assert grade_lab(LabTerm.EGFR, 59.9).grade == 2
    assert grade_lab(LabTerm.EGFR, 14.9).grade == 4
    with pytest.raises(InvalidInputError) as error:
        grade_lab(LabTerm.EGFR, 60.0)
    assert error.value.field == "lln"


def test_absolute_cut_offs_apply_even_when_lln_is_below_them() -> None:
    # Lab LLN 95 g/L < 100: 97 is not < LLN, but < 100 g/L, so grade 2 (not 0).
    assert grade_lab(LabTerm.ANEMIA, 97.0, lln=95.0).grade == 2


def test_result_records_inputs_and_band() -> None:
    result = grade_lab(LabTerm.AST, 200.0, uln=40.0, lln=10.0)
    assert result == CtcaeGrade(
        term=LabTerm.AST,
        grade=2,
        value=200.0,
        lln=10.0,
        uln=40.0,
        baseline=None,
        rule="3.0 x ULN < value <= 5.0 x ULN",
    )


@pytest.mark.parametrize(
    ("term", "value", "limits", "rule"),
    [
        (LabTerm.PLATELETS, 150.0, {"lln": 150.0}, "value >= LLN"),
        (LabTerm.PLATELETS, 100.0, {"lln": 150.0}, "75 10^9/L <= value < LLN"),
        (LabTerm.PLATELETS, 60.0, {"lln": 150.0}, "50 10^9/L <= value < 75 10^9/L"),
        (LabTerm.PLATELETS, 10.0, {"lln": 150.0}, "value < 25 10^9/L"),
        (LabTerm.AST, 40.0, {"uln": 40.0}, "value <= ULN"),
        (LabTerm.AST, 801.0, {"uln": 40.0}, "value > 20.0 x ULN"),
        (
            LabTerm.AST,
            90.0,
            {"uln": 40.0, "baseline": 60.0},
            "1.5 x baseline <= value <= 3.0 x baseline (baseline > ULN)",
        ),
        (
            LabTerm.AST,
            89.0,
            {"uln": 40.0, "baseline": 60.0},
            "value < 1.5 x baseline (baseline > ULN)",
        ),
    ],
)
def test_rule_names_the_band(
    term: LabTerm, value: float, limits: dict[str, float], rule: str
) -> None:
    assert grade_lab(term, value, **limits).rule == rule


def test_terms_carry_ctcae_name_and_si_unit() -> None:
    assert [member.value for member in LabTerm] == [
        "anemia",
        "platelets",
        "neutrophils",
        "wbc",
        "lymphocytes",
        "ast",
        "alt",
        "bilirubin",
        "creatinine",
        "egfr",
        "albumin",
    ]
    assert {member: (member.ctcae_term, member.unit) for member in LabTerm} == {
        LabTerm.ANEMIA: ("Anemia", "g/L"),
        LabTerm.PLATELETS: ("Platelet count decreased", "10^9/L"),
        LabTerm.NEUTROPHILS: ("Neutrophil count decreased", "10^9/L"),
        LabTerm.WBC: ("White blood cell decreased", "10^9/L"),
        LabTerm.LYMPHOCYTES: ("Lymphocyte count decreased", "10^9/L"),
        LabTerm.AST: ("Aspartate aminotransferase increased", "U/L"),
        LabTerm.ALT: ("Alanine aminotransferase increased", "U/L"),
        LabTerm.BILIRUBIN: ("Blood bilirubin increased", "umol/L"),
        LabTerm.CREATININE: ("Creatinine increased", "umol/L"),
        LabTerm.EGFR: ("Chronic kidney disease", "ml/min/1.73 m2"),
        LabTerm.ALBUMIN: ("Hypoalbuminemia", "g/L"),
    }


def test_term_given_as_its_string_value_is_accepted() -> None:
    assert grade_lab("platelets", 60.0, lln=150.0).term is LabTerm.PLATELETS  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("term", "value"),
    [
        # Values deep in grade 3-4: LLN is required even where it would not change the grade.
        (LabTerm.ANEMIA, 70.0),
        (LabTerm.PLATELETS, 10.0),
        (LabTerm.NEUTROPHILS, 0.1),
        (LabTerm.WBC, 0.5),
        (LabTerm.LYMPHOCYTES, 0.1),
        (LabTerm.ALBUMIN, 15.0),
    ],
)
def test_decrease_without_lln_is_refused(term: LabTerm, value: float) -> None:
    with pytest.raises(InvalidInputError) as error:
        grade_lab(term, value)
    assert error.value.field == "lln"


@pytest.mark.parametrize("term", [LabTerm.AST, LabTerm.ALT, LabTerm.BILIRUBIN, LabTerm.CREATININE])
def test_increase_without_uln_is_refused(term: LabTerm) -> None:
    with pytest.raises(InvalidInputError) as error:
        grade_lab(term, 50.0, baseline=40.0)
    assert error.value.field == "uln"


@pytest.mark.parametrize(
    ("term", "value", "limits", "field"),
    [
        (LabTerm.ANEMIA, 900.0, {"lln": 120.0}, "value"),  # implausible Hb
        (LabTerm.ANEMIA, 9.5, {"lln": 120.0}, "value"),  # Hb in g/dL
        (LabTerm.ANEMIA, 95.0, {"lln": 12.0}, "lln"),  # LLN in g/dL
        (LabTerm.PLATELETS, 150000.0, {"lln": 150.0}, "value"),  # per mm3, not 10^9/L
        (LabTerm.NEUTROPHILS, 1500.0, {"lln": 2.0}, "value"),
        (LabTerm.PLATELETS, -1.0, {"lln": 150.0}, "value"),
        (LabTerm.PLATELETS, math.nan, {"lln": 150.0}, "value"),
        (LabTerm.PLATELETS, math.inf, {"lln": 150.0}, "value"),
        (LabTerm.PLATELETS, True, {"lln": 150.0}, "value"),
        (LabTerm.PLATELETS, "60", {"lln": 150.0}, "value"),
        (LabTerm.ALBUMIN, 3.2, {"lln": 36.0}, "value"),  # albumin in g/dL
        (LabTerm.BILIRUBIN, 2.0, {"uln": 1.2}, "uln"),  # mg/dL
        (LabTerm.CREATININE, 1.1, {"uln": 100.0}, "value"),  # mg/dL
        (LabTerm.AST, 50.0, {"uln": 40.0, "baseline": -5.0}, "baseline"),
        (LabTerm.AST, 50.0, {"uln": 40.0, "lln": 40.0}, "lln"),  # lln must be < uln
        (LabTerm.PLATELETS, 60.0, {"lln": 150.0, "uln": 140.0}, "lln"),
        (LabTerm.AST, 50.0, {"uln": math.nan}, "uln"),
    ],
)
def test_implausible_input_is_refused_naming_the_field(
    term: LabTerm, value: float, limits: dict[str, float], field: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        grade_lab(term, value, **limits)
    assert error.value.field == field


@pytest.mark.parametrize(
    ("term", "value", "uln", "expected"),
    [
        # Reference ranges printed as "0-ULN"; the grade depends on ULN only (CTCAE v5.0):
        (LabTerm.ALT, 100.0, 35.0, 1),  # 35 < 100 <= 3 x 35 = 105
        (LabTerm.AST, 120.0, 35.0, 2),  # 105 < 120 <= 5 x 35 = 175
        (LabTerm.BILIRUBIN, 40.0, 21.0, 2),  # 1.5 x 21 = 31.5 < 40 <= 3 x 21 = 63
        (LabTerm.CREATININE, 200.0, 100.0, 2),  # 150 < 200 <= 300
        (LabTerm.ALT, 30.0, 35.0, 0),  # within 0-35
    ],
)
def test_increase_terms_accept_a_reference_range_starting_at_zero(
    term: LabTerm, value: float, uln: float, expected: int
) -> None:
    result = grade_lab(term, value, lln=0.0, uln=uln)
    assert (result.grade, result.lln) == (expected, 0.0)


@pytest.mark.parametrize(
    ("term", "limits"),
    [
        (LabTerm.ALT, {"lln": -1.0, "uln": 35.0}),  # an increase term's LLN must be >= 0
        (LabTerm.PLATELETS, {"lln": 0.0}),  # a decrease term grades against LLN: > 0
        (LabTerm.NEUTROPHILS, {"lln": 0.0}),
        (LabTerm.ANEMIA, {"lln": 0.0}),
        (LabTerm.EGFR, {"lln": 0.0}),
    ],
)
def test_lln_below_its_rule_is_refused(term: LabTerm, limits: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError) as error:
        grade_lab(term, 50.0, **limits)
    assert (error.value.field, error.value.value) == ("lln", limits["lln"])


def test_unknown_term_is_refused() -> None:
    with pytest.raises(InvalidInputError) as error:
        grade_lab("hemoglobin", 100.0, lln=120.0)  # type: ignore[arg-type]
    assert error.value.field == "term"


@given(
    low=st.floats(min_value=0.0, max_value=2000.0),
    high=st.floats(min_value=0.0, max_value=2000.0),
)
def test_platelet_grade_never_rises_with_the_count(low: float, high: float) -> None:
    low, high = sorted((low, high))
    grade_low = grade_lab(LabTerm.PLATELETS, low, lln=150.0).grade
    assert grade_low >= grade_lab(LabTerm.PLATELETS, high, lln=150.0).grade


@given(
    low=st.floats(min_value=0.0, max_value=30000.0),
    high=st.floats(min_value=0.0, max_value=30000.0),
    baseline=st.none() | st.floats(min_value=0.0, max_value=2000.0),
)
def test_alt_grade_never_falls_as_the_value_rises(
    low: float, high: float, baseline: float | None
) -> None:
    low, high = sorted((low, high))
    grade_low = grade_lab(LabTerm.ALT, low, uln=45.0, baseline=baseline).grade
    assert grade_low <= grade_lab(LabTerm.ALT, high, uln=45.0, baseline=baseline).grade
