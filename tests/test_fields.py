"""Labels, units and rounding for people (startrt.fields), against values written by hand."""

from __future__ import annotations

from datetime import date

import pytest

from startrt import fields
from startrt.clinical.recist import NonTargetStatus
from startrt.protocol.vocabulary import EndOfTreatmentReason


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("ast_u_l_uln", "AST ULN (U/L)"),
        ("measured_gfr_ml_min_173", "Measured GFR (mL/min/1.73 m²)"),
        ("platelets_10e9_l", "Platelets (10⁹/L)"),
        ("cystatin_c_mg_l", "Cystatin C (mg/L)"),
        ("consent_signed", "Consent signed"),
        ("left_kidney_dose_gy", "Left kidney dose (Gy)"),
        ("kidney_dose_gy_per_gbq", "Kidney dose (Gy/GBq)"),
        ("activity_gbq", "Activity (GBq)"),
        ("neutrophils_10e9_l_lln", "Neutrophils LLN (10⁹/L)"),
        ("change_from_baseline_pct", "Change from baseline (%)"),
        ("ctcae_grade", "CTCAE grade"),
        # registered: the derived label would read wrong
        ("left_kidney_dose_sd_gy", "Left kidney dose SD (Gy)"),
        ("kidney_effective_half_life_h", "Kidney effective half-life (h)"),
        ("tablets_500", "Tablets of 500 mg"),
        ("attribution_prrt", "Attribution to PRRT"),
        ("fdg_pet_positive", "FDG-PET positive"),
        ("prior_non_ssa_therapy_end_date", "End of prior non-SSA therapy"),
    ],
)
def test_labels_carry_the_unit(name: str, label: str) -> None:
    assert fields.label(name) == label


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("left_kidney_dose_gy", 3.861330716659756, "3.86"),
        ("left_kidney_dose_gy", 30.0, "30.00"),
        ("left_kidney_dose_gy", 2.125, "2.13"),  # half up, as people round
        ("activity_gbq", 7.45, "7.5"),  # the float is 7.4499..., its shortest repr 7.45
        ("activity_gbq", 7.4, "7.4"),
        ("effective_half_life_h", 46.82206416588309, "46.8"),
        ("creatinine_umol_l", 88.0, "88"),
        ("creatinine_umol_l", 88.4, "88.4"),
        ("hemoglobin_g_l", 0.1 + 0.2, "0.3"),
        ("platelets_10e9_l", 1234567.0, "1234570"),
        ("creatinine_umol_l", 91, "91"),
        ("left_kidney_dose_gy", None, "—"),
        ("consent_signed", True, "Yes"),
        ("screening_date", date(2026, 3, 1), "2026-03-01"),
        ("reason", EndOfTreatmentReason.RENAL_LIMIT, "Cumulative kidney dose limit reached"),
        ("status", NonTargetStatus.UNEQUIVOCAL_PROGRESSION, "Unequivocal progression"),
        ("predicted_cumulative_kidney_gy_interval", [19.20851, 21.0049], "19.21, 21.00"),
        ("probability_over_limit", 0.00671, "0.007"),
        ("kidney_effective_half_life_h", 46.82206416588309, "46.8"),
        ("target_mm", [], "—"),
    ],
)
def test_values_are_rounded_per_quantity(name: str, value: object, text: str) -> None:
    assert fields.format_value(name, value) == text


def test_the_unit_follows_the_value_when_asked() -> None:
    assert fields.format_value("right_kidney_dose_gy", 4.005, with_unit=True) == "4.01 Gy"
    assert fields.format_value("right_kidney_dose_gy", None, with_unit=True) == "—"


def test_a_registered_field_overrides_its_derived_label() -> None:
    fields.register("test_only_tia_h", "Time-integrated activity coefficient", "h", 2)
    assert fields.label("test_only_tia_h") == "Time-integrated activity coefficient (h)"
    assert fields.format_value("test_only_tia_h", 12.345678) == "12.35"
    with pytest.raises(ValueError, match="registered twice"):
        fields.register("test_only_tia_h", "again")


def test_a_stored_choice_reads_as_words() -> None:
    assert fields.choice_label("lymph_node") == "Lymph node"
    assert fields.choice_label("not_applicable") == "Not applicable"
    assert fields.choice_label("ctcae_term") == "CTCAE term"


def test_a_mapping_reads_as_labelled_values() -> None:
    value = {"left_kidney_dose_gy": 3.861330716659756, "ecog": 1, "consent_signed": False}
    assert fields.display(value) == "Left kidney dose: 3.86; ECOG: 1; Consent signed: No"
