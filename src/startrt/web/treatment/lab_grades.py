"""A lab panel as entered: PatientLabs fields plus the LLN/ULN each graded value needs, and the
CTCAE v5.0 grades of its values (library `grade_lab`), with the screening values as baseline;
the patient's sex and age on the draw date (for the eGFR) come from the patient, never the form."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from startrt.clinical.ctcae import LabTerm, grade_lab
from startrt.protocol.screening import PatientLabs, age_years_on
from startrt.validation import InvalidInputError, finite_number

# PatientLabs field -> (CTCAE term, the reference limit it is graded against)
GRADED_LABS: dict[str, tuple[LabTerm, str]] = {
    "hemoglobin_g_l": (LabTerm.ANEMIA, "lln"),
    "platelets_10e9_l": (LabTerm.PLATELETS, "lln"),
    "neutrophils_10e9_l": (LabTerm.NEUTROPHILS, "lln"),
    "leukocytes_10e9_l": (LabTerm.WBC, "lln"),
    "albumin_g_l": (LabTerm.ALBUMIN, "lln"),
    "creatinine_umol_l": (LabTerm.CREATININE, "uln"),
    "ast_u_l": (LabTerm.AST, "uln"),
    "alt_u_l": (LabTerm.ALT, "uln"),
    "bilirubin_umol_l": (LabTerm.BILIRUBIN, "uln"),
}
# the panel's fields besides the graded values and their limits: the GFR's other inputs
GFR_FIELDS = ("cystatin_c_mg_l", "measured_gfr_ml_min_173")
# what the lab form asks, in order: each graded value beside its limit, then GFR_FIELDS
PANEL_FIELDS: tuple[str, ...] = (
    *(name for field, (_, side) in GRADED_LABS.items() for name in (field, f"{field}_{side}")),
    *GFR_FIELDS,
)
# PatientLabs fields that are the patient's own, not the panel's
PATIENT_FIELDS = frozenset({"sex", "age_years"})
# the limits a panel carries besides PatientLabs' own (ast_u_l_uln, ...), with their term
LIMIT_FIELDS: dict[str, LabTerm] = {
    f"{field}_{side}": term
    for field, (term, side) in GRADED_LABS.items()
    if f"{field}_{side}" not in PatientLabs.model_fields
}


def split_lab_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]]:
    """PatientLabs fields (sex and age excluded: the patient's own) and the extra reference
    limits; any other name is refused."""
    labs: dict[str, Any] = {}
    limits: dict[str, float] = {}
    for name, value in values.items():
        if name in LIMIT_FIELDS:
            limits[name] = finite_number(name, value, LIMIT_FIELDS[name].unit)
        elif name in PatientLabs.model_fields and name not in PATIENT_FIELDS:
            labs[name] = value
        else:
            raise InvalidInputError(name, value, "is not a laboratory field of the panel")
    return labs, limits


def patient_values(sex: str, screening: dict[str, Any], drawn_on: date) -> dict[str, Any]:
    """The patient's sex and age on the draw date (from the screening record's age and date:
    no date of birth is kept), as the eGFR equations read them; age None before screening."""
    age = screening.get("age_years")
    if age is not None:
        age = age_years_on(age, date.fromisoformat(screening["screening_date"]), drawn_on)
    return {"sex": sex, "age_years": age}


def grade_labs(
    labs: PatientLabs, limits: dict[str, float], baseline: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """CTCAE v5.0 grade of every graded value present, by field; errors name the field."""
    grades: dict[str, dict[str, Any]] = {}
    for field, (term, side) in GRADED_LABS.items():
        value = getattr(labs, field)
        if value is None:
            continue
        limit_field = f"{field}_{side}"
        limit = limits.get(limit_field, getattr(labs, limit_field, None))
        try:
            graded = grade_lab(term, value, baseline=baseline.get(field), **{side: limit})
        except InvalidInputError as error:
            named = {"value": field, side: limit_field, "baseline": f"screening.{field}"}
            raise InvalidInputError(
                named.get(error.field, error.field), error.value, error.rule
            ) from None
        grades[field] = {
            **dataclasses.asdict(graded),
            "term": term.value,
            "ctcae_term": term.ctcae_term,
        }
    return grades
