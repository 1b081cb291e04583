"""Screening and pre-cycle records, and the values the criteria read (raw and derived).

Derived values: GFR (measured, else the mean of LMR and CAPA, the protocol's "combination"),
months since the progression imaging, washout since earlier non-SSA therapy, and the
capecitabine label contraindication.
"""

from __future__ import annotations

from datetime import date

from pydantic import Field, model_validator

from startrt.clinical.capecitabine import contraindications
from startrt.clinical.egfr import GfrMethod, cockcroft_gault_crcl_ml_min, lund_model_gfr
from startrt.clinical.sex import Sex
from startrt.protocol.criteria import Value
from startrt.protocol.records import Record
from startrt.protocol.vocabulary import PrimarySite
from startrt.validation import InvalidInputError

DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12


def age_years_on(age_years: float, recorded_on: date, day: date) -> float:
    """The age on `day` of a patient `age_years` old on `recorded_on` (the screening: no date
    of birth is kept), counting years of 365.25 days; to 0.01 year."""
    return round(age_years + (day - recorded_on).days / DAYS_PER_YEAR, 2)


class Labs(Record):
    """Laboratory results in SI units, with the lab's ULN where criteria scale by it.

    Bounds are plausibility limits (a value outside is a unit or typing error), not normal ranges.
    """

    hemoglobin_g_l: float | None = Field(default=None, ge=20, le=250)
    platelets_10e9_l: float | None = Field(default=None, ge=0, le=2000)
    leukocytes_10e9_l: float | None = Field(default=None, ge=0, le=500)
    neutrophils_10e9_l: float | None = Field(default=None, ge=0, le=200)
    ast_u_l: float | None = Field(default=None, ge=0, le=20000)
    ast_u_l_uln: float | None = Field(default=None, gt=0, le=500)
    alt_u_l: float | None = Field(default=None, ge=0, le=20000)
    alt_u_l_uln: float | None = Field(default=None, gt=0, le=500)
    bilirubin_umol_l: float | None = Field(default=None, ge=0, le=1500)
    bilirubin_umol_l_uln: float | None = Field(default=None, gt=0, le=100)
    albumin_g_l: float | None = Field(default=None, ge=5, le=70)
    creatinine_umol_l: float | None = Field(default=None, ge=10, le=3000)
    cystatin_c_mg_l: float | None = Field(default=None, ge=0.2, le=10)
    measured_gfr_ml_min_173: float | None = Field(default=None, ge=0, le=250)


class PatientLabs(Labs):
    """Labs with the patient data the kidney-function equations need."""

    sex: Sex | None = None
    age_years: float | None = Field(default=None, ge=0, le=120)
    weight_kg: float | None = Field(default=None, ge=20, le=350)
    height_cm: float | None = Field(default=None, ge=100, le=250)


class ScreeningRecord(PatientLabs):
    """Everything the eligibility criteria read; None means not (yet) recorded."""

    screening_date: date
    planned_start_date: date | None = None
    consent_signed: bool | None = None
    ecog: int | None = Field(default=None, ge=0, le=5)
    histology_confirmed_well_differentiated_inoperable_net: bool | None = None
    pheochromocytoma_or_paraganglioma: bool | None = None
    krenning_score: int | None = Field(default=None, ge=0, le=4)
    lesion_to_liver_suv_ratio: float | None = Field(default=None, ge=0, le=200)
    sstr_pet_date: date | None = None
    fdg_pet_positive: bool | None = None
    progression_imaging_date: date | None = None
    progression_confirmed_by_mdc: bool | None = None
    prior_non_ssa_therapy: bool | None = None
    prior_non_ssa_therapy_end_date: date | None = None
    measurable_disease_recist: bool | None = None
    prrt_treatment_of_choice: bool | None = None
    childbearing_potential: bool | None = None
    highly_effective_contraception: bool | None = None
    pregnant_or_lactating: bool | None = None
    prior_prrt: bool | None = None
    concomitant_non_ssa_systemic_therapy: bool | None = None
    dpd_deficiency: bool | None = None
    capecitabine_other_contraindication: bool | None = None
    sstr_negative_lesions: bool | None = None
    serious_uncontrolled_condition: bool | None = None
    unable_to_comply: bool | None = None
    primary_site: PrimarySite | None = None
    ki67_percent: float | None = Field(default=None, ge=0, le=100)
    life_expectancy_months: float | None = Field(default=None, ge=0, le=600)

    @model_validator(mode="after")
    def _dates_in_order(self) -> ScreeningRecord:
        for name in ("progression_imaging_date", "prior_non_ssa_therapy_end_date", "sstr_pet_date"):
            value = getattr(self, name)
            if value is not None and value > self.screening_date:
                raise ValueError(f"{name} {value} is after screening_date {self.screening_date}")
        start = self.planned_start_date
        if start is not None and start < self.screening_date:
            raise ValueError(f"planned_start_date {start} is before screening_date")
        return self


