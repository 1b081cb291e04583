"""Parameters of the in-silico trial: every distribution of the virtual patients and every
outcome-model constant, each with its source, validated on load.

The shipped file `files/default_parameters.toml` is the reference; a user file has the same
layout (all tables and keys required except the kidney dose model's overrides, unknown keys
refused). The kidney Gy/GBq model of the virtual patients is the planner's population prior
(`protocol/data/kidney_dose_prior.toml`, `Dosimetry.kidney`). Every distribution carries a
`source`: a section of REFERENCE.md with the paper it quotes, or "assumption".
A bad file raises InvalidInputError naming the field (e.g. `dosimetry.kidney_gy_per_gbq.cv`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from startrt.clinical.net_grade import NetGrade
from startrt.protocol.kidney_dose_prediction import kidney_dose_prior, log_sd
from startrt.validation import InvalidInputError

PARAMETERS_PACKAGE = "startrt.simulation.files"
DEFAULT_PARAMETERS_FILE = "default_parameters.toml"
GRADES = tuple(NetGrade)  # WHO grade of the well-differentiated NET
HAEMATOLOGY_TERMS = ("anemia", "platelets", "wbc", "neutrophils", "lymphocytes")
DAYS_PER_MONTH = 365.25 / 12
DAYS_PER_YEAR = 365.25

Source = str


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sourced(_Model):
    source: Source = Field(min_length=1)


class Share(Sourced):
    """Probability of a yes/no attribute."""

    p: float = Field(ge=0, le=1)


class Value(Sourced):
    """One model constant."""

    value: float = Field(ge=0, allow_inf_nan=False)


class TruncatedNormal(Sourced):
    """Normal(mean, sd) restricted to [low, high] (drawn by inverse CDF, not clipped)."""

    mean: float
    sd: float = Field(gt=0)
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> TruncatedNormal:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        if not self.low <= self.mean <= self.high:
            raise ValueError("mean must lie in [low, high]")
        return self


class LogNormal(Sourced):
    """Lognormal by its median and coefficient of variation: sigma = sqrt(ln(1 + cv^2))."""

    median: float = Field(gt=0)
    cv: float = Field(gt=0, le=3)

    @property
    def sigma(self) -> float:
        return log_sd(self.cv)


class Uniform(Sourced):
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError("low must be below high")
        return self


def _probabilities_sum_to_one(values: dict[str, float]) -> None:
    if any(p < 0 for p in values.values()) or not math.isclose(sum(values.values()), 1.0):
        raise ValueError("probabilities must be >= 0 and sum to 1")


class Categorical(Sourced):
    """Levels with their probabilities (summing to 1)."""

    probabilities: dict[str, float] = Field(min_length=1)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Categorical:
        _probabilities_sum_to_one(self.probabilities)
        return self


class PerGrade(Sourced):
    """A value for each WHO grade G1, G2, G3."""

    fractions: dict[str, float] | None = None
    ratios: dict[str, float] | None = None

    @model_validator(mode="after")
    def _every_grade(self) -> PerGrade:
        given = [v for v in (self.fractions, self.ratios) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of fractions or ratios")
        if set(given[0]) != set(GRADES) or min(given[0].values()) < 0:
            raise ValueError(f"needs a value >= 0 for each of {list(GRADES)}")
        return self

    def of(self, grade: str) -> float:
        values = self.fractions if self.fractions is not None else self.ratios
        assert values is not None
        return values[grade]


class Trial(_Model):
    patients: int = Field(ge=2, le=5000)
    start_date: date
    accrual_months: float = Field(gt=0, le=240)
    minimum_follow_up_months: float = Field(ge=0, le=240)
    screening_to_randomization_days: int = Field(ge=0, le=90)
    randomization_to_first_cycle_days: int = Field(ge=0, le=90)
    lab_recheck_weeks: int = Field(ge=1, le=8)
    max_cycles: int = Field(ge=1, le=30)
    candidate_block: int = Field(ge=10, le=10_000)
    source: Source = Field(min_length=1)


class Population(_Model):
    site_weights: dict[str, float] = Field(min_length=1)
    site_source: Source = Field(min_length=1)
    female_share: Share
    fdg_positive_share: Share
    sstr_negative_lesions_share: Share
    age_years: TruncatedNormal
    height_cm_male: TruncatedNormal
    height_cm_female: TruncatedNormal
    weight_kg_male: TruncatedNormal
    weight_kg_female: TruncatedNormal
    ecog: Categorical
    krenning_score: Categorical
    grade: Categorical
    progression_months_before_screening: Uniform
    gfr_ml_min_173: TruncatedNormal
    creatinine_noise_cv: Value
    hemoglobin_g_l: TruncatedNormal
    platelets_10e9_l: LogNormal
    leukocytes_10e9_l: LogNormal
    neutrophil_fraction: TruncatedNormal
    lymphocytes_10e9_l: LogNormal
    albumin_g_l: TruncatedNormal

    @model_validator(mode="after")
    def _levels(self) -> Population:
        if min(self.site_weights.values()) < 0 or sum(self.site_weights.values()) <= 0:
            raise ValueError("site_weights must be >= 0 with a positive sum")
        for name, levels in (
            ("ecog", {"0", "1", "2", "3", "4", "5"}),
            ("krenning_score", {"0", "1", "2", "3", "4"}),
            ("grade", set(GRADES)),
        ):
            unknown = set(getattr(self, name).probabilities) - levels
            if unknown:
                raise ValueError(f"{name}: unknown levels {sorted(unknown)}")
        return self


@dataclass(frozen=True)
class KidneyTruth:
    """The virtual patients' kidney Gy/GBq model (`protocol/data/kidney_dose_prior.toml`):
    first-cycle Gy/GBq lognormal (median, cv), rise per cycle, cycle-to-cycle CV, measurement
    CV and the share of its variance shared by a patient's cycles (systematic)."""

    median_gy_per_gbq: float
    cv: float
    rise_per_cycle: float
    cycle_cv: float
    measurement_cv: float
    systematic_share: float


