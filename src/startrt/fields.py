"""Labels, units and rounding of the quantities people read: one source for the pages' forms and
tables, the audit trail, the exports' headers and the report.

A field is looked up by its name (`left_kidney_dose_gy`). A name registered with `register` has
its own label, unit and decimals; any other name is read from its unit suffix
(`creatinine_umol_l` -> "Creatinine (µmol/L)"), so a new field needs an entry only when the
derived label would be wrong. Rounding follows the quantity: doses to 0.01 Gy, activities to
0.1 GBq, half-lives to 0.1 h; laboratory values (decimals None) are shown as the lab reports them,
without trailing float noise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeGuard

EMPTY = "—"
SIGNIFICANT_DIGITS_AS_ENTERED = 6
"""A value shown "as entered" keeps at most this many significant digits: what a lab reports,
never the binary tail of a float (3.861330716659756)."""


@dataclass(frozen=True)
class FieldMeta:
    """How people see one field: its label, its unit and the decimals its values are shown with
    (None: as entered)."""

    label: str
    unit: str = ""
    decimals: int | None = None

    @property
    def heading(self) -> str:
        """The label with its unit, as a form label or column header: "Left kidney (Gy)"."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def text(self, value: object, *, with_unit: bool = False) -> str:
        """`value` for people: rounded to the field's decimals (half up, on the shortest decimal
        that reads back as the float: 7.45 -> 7.5), yes/no for booleans, an enumeration's
        label, ISO dates, a list item by item; None as a dash."""
        if isinstance(value, list | tuple):
            shown = ", ".join(self.text(item) for item in value) if value else EMPTY
        else:
            shown = self._number(value) if _is_number(value) else display(value)
        return f"{shown} {self.unit}" if with_unit and self.unit and value is not None else shown

    def _number(self, value: float | int) -> str:
        if self.decimals is None:
            return _as_entered(value)
        quantum = Decimal(1).scaleb(-self.decimals)
        return str(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))


# (suffix, unit, decimals) tried in order: the longer suffix first where one ends another.
_SUFFIXES: tuple[tuple[str, str, int | None], ...] = (
    ("_gy_per_gbq", "Gy/GBq", 2),
    ("_ml_min_173", "mL/min/1.73 m²", None),
    ("_umol_l", "µmol/L", None),
    ("_10e9_l", "10⁹/L", None),
    ("_mg_l", "mg/L", None),
    ("_g_l", "g/L", None),
    ("_u_l", "U/L", None),
    ("_gy", "Gy", 2),
    ("_gbq", "GBq", 1),
    ("_mbq", "MBq", 0),
    ("_hours", "h", 1),
    ("_h", "h", 1),
    ("_kg", "kg", None),
    ("_cm", "cm", None),
    ("_mm", "mm", None),
    ("_ml", "mL", None),
    ("_mg", "mg", None),
    ("_m2", "m²", 2),
    ("_years", "years", None),
    ("_months", "months", 1),
    ("_days", "days", None),
    ("_percent", "%", None),
    ("_pct", "%", None),
)
UNITS_FOR_PEOPLE = {
    "10^9/L": "10⁹/L",
    "umol/L": "µmol/L",
    "ml/min": "mL/min",
    "ml/min/1.73 m2": "mL/min/1.73 m²",
    "m2": "m²",
}
"""Units as data write them (SI in ASCII: the labs' `unit` column) as people read them."""
_ACRONYMS = frozenset(
    [
        "alt",
        "ast",
        "bsa",
        "c",
        "ct",
        "ctcae",
        "dpd",
        "ecog",
        "egfr",
        "fdg",
        "gfr",
        "id",
        "mdc",
        "net",
        "pet",
        "prrt",
        "recist",
        "spect",
        "ssa",
        "sstr",
        "suv",
        "tia",
        "uln",
        "voi",
    ]
)

_REGISTRY: dict[str, FieldMeta] = {}


