"""Virtual screening candidates: baseline traits drawn from the distributions of the parameter
file, reported at laboratory precision, and the screening record the protocol engine reads.

Each candidate also carries its latent traits (kidney, tumour and marrow Gy/GBq, kidney
effective half-life, and the uniform / exponential draws of its outcome models), drawn with its
screening data from the same stream, so a candidate's whole history depends on its own draws.

Values are stored as integer codes at reporting precision (`value = code / scale`): GFR, Hb,
platelets, albumin, height, weight, creatinine and age as integers; leukocytes, neutrophils,
lymphocytes and the kidney half-life to 0.1. Criteria that every candidate meets by assumption
(consent, histology, no earlier PRRT, ...) are fixed in CONSTANT_FIELDS; screening failures
come from ECOG, Krenning score, progression timing, SSTR-negative lesions, GFR and blood counts.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri

from startrt.clinical.egfr import cockcroft_gault_crcl_ml_min
from startrt.clinical.sex import Sex
from startrt.protocol.kidney_dose_prediction import log_sd
from startrt.protocol.screening import ScreeningRecord
from startrt.simulation.arrays import Bools, Floats, Ints
from startrt.simulation.parameters import (
    GRADES,
    Categorical,
    LogNormal,
    Parameters,
    TruncatedNormal,
)

SCALES = {"leukocytes": 10, "neutrophils": 10, "lymphocytes": 10, "kidney_half_life": 10}

CONSTANT_FIELDS: dict[str, Any] = {
    "consent_signed": True,
    "histology_confirmed_well_differentiated_inoperable_net": True,
    "pheochromocytoma_or_paraganglioma": False,
    "progression_confirmed_by_mdc": True,
    "prior_non_ssa_therapy": False,
    "measurable_disease_recist": True,
    "prrt_treatment_of_choice": True,
    "ast_u_l": 25.0,
    "ast_u_l_uln": 45.0,
    "alt_u_l": 25.0,
    "alt_u_l_uln": 50.0,
    "bilirubin_umol_l": 10.0,
    "bilirubin_umol_l_uln": 26.0,
    "childbearing_potential": False,
    "highly_effective_contraception": True,
    "pregnant_or_lactating": False,
    "prior_prrt": False,
    "concomitant_non_ssa_systemic_therapy": False,
    "dpd_deficiency": False,
    "capecitabine_other_contraindication": False,
    "serious_uncontrolled_condition": False,
    "unable_to_comply": False,
}


@dataclass(frozen=True)
class Candidates:
    """Screening candidates as arrays (one entry per candidate); see the module docstring."""

    site: Ints
    female: Bools
    age_years: Ints
    height_cm: Ints
    weight_kg: Ints
    ecog: Ints
    krenning_score: Ints
    fdg_positive: Bools
    sstr_negative_lesions: Bools
    grade: Ints  # 1, 2, 3
    progression_days: Ints  # days from the progression imaging to screening
    gfr_true: Floats  # ml/min/1.73 m2
    gfr_measured: Ints
    creatinine_umol_l: Ints
    hemoglobin_g_l: Ints
    platelets: Ints  # 10^9/L
    leukocytes: Ints  # 10^9/L x 10
    neutrophils: Ints  # 10^9/L x 10
    lymphocytes: Ints  # 10^9/L x 10
    albumin_g_l: Ints
    crcl_ml_min: Floats  # Cockcroft-Gault, by clinical.egfr
    kidney_gy_per_gbq: Floats  # true, first cycle
    kidney_half_life: Ints  # h x 10, within 5-159 h (177Lu's physical half-life is 159.5 h)
    tumour_gy_per_gbq: Floats  # first cycle
    marrow_gy_per_gbq: Floats
    progression_draw: Floats  # Exp(1): cumulative hazard at progression
    death_draw: Floats  # Exp(1): death before progression
    dropout_draw: Floats  # Exp(1): loss to follow-up
    survival_draw: Floats  # Exp(1): survival after progression
    response_draw: Floats  # U(0, 1)
    complete_response_draw: Floats  # U(0, 1)
    kidney_measurement_draw: Floats  # N(0, 1): the systematic part of the kidney dose error

    def __len__(self) -> int:
        return len(self.site)

    def take(self, index: NDArray[Any]) -> Self:
        """The candidates at `index` (an index or boolean mask)."""
        return type(self)(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list[Self]) -> Self:
        return cls(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)}
        )

    def value(self, name: str) -> Floats:
        """A coded trait as its value in its unit (code / scale)."""
        codes = getattr(self, name)
        return np.asarray(codes, dtype=np.float64) / SCALES.get(name, 1)


def lognormal_factor(cv: float, z: Floats) -> Floats:
    """Median-one lognormal multiplier with coefficient of variation `cv`, from N(0,1) `z`."""
    return np.exp(log_sd(cv) * z)


def draw_lognormal(rng: np.random.Generator, spec: LogNormal, n: int) -> Floats:
    return spec.median * lognormal_factor(spec.cv, rng.standard_normal(n))


def draw_truncated_normal(rng: np.random.Generator, spec: TruncatedNormal, n: int) -> Floats:
    """Inverse-CDF draw from Normal(mean, sd) truncated to [low, high]."""
    low = ndtr((spec.low - spec.mean) / spec.sd)
    high = ndtr((spec.high - spec.mean) / spec.sd)
    u = low + (high - low) * rng.random(n)
    values: Floats = spec.mean + spec.sd * ndtri(u)
    return np.clip(values, spec.low, spec.high)


def draw_categorical(rng: np.random.Generator, spec: Categorical, n: int) -> list[str]:
    levels = list(spec.probabilities)
    probabilities = np.array([spec.probabilities[level] for level in levels])
    chosen = rng.choice(len(levels), size=n, p=probabilities / probabilities.sum())
    return [levels[i] for i in chosen.tolist()]


def lmr_creatinine_umol_l(female: Bools, age_years: Floats, gfr_ml_min_173: Floats) -> Floats:
    """The plasma creatinine (umol/L) at which the revised Lund-Malmo equation gives
    `gfr_ml_min_173`: LMR (Bjork et al., Scand J Clin Lab Invest 2011; REFERENCE.md 'Kidney
    function') solved for pCr. X = ln(GFR) + 0.0158 age - 0.438 ln(age); female: pCr = 150 -
    (X - 2.50) / 0.0121 when X >= 2.50, else 150 exp(-(X - 2.50) / 0.926); male with 180, 2.56,
    0.00968. Used only to give candidates a creatinine consistent with their GFR."""
    x = np.log(gfr_ml_min_173) + 0.0158 * age_years - 0.438 * np.log(age_years)
    knee = np.where(female, 150.0, 180.0)
    x_knee = np.where(female, 2.50, 2.56)
    slope = np.where(female, 0.0121, 0.00968)
    linear = knee - (x - x_knee) / slope
    logarithmic = knee * np.exp(-(x - x_knee) / 0.926)
    creatinine: Floats = np.where(x >= x_knee, linear, logarithmic)
    return creatinine


def cockcroft_gault(female: Bools, age_years: Ints, weight_kg: Ints, creatinine: Ints) -> Floats:
    """Cockcroft-Gault CrCl (ml/min) of each candidate: `clinical.egfr.
    cockcroft_gault_crcl_ml_min` on arrays, (140 - age) * weight * k / creatinine with the same
    factors and the same order of operations (the tests check equality to the last bit)."""
    # (140 - 108) * 32 / 1024 = 1 with power-of-two steps, so this returns k exactly
    factors = {sex: cockcroft_gault_crcl_ml_min(sex, 108.0, 32.0, 1024.0) for sex in Sex}
    factor = np.where(female, factors[Sex.FEMALE], factors[Sex.MALE])
    crcl: Floats = (140.0 - age_years.astype(np.float64)) * weight_kg * factor / creatinine
    return crcl


def _creatinine_and_crcl(
    female: Bools, age_years: Ints, weight_kg: Ints, creatinine: Floats
) -> tuple[Ints, Floats]:
    """Creatinine codes (umol/L, whole numbers, 20-1000) and the Cockcroft-Gault CrCl."""
    codes = np.clip(_codes(creatinine), 20, 1000)
    return codes, cockcroft_gault(female, age_years, weight_kg, codes)


def _codes(values: Floats, scale: int = 1) -> Ints:
    return np.rint(values * scale).astype(np.int64)


def draw_candidates(
    parameters: Parameters, sites: tuple[str, ...], rng: np.random.Generator, n: int
) -> Candidates:
    """`n` screening candidates; the draws are made in a fixed order from `rng`."""
    population, dosimetry = parameters.population, parameters.dosimetry
    kidney = dosimetry.kidney
    weights = np.array([population.site_weights[site] for site in sites])
    site = rng.choice(len(sites), size=n, p=weights / weights.sum())
    female = rng.random(n) < population.female_share.p
    age = draw_truncated_normal(rng, population.age_years, n)
    height = np.where(
        female,
        draw_truncated_normal(rng, population.height_cm_female, n),
        draw_truncated_normal(rng, population.height_cm_male, n),
    )
    weight = np.where(
        female,
        draw_truncated_normal(rng, population.weight_kg_female, n),
        draw_truncated_normal(rng, population.weight_kg_male, n),
    )
    ecog = [int(level) for level in draw_categorical(rng, population.ecog, n)]
    krenning = [int(level) for level in draw_categorical(rng, population.krenning_score, n)]
    grade = [GRADES.index(level) + 1 for level in draw_categorical(rng, population.grade, n)]
    fdg = rng.random(n) < population.fdg_positive_share.p
    sstr_negative = rng.random(n) < population.sstr_negative_lesions_share.p
    months = population.progression_months_before_screening
    progression_days = rng.uniform(months.low, months.high, n) * 365.25 / 12
    gfr_true = draw_truncated_normal(rng, population.gfr_ml_min_173, n)
    gfr_measured = gfr_true * lognormal_factor(
        parameters.kidney.gfr_measurement_cv.value, rng.standard_normal(n)
    )
    age_years = np.rint(age)
    creatinine = lmr_creatinine_umol_l(female, age_years, gfr_true) * lognormal_factor(
        population.creatinine_noise_cv.value, rng.standard_normal(n)
    )
    hemoglobin = draw_truncated_normal(rng, population.hemoglobin_g_l, n)
    platelets = draw_lognormal(rng, population.platelets_10e9_l, n)
    leukocytes = np.round(draw_lognormal(rng, population.leukocytes_10e9_l, n), 1)
    neutrophils = leukocytes * draw_truncated_normal(rng, population.neutrophil_fraction, n)
    lymphocytes = draw_lognormal(rng, population.lymphocytes_10e9_l, n)
    albumin = draw_truncated_normal(rng, population.albumin_g_l, n)
    weight_kg = _codes(weight)
    creatinine_codes, crcl = _creatinine_and_crcl(
        female, age_years.astype(np.int64), weight_kg, creatinine
    )
    return Candidates(
        site=site.astype(np.int64),
        female=female,
        age_years=age_years.astype(np.int64),
        height_cm=_codes(height),
        weight_kg=weight_kg,
        ecog=np.array(ecog, dtype=np.int64),
        krenning_score=np.array(krenning, dtype=np.int64),
        fdg_positive=fdg,
        sstr_negative_lesions=sstr_negative,
        grade=np.array(grade, dtype=np.int64),
        progression_days=_codes(progression_days),
        gfr_true=gfr_true,
        gfr_measured=_codes(gfr_measured),
        creatinine_umol_l=creatinine_codes,
        hemoglobin_g_l=_codes(hemoglobin),
        platelets=_codes(platelets),
        leukocytes=_codes(leukocytes, 10),
        neutrophils=_codes(neutrophils, 10),
        lymphocytes=_codes(lymphocytes, 10),
        albumin_g_l=_codes(albumin),
        crcl_ml_min=crcl,
        kidney_gy_per_gbq=kidney.median_gy_per_gbq
        * lognormal_factor(kidney.cv, rng.standard_normal(n)),
        kidney_half_life=_codes(
            np.clip(draw_lognormal(rng, dosimetry.kidney_effective_half_life_h, n), 5.0, 159.0),
            10,
        ),
        tumour_gy_per_gbq=draw_lognormal(rng, dosimetry.tumour_gy_per_gbq, n),
        marrow_gy_per_gbq=draw_lognormal(rng, dosimetry.marrow_gy_per_gbq, n),
        progression_draw=rng.standard_exponential(n),
        death_draw=rng.standard_exponential(n),
        dropout_draw=rng.standard_exponential(n),
        survival_draw=rng.standard_exponential(n),
        response_draw=rng.random(n),
        complete_response_draw=rng.random(n),
        kidney_measurement_draw=rng.standard_normal(n),  # drawn last: earlier draws unchanged
    )


def screening_fields(candidates: Candidates, i: int) -> dict[str, Any]:
    """The simulated (non-constant) screening-record fields of candidate `i`, as the engine's
    record holds them (dates excluded)."""
    return {
        "sex": Sex.FEMALE if candidates.female[i] else Sex.MALE,
        "age_years": float(candidates.age_years[i]),
        "weight_kg": float(candidates.weight_kg[i]),
        "height_cm": float(candidates.height_cm[i]),
        "ecog": int(candidates.ecog[i]),
        "krenning_score": int(candidates.krenning_score[i]),
        "fdg_pet_positive": bool(candidates.fdg_positive[i]),
        "sstr_negative_lesions": bool(candidates.sstr_negative_lesions[i]),
        "measured_gfr_ml_min_173": float(candidates.gfr_measured[i]),
        "creatinine_umol_l": float(candidates.creatinine_umol_l[i]),
        "hemoglobin_g_l": float(candidates.hemoglobin_g_l[i]),
        "platelets_10e9_l": float(candidates.platelets[i]),
        "leukocytes_10e9_l": float(candidates.value("leukocytes")[i]),
        "neutrophils_10e9_l": float(candidates.value("neutrophils")[i]),
        "albumin_g_l": float(candidates.albumin_g_l[i]),
    }


def screening_record(candidates: Candidates, i: int, screening_date: date) -> ScreeningRecord:
    """The protocol engine's screening record of candidate `i`, screened on `screening_date`."""
    days = int(candidates.progression_days[i])
    return ScreeningRecord(
        screening_date=screening_date,
        progression_imaging_date=screening_date - timedelta(days=days),
        **CONSTANT_FIELDS,
        **screening_fields(candidates, i),
    )
