"""Test data shared by several test modules (tests/ is on the path: `from support import ...`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

SCREENING = date(2025, 3, 3)


def eligible_screening(**changes: Any) -> dict[str, Any]:
    """A START-01 screening record meeting every criterion (male, 64 y), with `changes`."""
    record: dict[str, Any] = {
        "screening_date": SCREENING.isoformat(),
        "age_years": 64,
        "weight_kg": 78,
        "height_cm": 178,
        "consent_signed": True,
        "ecog": 1,
        "histology_confirmed_well_differentiated_inoperable_net": True,
        "pheochromocytoma_or_paraganglioma": False,
        "krenning_score": 3,
        "fdg_pet_positive": False,
        "progression_imaging_date": (SCREENING - timedelta(days=120)).isoformat(),
        "progression_confirmed_by_mdc": True,
        "prior_non_ssa_therapy": False,
        "measurable_disease_recist": True,
        "prrt_treatment_of_choice": True,
        "measured_gfr_ml_min_173": 72,
        "creatinine_umol_l": 85,
        "hemoglobin_g_l": 128,
        "platelets_10e9_l": 210,
        "leukocytes_10e9_l": 5.9,
        "neutrophils_10e9_l": 3.4,
        "ast_u_l": 30,
        "ast_u_l_uln": 45,
        "alt_u_l": 28,
        "alt_u_l_uln": 50,
        "bilirubin_umol_l": 9,
        "bilirubin_umol_l_uln": 26,
        "albumin_g_l": 39,
        "childbearing_potential": False,
        "pregnant_or_lactating": False,
        "prior_prrt": False,
        "concomitant_non_ssa_systemic_therapy": False,
        "dpd_deficiency": False,
        "capecitabine_other_contraindication": False,
        "sstr_negative_lesions": False,
        "serious_uncontrolled_condition": False,
        "unable_to_comply": False,
    }
    record.update(changes)
    return record