def register(name: str, label: str, unit: str = "", decimals: int | None = None) -> None:
    """Give `name` its own label, unit and decimals (a second registration is refused)."""
    if name in _REGISTRY:
        raise ValueError(f"field {name!r} is registered twice")
    _REGISTRY[name] = FieldMeta(label, unit, decimals)


def meta(name: str) -> FieldMeta:
    """The field's metadata: registered, or derived from its name's unit suffix."""
    return _REGISTRY.get(name) or _derived(name)


def is_registered(name: str) -> bool:
    """Whether `name` has its own entry (its label is not derived from the name)."""
    return name in _REGISTRY


def label(name: str) -> str:
    """The field's label with its unit: "ast_u_l_uln" -> "AST ULN (U/L)", "hemoglobin_g_l_lln"
    -> "Hemoglobin LLN (g/L)"."""
    return meta(name).heading


def format_value(name: str, value: object, *, with_unit: bool = False) -> str:
    """`value` of field `name` rounded and written for people ("3.86", or "3.86 Gy")."""
    return meta(name).text(value, with_unit=with_unit)


def display(value: object) -> str:
    """Any stored value for people when its field is unknown: None as a dash, booleans as
    yes/no, an enumeration by its label, dates in ISO 8601, numbers as entered, a list item by
    item, a mapping as "label: value" pairs."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, enum.Enum):
        return str(getattr(value, "label", None) or choice_label(str(value.value)))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, date):
        return value.isoformat()
    if _is_number(value):
        return _as_entered(value)
    if isinstance(value, list | tuple):
        return ", ".join(display(item) for item in value) if value else EMPTY
    if isinstance(value, dict):
        return "; ".join(f"{meta(k).label}: {format_value(k, v)}" for k, v in value.items())
    return str(value)


def choice_label(value: str) -> str:
    """A stored choice of a value set without labels, read as words: "lymph_node" -> "Lymph
    node", "not_evaluated" -> "Not evaluated"."""
    return _sentence(value.split("_"))