class Dosimetry(_Model):
    """Absorbed-dose models. The kidney's come from the planner's population prior (one
    representation, `protocol/data/kidney_dose_prior.toml`); a parameter file may override
    them (`kidney_gy_per_gbq`, `kidney_drift_per_cycle`, `kidney_cycle_cv`,
    `kidney_measurement_cv`, `kidney_measurement_systematic_share`) to simulate patients who
    differ from what the planner's model believes."""

    kidney_gy_per_gbq: LogNormal | None = None
    kidney_drift_per_cycle: Value | None = None
    kidney_cycle_cv: Value | None = None
    kidney_measurement_cv: Value | None = None
    kidney_measurement_systematic_share: Value | None = None
    kidney_effective_half_life_h: LogNormal
    tumour_gy_per_gbq: LogNormal
    tumour_fall_per_cycle: PerGrade
    tumour_cycle_cv: Value
    marrow_gy_per_gbq: LogNormal

    @model_validator(mode="after")
    def _share(self) -> Dosimetry:
        share = self.kidney_measurement_systematic_share
        if share is not None and share.value > 1:
            raise ValueError("kidney_measurement_systematic_share.value must be <= 1")
        return self

    @property
    def kidney(self) -> KidneyTruth:
        """The kidney model: the prior's numbers unless this file overrides them."""
        prior = kidney_dose_prior()
        gy_per_gbq = self.kidney_gy_per_gbq or prior.gy_per_gbq

        def value(given: Value | None, default: float) -> float:
            return default if given is None else given.value

        return KidneyTruth(
            median_gy_per_gbq=gy_per_gbq.median,
            cv=gy_per_gbq.cv,
            rise_per_cycle=value(self.kidney_drift_per_cycle, prior.rise_per_cycle.value),
            cycle_cv=value(self.kidney_cycle_cv, prior.cycle_cv.value),
            measurement_cv=value(self.kidney_measurement_cv, prior.measurement_cv.value),
            systematic_share=value(
                self.kidney_measurement_systematic_share, prior.systematic_share.value
            ),
        )


