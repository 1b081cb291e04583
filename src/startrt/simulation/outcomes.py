"""Outcome models of the in-silico trial (vectorised over patients). Parameters and their
sources are in files/default_parameters.toml; times are days from randomization.

PFS (progression or death) - proportional hazards with a Weibull reference hazard and a
multiplier that follows the cumulative tumour absorbed dose D(t) delivered so far:
    h(t) = h_ref(t) * exp(lp) * m(D(t)),  H_ref(t) = (t / lambda)^kappa,
    lambda = reference median / (ln 2)^(1/kappa),
    m(D) = ((D + D0) / (D_ref + D0))^(-gamma),
    D0 = q D_ref / (1 - q),  q = HR_untreated^(-1/gamma),
so m(D_ref) = 1 (the reference exposure: a median tumour's dose over the standard 4 x 7.5
GBq), m(0) = HR_untreated (NETTER-1's HR 0.18 for PRRT inverted) and doubling the dose
multiplies the hazard by ~2^(-gamma). exp(lp) = HR_FDG^fdg * HR_grade * HR_cap^(CAP-dTOC).
A patient progresses when the cumulative hazard reaches an Exp(1) draw; D changes only at
cycles, so H is piecewise Weibull and is inverted in closed form on each interval. Death
before progression: constant hazard; after progression: exponential survival. Loss to
follow-up: constant hazard (censoring). These are the true times; the trial's PFS is what its
tumour assessments and death records show (`simulation.endpoints`).

Tumour dose per cycle: Gy/GBq_1 x (1 - fall_grade)^(cycle - 1) x LN(cv) x GBq (Sjogreen
Gleisner 2022 for the fall). Kidney dose: Gy/GBq_1 x (1 + drift)^(cycle - 1) x LN(cv) x GBq
(LUMEN drift), measured with LN(measurement cv) error; the planner sees the measured dose.

Objective response (best overall response CR/PR): logistic in log cumulative tumour dose,
    logit p = logit p_ref + b ln(D_total / D_ref) + ln(OR_FDG) fdg,
with p_ref the partial-response rate of the dosimetry-guided phase II (Sundlov 2022); a
responder is CR with probability `complete_response_share`; a patient progressing before the
first assessment is PD.

Kidney: per-cycle BED from the true dose and the kidney effective half-life (Wessels 2008,
`dosimetry.bed`); GFR(t) = GFR_0 exp(-r0 t - r1 sum_j BED_j (t - t_j)) (t in years, t_j the
cycles), i.e. a relative loss per year growing with the cumulative BED; measured GFR adds
lognormal noise. Kidney toxicity is CTCAE 'chronic kidney disease' graded from the GFR.

Blood counts (per term): the value before a cycle is baseline x exp(-recovery_loss x
cumulative marrow Gy) x LN(lab cv); the cycle's nadir is that x exp(-nadir_drop x marrow Gy of
the cycle - capecitabine_drop x capecitabine level + nadir_sd z), graded by CTCAE v5.0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from startrt.protocol.course import bed_gy, exact
from startrt.protocol.definition import RenalLimit
from startrt.simulation.arrays import Bools, Floats, Ints
from startrt.simulation.parameters import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    GRADES,
    Parameters,
)


@dataclass(frozen=True)
class PfsModel:
    """The PFS hazard of the module docstring, with its derived constants."""

    scale_days: float
    shape: float
    reference_dose_gy: float
    offset_dose_gy: float
    exponent: float

    @classmethod
    def of(cls, parameters: Parameters) -> PfsModel:
        efficacy = parameters.efficacy
        shape = efficacy.weibull_shape.value
        median_days = efficacy.reference_median_pfs_months.value * DAYS_PER_MONTH
        exponent = efficacy.dose_response_exponent.value
        reference = efficacy.reference_tumour_dose_gy.value
        if exponent == 0:
            offset = math.inf
        else:
            q = efficacy.untreated_hazard_ratio.value ** (-1.0 / exponent)
            offset = q * reference / (1.0 - q)
        return cls(median_days / math.log(2.0) ** (1.0 / shape), shape, reference, offset, exponent)

    def cumulative(self, t_days: Floats) -> Floats:
        """Reference cumulative hazard H_ref(t)."""
        return np.power(np.maximum(t_days, 0.0) / self.scale_days, self.shape)

    def inverse(self, hazard: Floats) -> Floats:
        """The time at which H_ref reaches `hazard`."""
        return self.scale_days * np.power(hazard, 1.0 / self.shape)

    def dose_multiplier(self, dose_gy: Floats) -> Floats:
        """m(D): hazard relative to the reference tumour dose."""
        if math.isinf(self.offset_dose_gy):
            return np.ones_like(dose_gy)
        ratio = (dose_gy + self.offset_dose_gy) / (self.reference_dose_gy + self.offset_dose_gy)
        return np.power(ratio, -self.exponent)


def linear_predictor(
    parameters: Parameters, fdg: Bools, grade: Ints, capecitabine: Bools
) -> Floats:
    """exp(lp): the hazard ratio of FDG status, grade and the CAP-dTOC arm."""
    efficacy = parameters.efficacy
    by_grade = np.array([efficacy.grade_hazard_ratio.of(g) for g in GRADES])
    ratio: Floats = (
        np.where(fdg, efficacy.fdg_positive_hazard_ratio.value, 1.0)
        * by_grade[grade - 1]
        * np.where(capecitabine, efficacy.capecitabine_hazard_ratio.value, 1.0)
    )
    return ratio


def assessment_finding(progression_day: Floats, interval_days: int) -> Floats:
    """The number of the tumour assessment (every `interval_days` from randomization, the
    first on day `interval_days`) that finds a progression: the first on or after it."""
    found: Floats = np.maximum(np.ceil(progression_day / interval_days), 1.0)
    return found


@dataclass
class HazardClock:
    """Progression of many patients under a piecewise-constant multiplier: the reference
    hazard accumulated up to `time_days`, and what remains of each patient's Exp(1) draw."""

    model: PfsModel
    relative: Floats  # exp(lp)
    remaining: Floats  # Exp(1) draw minus the hazard accumulated so far
    time_days: Floats
    progression_days: Floats  # inf until found

    def advance(self, index: Ints, until_days: Floats, multiplier: Floats) -> Bools:
        """Accumulate the hazard of patients `index` up to `until_days` under `multiplier`;
        True where progression happened on the way (its time is then recorded)."""
        start = self.time_days[index]
        rate = self.relative[index] * multiplier
        h0 = self.model.cumulative(start)
        gained = rate * (self.model.cumulative(until_days) - h0)
        event = gained >= self.remaining[index]
        when = self.model.inverse(h0 + self.remaining[index] / rate)
        self.progression_days[index] = np.where(event, when, self.progression_days[index])
        self.remaining[index] = np.where(event, 0.0, self.remaining[index] - gained)
        self.time_days[index] = np.where(event, when, until_days)
        return event

    def finish(self, index: Ints, multiplier: Floats) -> None:
        """Progression times of patients `index` whose multiplier no longer changes."""
        still = np.isinf(self.progression_days[index])
        open_ = index[still]
        rate = self.relative[open_] * multiplier[still]
        h0 = self.model.cumulative(self.time_days[open_])
        self.progression_days[open_] = self.model.inverse(h0 + self.remaining[open_] / rate)