def _sentence(words: list[str]) -> str:
    text = " ".join(word.upper() if word in _ACRONYMS else word for word in words)
    return text[:1].upper() + text[1:]


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_entered(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return format(Decimal(f"{value:.{SIGNIFICANT_DIGITS_AS_ENTERED}g}"), "f")


def _derived(name: str) -> FieldMeta:
    stem, scale = name, ""
    for limit in ("_uln", "_lln"):
        if name.endswith(limit):
            stem, scale = name.removesuffix(limit), f" {limit[1:].upper()}"
    unit, decimals = "", None
    for suffix, suffix_unit, suffix_decimals in _SUFFIXES:
        if stem.endswith(suffix):
            stem, unit, decimals = stem.removesuffix(suffix), suffix_unit, suffix_decimals
            break
    return FieldMeta(_sentence(stem.split("_")) + scale, unit, decimals)


# Fields whose label derived from the name would read wrong (an abbreviation, a unit inside the
# name, a probability's rounding).
register("left_kidney_dose_sd_gy", "Left kidney dose SD", "Gy", 2)
register("right_kidney_dose_sd_gy", "Right kidney dose SD", "Gy", 2)
register("kidney_dose_sd_systematic_share", "Systematic share of the kidney dose SD", "", 2)
register("kidney_effective_half_life_h", "Kidney effective half-life", "h", 1)
register("cumulative_kidney_bed_gy", "Cumulative kidney BED", "Gy", 2)
register("predicted_cumulative_kidney_bed_gy", "Predicted cumulative kidney BED", "Gy", 2)
register(
    "predicted_cumulative_kidney_gy_full_cycle",
    "Predicted cumulative kidney dose after a full cycle",
    "Gy",
    2,
)
register(
    "predicted_cumulative_kidney_gy_interval",
    "Predicted cumulative kidney dose, 90 % interval",
    "Gy",
    2,
)
register("worse_kidney_cumulative_gy", "Cumulative dose of the worse kidney", "Gy", 2)
register("probability_over_limit", "Probability over the limit", "", 3)
register(
    "probability_measured_over_limit",
    "Probability the measured cumulative dose is over the limit",
    "",
    3,
)
register("tablets_150", "Tablets of 150 mg")
register("tablets_500", "Tablets of 500 mg")
register("attribution_prrt", "Attribution to PRRT")
register("attribution_capecitabine", "Attribution to capecitabine")
# screening record: hyphens, articles and abbreviations as the protocol writes them
register(
    "histology_confirmed_well_differentiated_inoperable_net",
    "Histologically confirmed, well-differentiated, inoperable NET",
)
register("lesion_to_liver_suv_ratio", "Lesion-to-liver SUV ratio")
register("sstr_pet_date", "SSTR-PET date")
register("fdg_pet_positive", "FDG-PET positive")
register("ki67_percent", "Ki-67", "%")
register("who_grade", "WHO grade")
register("cutoff_date", "Data cut-off date")
register("snapshot_sha256", "Snapshot SHA-256")
register("progression_confirmed_by_mdc", "Progression confirmed by the MDC")
register("prior_non_ssa_therapy", "Prior non-SSA therapy")
register("prior_non_ssa_therapy_end_date", "End of prior non-SSA therapy")
register("measurable_disease_recist", "Measurable disease (RECIST 1.1)")
register("concomitant_non_ssa_systemic_therapy", "Concomitant non-SSA systemic therapy")
register("capecitabine_other_contraindication", "Other contraindication to capecitabine")
register("sstr_negative_lesions", "SSTR-negative lesions")
# laboratory panels: haemoglobin as START-01 spells it; the GFR a decision reads (whole numbers)
register("hemoglobin_g_l", "Haemoglobin", "g/L")
register("hemoglobin_g_l_lln", "Haemoglobin LLN", "g/L")
register("gfr_ml_min_173", "GFR", "mL/min/1.73 m²", 0)
register("lmr_ml_min_173", "eGFR LMR", "mL/min/1.73 m²", 0)
register("capa_ml_min_173", "eGFR CAPA", "mL/min/1.73 m²", 0)
# missing-data report (protocol.expected_forms)
register("form_kind", "Form")
register("due_on", "Due")
register("days_overdue", "Overdue", "days")
register("missing_forms", "Missing forms")
# enrolment dashboard (web/pages/enrolment_views.py): patients counted, the accrual plan
register("screened_patients", "Screened", "patients", 0)
register("eligible_patients", "Eligible", "patients", 0)
register("ineligible_patients", "Not eligible", "patients", 0)
register("undecided_patients", "Eligibility undecided", "patients", 0)
register("randomized_patients", "Randomized", "patients", 0)
register("planned_patients", "Planned", "patients", 0)
register("target_patients", "Target", "patients", 0)
register("percent_of_plan", "Randomized of planned", "%", 0)
register("accrual_rate_per_month", "Mean accrual rate", "patients/month", 1)
register("projected_completion_date", "Projected completion")
# concomitant medications (protocol/concomitant_therapy.py)
register("atc_code", "ATC code")
register("finding", "Protocol check")
register("finding_description", "Protocol check, details")
# adverse events coded with CTCAE v5.0 (startrt.clinical.ctcae_terms)
register("term", "CTCAE term")
register("soc", "System organ class")
register("meddra_code", "MedDRA code")
register("other_specify", "Name of the event (Other, specify)")
# SAE reports (web/safety)
register("aware_at", "Site aware at")
register("initial_report_due_at", "Initial report due at")
register("susar", "SUSAR")
register("notified_to", "Notification sent to")
# the trial report's table columns (analysis/report.py); 95 % limits as the report computes them
register("arm", "Randomized arm")
register("treatment_arm", "Treatment arm")
register("predicted_cumulative_kidney_gy", "Predicted cumulative kidney dose", "Gy", 2)
register("median_months", "Median", "months", 1)
register("median_lower_months", "Median, lower 95 % limit", "months", 1)
register("median_upper_months", "Median, upper 95 % limit", "months", 1)
register("tau_months", "RMST horizon τ", "months", 1)
register("rmst_months", "RMST", "months", 1)
register("rmst_se_months", "RMST SE", "months", 1)
register("survival_12m", "Survival at 12 months", "", 3)
register("survival_12m_lower", "Survival at 12 months, lower 95 % limit", "", 3)
register("survival_12m_upper", "Survival at 12 months, upper 95 % limit", "", 3)
register("survival_24m", "Survival at 24 months", "", 3)
register("survival_24m_lower", "Survival at 24 months, lower 95 % limit", "", 3)
register("survival_24m_upper", "Survival at 24 months, upper 95 % limit", "", 3)
register("p_value", "p value", "", 3)
register("lower", "Lower 95 % limit")
register("upper", "Upper 95 % limit")
register("n", "n")
register("orr_n", "Objective responses", "patients", 0)
register("orr", "ORR (CR + PR)", "", 3)
register("orr_lower", "ORR, lower 95 % limit", "", 3)
register("orr_upper", "ORR, upper 95 % limit", "", 3)
register("dcr_n", "Disease control", "patients", 0)
register("dcr", "DCR (CR + PR + SD)", "", 3)
register("dcr_lower", "DCR, lower 95 % limit", "", 3)
register("dcr_upper", "DCR, upper 95 % limit", "", 3)
register("n_patients", "Patients in the group", "patients", 0)
register("sd", "SD")
register("q1", "First quartile")
register("q3", "Third quartile")
register("min", "Minimum")
register("max", "Maximum")
register("n_change", "n with a baseline")
register("mean_change", "Mean change from baseline")
register("n_incomplete", "Patients with a dose missing", "patients", 0)
register("at_limit", "At the limit", "patients", 0)
register("over_limit", "Over the limit", "patients", 0)
register("kidney_fraction_of_limit", "Kidney dose, fraction of the limit", "", 2)
register("kidney_status", "Kidney dose against the limit")
register("marrow_fraction_of_limit", "Marrow dose, fraction of the limit", "", 2)
register("marrow_status", "Marrow dose against the limit")
register("events_schoenfeld", "Events needed (Schoenfeld)", "events", 0)
register("events_freedman", "Events needed (Freedman)", "events", 0)
register("z_boundary", "Boundary now", "Z", 2)
register("grouping", "Grouped by")
# the report's interim monitoring and subgroup tables (analysis/interim.py, analysis/subgroups.py)
register("interaction_p", "Interaction p value", "", 3)
register("z_observed", "Observed log-rank Z")
register("z_final", "Final boundary", "Z", 2)
register("drift_design", "Drift under the design hazard ratio")
register("drift_trend", "Drift under the current trend")
register("conditional_power_design", "Conditional power, design hazard ratio", "", 3)
register("conditional_power_trend", "Conditional power, current trend", "", 3)
# the report's safety tables (analysis/safety_tables.py, analysis/safety_labs.py)
register("grade", "CTCAE grade")
register("grade_3_plus", "Grade ≥ 3", "patients", 0)
register("onset_on", "Onset")
register("outcome", "Outcome")
register("died_on", "Date of death")
register("days_after_last_cycle", "After the last cycle", "days", 0)
register("cause", "Cause of death")
register("related_to_treatment", "Related to treatment")
register("deaths", "Deaths", "patients", 0)
register("related_deaths", "Deaths related to treatment", "patients", 0)
register("slope_median", "eGFR slope, median", "mL/min/1.73 m²/year", 1)
register("slope_q1", "eGFR slope, first quartile", "mL/min/1.73 m²/year", 1)
register("slope_q3", "eGFR slope, third quartile", "mL/min/1.73 m²/year", 1)
register("rapid_decline", "Losing > 5 mL/min/1.73 m²/year", "patients", 0)
register("unit", "Unit")
register("nadir_median", "Nadir, median")
register("nadir_min", "Nadir, minimum")
register("nadir_max", "Nadir, maximum")
register("days_from_cycle_median", "Cycle to nadir, median", "days", 0)
# the report's baseline and exposure tables (analysis/baseline.py, analysis/exposure.py)
register("baseline_characteristic", "Characteristic")
register("exposure_item", "Counted")
register("exposure_count", "Number")