class Efficacy(_Model):
    reference_median_pfs_months: Value
    weibull_shape: Value
    reference_tumour_dose_gy: Value
    dose_response_exponent: Value
    untreated_hazard_ratio: Value
    fdg_positive_hazard_ratio: Value
    grade_hazard_ratio: PerGrade
    capecitabine_hazard_ratio: Value
    response_reference_rate: Value
    response_log_odds_per_log_dose: Value
    response_fdg_positive_odds_ratio: Value
    complete_response_share: Value
    death_before_progression_per_year: Value
    survival_after_progression_months: Value
    dropout_per_year: Value

    @model_validator(mode="after")
    def _ranges(self) -> Efficacy:
        positive = (
            "reference_median_pfs_months",
            "weibull_shape",
            "reference_tumour_dose_gy",
            "fdg_positive_hazard_ratio",
            "capecitabine_hazard_ratio",
            "response_fdg_positive_odds_ratio",
            "survival_after_progression_months",
        )
        for name in positive:
            if getattr(self, name).value <= 0:
                raise ValueError(f"{name}.value must be > 0")
        if self.untreated_hazard_ratio.value <= 1:
            raise ValueError("untreated_hazard_ratio.value must be > 1 (treatment helps)")
        for name in ("response_reference_rate", "complete_response_share"):
            if not 0 < getattr(self, name).value < 1:
                raise ValueError(f"{name}.value must lie in (0, 1)")
        return self


class Kidney(_Model):
    gfr_measurement_cv: Value
    gfr_loss_per_year: Value
    gfr_loss_per_year_per_gy_bed: Value
    egfr_lln: Value


class BloodCount(Sourced):
    """Per-cycle model of one blood count (see files/default_parameters.toml)."""

    lln: float = Field(gt=0)
    lab_cv: float = Field(ge=0, le=1)
    recovery_loss_per_gy: float = Field(ge=0, le=5)
    nadir_drop_per_gy: float = Field(ge=0, le=10)
    nadir_sd: float = Field(ge=0, le=3)
    capecitabine_nadir_drop: float = Field(ge=0, le=3)


class Haematology(_Model):
    anemia: BloodCount
    platelets: BloodCount
    wbc: BloodCount
    neutrophils: BloodCount
    lymphocytes: BloodCount

    def term(self, name: str) -> BloodCount:
        count = getattr(self, name)
        assert isinstance(count, BloodCount)
        return count


class Resources(_Model):
    inpatient_days_per_cycle: Value
    standard_arm_spect_sessions_per_cycle: Value


class Analysis(_Model):
    alpha: float = Field(gt=0, lt=1)
    logrank_strata: Literal["fdg", "none"]
    source: Source = Field(min_length=1)


class Parameters(_Model):
    """All parameters of one in-silico trial (see the module docstring)."""

    schema_version: Literal["startrt-simulation/1"] = Field(alias="schema")
    trial: Trial
    population: Population
    dosimetry: Dosimetry
    efficacy: Efficacy
    kidney: Kidney
    haematology: Haematology
    resources: Resources
    analysis: Analysis


def parse_parameters(text: str, source: str = "<text>") -> Parameters:
    """Parse and validate parameter TOML; the first failing field is named in the error."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError(source, "TOML", f"is not valid TOML: {error}") from None
    try:
        return Parameters.model_validate(data)
    except ValidationError as error:
        item = error.errors()[0]
        field = ".".join(str(part) for part in item["loc"]) or source
        raise InvalidInputError(field, item.get("input"), f"{item['msg']} ({source})") from None


def load_parameters(path: str | Path | None = None) -> Parameters:
    """The parameters of `path`, or the shipped defaults when `path` is None."""
    if path is None:
        return parse_parameters(default_parameters_text(), DEFAULT_PARAMETERS_FILE)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise InvalidInputError("parameters", str(file), f"cannot be read: {error}") from None
    return parse_parameters(text, str(file))


def default_parameters_text() -> str:
    """The shipped parameter file, as text."""
    return resources.files(PARAMETERS_PACKAGE).joinpath(DEFAULT_PARAMETERS_FILE).read_text("utf-8")