def gfr_values(
    labs: PatientLabs, agreement_threshold: float, *, single_marker: bool = False
) -> tuple[dict[str, Value], list[str]]:
    """GFR the criteria use (`clinical.egfr.lund_model_gfr`): measured if given, else the mean
    of LMR and CAPA, else (`single_marker`: the pre-cycle checks) LMR or CAPA alone; with the
    method (`gfr_source`), the equations' values (0.1 ml/min/1.73 m2) and warnings."""
    values: dict[str, Value] = {"gfr_ml_min_173": None, "gfr_source": None}
    warnings: list[str] = []
    try:
        estimate = lund_model_gfr(
            labs.sex,
            labs.age_years,
            creatinine_umol_l=labs.creatinine_umol_l,
            cystatin_c_mg_l=labs.cystatin_c_mg_l,
            measured_gfr_ml_min_173=labs.measured_gfr_ml_min_173,
            agreement_threshold=agreement_threshold,
            single_marker=single_marker,
        )
    except InvalidInputError as error:
        warnings.append(f"GFR not computed: {error}")
        return values, warnings
    if estimate is None:
        return values, warnings
    computed = estimate.method is not GfrMethod.MEASURED
    gfr = round(estimate.gfr_ml_min_173, 1) if computed else estimate.gfr_ml_min_173
    values.update(gfr_ml_min_173=gfr, gfr_source=estimate.method.value)
    for name, value in (
        ("lmr_ml_min_173", estimate.lmr_ml_min_173),
        ("capa_ml_min_173", estimate.capa_ml_min_173),
    ):
        if value is not None:
            values[name] = round(value, 1)
    if estimate.agree is False:
        lmr, capa = estimate.lmr_ml_min_173, estimate.capa_ml_min_173
        warnings.append(
            f"LMR {lmr:.0f} and CAPA {capa:.0f} ml/min/1.73 m2 differ by "
            f"{estimate.relative_difference:.0%} (> {agreement_threshold:.0%}): look for a "
            "clinical reason or measure GFR (iohexol / 51Cr-EDTA)"
        )
    return values, warnings


def _capecitabine_contraindicated(
    record: ScreeningRecord, warnings: list[str]
) -> tuple[bool | None, tuple[str, ...]]:
    crcl = None
    sex, age, weight, creatinine = (
        record.sex,
        record.age_years,
        record.weight_kg,
        record.creatinine_umol_l,
    )
    if sex is not None and age is not None and weight is not None and creatinine is not None:
        try:
            crcl = cockcroft_gault_crcl_ml_min(sex, age, weight, creatinine)
        except InvalidInputError as error:
            warnings.append(f"creatinine clearance not computed: {error}")
    reasons = contraindications(
        crcl_ml_min=crcl,
        dpd_deficiency=record.dpd_deficiency,
        pregnant_or_lactating=record.pregnant_or_lactating,
    )
    if record.capecitabine_other_contraindication:
        reasons = (*reasons, "other label contraindication recorded by the investigator")
    if reasons:
        return True, reasons
    unknown = None in (crcl, record.dpd_deficiency, record.capecitabine_other_contraindication)
    return (None if unknown else False), reasons


def _months_between(earlier: date | None, later: date) -> float | None:
    return None if earlier is None else round((later - earlier).days / DAYS_PER_MONTH, 2)


def screening_values(
    record: ScreeningRecord, agreement_threshold: float
) -> tuple[dict[str, Value], list[str]]:
    """All values criteria may read: the record's own fields plus derived ones; and warnings."""
    values: dict[str, Value] = dict(record.model_dump(mode="json"))
    gfr, warnings = gfr_values(record, agreement_threshold)
    values.update(gfr)
    values["progression_months_before_screening"] = _months_between(
        record.progression_imaging_date, record.screening_date
    )
    values["sstr_pet_months_before_screening"] = _months_between(
        record.sstr_pet_date, record.screening_date
    )
    start = record.planned_start_date or record.screening_date
    end = record.prior_non_ssa_therapy_end_date
    values["non_ssa_therapy_washout_weeks"] = None if end is None else (start - end).days / 7
    contraindicated, reasons = _capecitabine_contraindicated(record, warnings)
    values["capecitabine_contraindicated"] = contraindicated
    warnings.extend(f"capecitabine: {reason}" for reason in reasons)
    return values, warnings


DERIVED_FIELDS = frozenset(
    {
        "gfr_ml_min_173",
        "progression_months_before_screening",
        "sstr_pet_months_before_screening",
        "non_ssa_therapy_washout_weeks",
        "capecitabine_contraindicated",
    }
)
SCREENING_FIELDS = frozenset(ScreeningRecord.model_fields) | DERIVED_FIELDS
CYCLE_LAB_FIELDS = frozenset(PatientLabs.model_fields) | {"gfr_ml_min_173"}