def response_probability(parameters: Parameters, dose_gy: Floats, fdg: Bools) -> Floats:
    """Probability of an objective response (CR or PR) at cumulative tumour dose `dose_gy`."""
    efficacy = parameters.efficacy
    p_ref = efficacy.response_reference_rate.value
    with np.errstate(divide="ignore"):
        log_dose = np.log(dose_gy / efficacy.reference_tumour_dose_gy.value)
    logit = (
        math.log(p_ref / (1.0 - p_ref))
        + efficacy.response_log_odds_per_log_dose.value * log_dose
        + math.log(efficacy.response_fdg_positive_odds_ratio.value) * fdg
    )
    probability: Floats = np.where(dose_gy > 0, 1.0 / (1.0 + np.exp(-logit)), 0.0)
    return probability


def bed_per_gy2(half_life_h: Floats, limit: RenalLimit) -> Floats:
    """q with BED = D + q D^2 for mono-exponential kidney kinetics: BED(1 Gy) - 1 by the
    course model's `bed_gy` (Wessels 2008), once per distinct half-life."""
    distinct, inverse = np.unique(half_life_h, return_inverse=True)
    q = [float(bed_gy(Fraction(1), exact(float(t)), limit)) - 1.0 for t in distinct]
    return np.array(q, dtype=np.float64)[inverse.reshape(-1)]


def gfr_at(
    parameters: Parameters,
    baseline: Floats,
    t_days: Floats,
    bed_sum_gy: Floats,
    bed_time_sum_gy_days: Floats,
) -> Floats:
    """True GFR at t: GFR_0 exp(-r0 t - r1 (t sum BED_j - sum BED_j t_j)), t in years; the
    sums run over the cycles given before t."""
    kidney = parameters.kidney
    years = t_days / DAYS_PER_YEAR
    exposure_gy_years = (t_days * bed_sum_gy - bed_time_sum_gy_days) / DAYS_PER_YEAR
    loss = kidney.gfr_loss_per_year.value * years
    loss += kidney.gfr_loss_per_year_per_gy_bed.value * exposure_gy_years
    result: Floats = baseline * np.exp(-loss)
    return result


def exponential_days(draw: Floats, rate_per_year: float) -> Floats:
    """Time (days) of an event with constant hazard `rate_per_year`, from an Exp(1) draw."""
    if rate_per_year <= 0:
        return np.full_like(draw, math.inf)
    result: Floats = draw / rate_per_year * DAYS_PER_YEAR
    return result


def survival_after_progression_days(parameters: Parameters, draw: Floats) -> Floats:
    median = parameters.efficacy.survival_after_progression_months.value * DAYS_PER_MONTH
    result: Floats = draw * median / math.log(2.0)
    return result
