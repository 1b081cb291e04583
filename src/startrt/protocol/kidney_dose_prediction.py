"""Predictive model of a patient's kidney absorbed dose: the next cycle's Gy/GBq and the true
and measured cumulative dose after it, with their uncertainty.

The model and its population numbers are in `data/kidney_dose_prior.toml` (sources there):
on the log scale, the true Gy/GBq of cycle k is x_k = ln g + (k - 1) ln(1 + rise) + e_k with
ln g ~ N(ln median, s_pop^2) over patients and e_k ~ N(0, s_cyc^2) between cycles; the measured
y_k = x_k + a_k Z + u_k, where Z ~ N(0, 1) is shared by every cycle of the patient (systematic:
calibration, method) and u_k ~ N(0, b_k^2) is not (a_k^2 + b_k^2 = ln(1 + (sd_k / dose_k)^2),
split by the cycle's systematic share; EANM, Gear et al., EJNMMI 2018;45:2456).

Everything is jointly normal, so the posterior of the true log Gy/GBq of every cycle so far
and of the next one, and of the next measured one, given the measured history, is the normal
conditional distribution (the conjugate normal update, closed form; Gelman et al., Bayesian
Data Analysis, 3rd ed., 2013, section 3.5 / A.1): no sampling.

Approximated: the true cumulative dose is a sum of correlated lognormals (the past cycles' true
doses and the next one); its distribution is taken as the lognormal with the sum's exact mean
and variance (Fenton-Wilkinson moment matching; Fenton, IRE Trans Commun Syst 1960;8:57).
The tests check it against Monte Carlo. The measured cumulative after the next cycle is the
known sum so far plus one lognormal: exact. The rise per cycle is the population's (no
per-patient slope).

Every function works on arrays of many patients (shape (patients, cycles)); the planner passes
one patient, the in-silico trial many, through the same code.
"""

from __future__ import annotations

import math
import statistics
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from startrt.protocol.course import Course, Side

Floats = NDArray[np.float64]
Activity = NDArray[np.floating[Any]] | float  # GBq, one per patient or one for all
PRIOR_FILE = "kidney_dose_prior.toml"
INTERVAL = 0.90  # the two-sided interval the plans state


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Sourced(_Frozen):
    source: str = Field(min_length=1)


class _Value(_Sourced):
    value: float = Field(ge=0, le=1, allow_inf_nan=False)


class _LogNormal(_Sourced):
    median: float = Field(gt=0, le=5)
    cv: float = Field(gt=0, le=3)


class KidneyDosePrior(_Frozen):
    """The population numbers of the model (module docstring), each with its source."""

    schema_version: Literal["startrt-kidney-dose-prior/1"] = Field(alias="schema")
    name: str
    gy_per_gbq: _LogNormal
    rise_per_cycle: _Value
    cycle_cv: _Value
    measurement_cv: _Value
    systematic_share: _Value

    @property
    def population_sigma(self) -> float:
        """SD of ln g over patients: sqrt(ln(1 + cv^2)) of the lognormal."""
        return log_sd(self.gy_per_gbq.cv)

    @property
    def cycle_sigma(self) -> float:
        return log_sd(self.cycle_cv.value)

    def summary(self) -> dict[str, float | str]:
        """The model's name and numbers, as a decision record names them."""
        return {
            "model": self.name,
            "median_gy_per_gbq": self.gy_per_gbq.median,
            "population_cv": self.gy_per_gbq.cv,
            "rise_per_cycle": self.rise_per_cycle.value,
            "cycle_cv": self.cycle_cv.value,
            "default_measurement_cv": self.measurement_cv.value,
            "default_systematic_share": self.systematic_share.value,
        }


def log_sd(cv: float) -> float:
    """SD of the log of a lognormal with coefficient of variation `cv`: sqrt(ln(1 + cv^2))."""
    return math.sqrt(math.log1p(cv**2))


_ERFC = np.frompyfunc(math.erfc, 1, 1)


def normal_sf(z: Floats) -> Floats:
    """P(Z > z) of the standard normal, 0.5 erfc(z / sqrt 2), accurate in both tails (math's
    erfc elementwise: SciPy is not imported, so `plan-cycle` starts fast)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(0.5 * _ERFC(np.asarray(z) / math.sqrt(2)), dtype=np.float64)


@cache
def kidney_dose_prior() -> KidneyDosePrior:
    """The shipped prior (`data/kidney_dose_prior.toml`), validated, read once."""
    text = resources.files("startrt.protocol").joinpath("data", PRIOR_FILE).read_text("utf-8")
    return KidneyDosePrior.model_validate(tomllib.loads(text))


@dataclass(frozen=True)
class History:
    """Measured cycles of P patients, n each: (P, n) arrays. `relative_sd`: each dose's
    standard uncertainty / dose (NaN: the prior's default measurement CV); `systematic_share`:
    the share of its variance shared between cycles (NaN: the prior's default)."""

    activity_gbq: Floats
    dose_gy: Floats
    relative_sd: Floats
    systematic_share: Floats

    @classmethod
    def without_uncertainties(cls, activity_gbq: Floats, dose_gy: Floats) -> History:
        nan = np.full(np.shape(dose_gy), np.nan)
        return cls(np.asarray(activity_gbq), np.asarray(dose_gy), nan, nan)


@dataclass(frozen=True)
class Prediction:
    """Per patient (arrays of P): the moments the risk figures read. True cumulative after a
    next cycle of a GBq: S(a) = C + a X with C the true dose so far and X the next true Gy/GBq;
    E[C], E[X], E[C^2], E[C X], E[X^2]. Measured: the sum so far and the next measured log
    Gy/GBq's normal mean and SD."""

    mean_c: Floats
    mean_x: Floats
    second_cc: Floats
    second_cx: Floats
    second_xx: Floats
    measured_gy: Floats
    measured_log_mean: Floats
    measured_log_sd: Floats

    def lognormal(self, activity_gbq: Activity) -> tuple[Floats, Floats]:
        """(mu, sigma) of the lognormal with the mean and variance of S(a) (Fenton-Wilkinson)."""
        a = np.asarray(activity_gbq, dtype=np.float64)
        mean = self.mean_c + a * self.mean_x
        second = self.second_cc + 2 * a * self.second_cx + a * a * self.second_xx
        dosed = mean > 0  # no cycle so far and none next: no dose, mu = -inf
        safe_mean, safe_second = np.where(dosed, mean, 1.0), np.where(dosed, second, 1.0)
        sigma2 = np.where(dosed, np.maximum(np.log(safe_second / safe_mean**2), 0.0), 0.0)
        return np.where(dosed, np.log(safe_mean) - sigma2 / 2, -np.inf), np.sqrt(sigma2)

    def probability_over(self, limit_gy: float, activity_gbq: Activity) -> Floats:
        """P(true cumulative dose > limit) after a next cycle of `activity_gbq`."""
        mu, sigma = self.lognormal(activity_gbq)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (math.log(limit_gy) - mu) / sigma
        return np.where(np.isneginf(mu), 0.0, normal_sf(z))

    def interval_gy(self, activity_gbq: Activity, level: float = INTERVAL) -> tuple[Floats, Floats]:
        """The central `level` interval of the true cumulative dose (Gy)."""
        mu, sigma = self.lognormal(activity_gbq)
        z = statistics.NormalDist().inv_cdf(0.5 + level / 2)
        return np.exp(mu - z * sigma), np.exp(mu + z * sigma)

    def probability_measured_over(self, limit_gy: float, activity_gbq: Activity) -> Floats:
        """P(measured cumulative dose > limit) after a next cycle of `activity_gbq` (exact:
        the measured sum so far is known; the next measured dose is lognormal)."""
        a = np.asarray(activity_gbq, dtype=np.float64)
        room = limit_gy - self.measured_gy
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (np.log(room / a) - self.measured_log_mean) / self.measured_log_sd
        crossed = np.where(room < 0, 1.0, 0.0)
        return np.where((room > 0) & (a > 0), normal_sf(z), crossed)

    def largest_safe_steps(
        self, limit_gy: float, max_probability: float, step_gbq: float, top_steps: int
    ) -> NDArray[np.int64]:
        """Per patient the largest k in 0..top_steps with P(true cumulative > limit after a
        next cycle of k x step) <= max_probability, by bisection on k (P rises with the
        activity); 0 when even k = 0 is over."""
        n = len(self.mean_c)
        low, high = np.zeros(n, np.int64), np.full(n, top_steps, np.int64)
        while (open_ := low < high).any():
            middle = (low + high + 1) // 2
            fits = self.probability_over(limit_gy, middle * step_gbq) <= max_probability
            low = np.where(open_ & fits, middle, low)
            high = np.where(open_ & ~fits, middle - 1, high)
        return low


def predict(history: History, prior: KidneyDosePrior | None = None) -> Prediction:
    """The posterior prediction after the measured `history` (module docstring)."""
    prior = prior or kidney_dose_prior()
    activity, dose = history.activity_gbq, history.dose_gy
    patients, n = dose.shape
    rel = np.where(np.isnan(history.relative_sd), prior.measurement_cv.value, history.relative_sd)
    share = np.where(
        np.isnan(history.systematic_share), prior.systematic_share.value, history.systematic_share
    )
    # the next cycle's measurement error: the latest cycle's (its own SD or the default); the
    # default before any cycle
    rel = np.concatenate([rel, rel[:, -1:] if n else np.full((patients, 1), np.nan)], axis=1)
    rel[:, -1] = np.where(np.isnan(rel[:, -1]), prior.measurement_cv.value, rel[:, -1])
    share = np.concatenate(
        [share, share[:, -1:] if n else np.full((patients, 1), prior.systematic_share.value)],
        axis=1,
    )
    variance = np.log1p(rel**2)  # (P, n + 1) measurement variances, log scale
    systematic = np.sqrt(share * variance)  # a_k
    independent = (1 - share) * variance  # b_k^2
    pop, cyc = prior.population_sigma**2, prior.cycle_sigma**2
    drift = np.arange(n + 1) * math.log1p(prior.rise_per_cycle.value)
    mean_x = math.log(prior.gy_per_gbq.median) + drift  # (n + 1,)
    eye = np.eye(n + 1)
    # unknowns u = (x_1 .. x_{n+1}, y_{n+1}); observations y_1 .. y_n
    cov_uu = np.zeros((patients, n + 2, n + 2))
    cov_uu[:, : n + 1, : n + 1] = pop + cyc * eye
    cov_uu[:, n + 1, : n + 1] = cov_uu[:, : n + 1, n + 1] = pop + cyc * eye[n]
    cov_uu[:, n + 1, n + 1] = pop + cyc + variance[:, n]
    mean_u = np.broadcast_to(np.append(mean_x, mean_x[n]), (patients, n + 2)).copy()
    if n:
        a = systematic[:, :n]
        cov_yy = (
            pop
            + cyc * eye[:n, :n]
            + a[:, :, None] * a[:, None, :]
            + independent[:, :n, None] * eye[:n, :n]
        )
        cov_uy = np.zeros((patients, n + 2, n))
        cov_uy[:, : n + 1, :] = pop + cyc * eye[:, :n]
        cov_uy[:, n + 1, :] = pop + systematic[:, n, None] * a
        residual = np.log(dose / activity) - mean_x[:n]
        gain = np.linalg.solve(cov_yy, np.swapaxes(cov_uy, 1, 2))  # Σyy⁻¹ Σyu
        mean_u += np.einsum("pki,pk->pi", gain, residual)
        cov_uu -= np.einsum("pik,pkj->pij", cov_uy, gain)
    m, v = mean_u[:, : n + 1], cov_uu[:, : n + 1, : n + 1]
    diagonal = np.diagonal(v, axis1=1, axis2=2)
    first = np.exp(m + diagonal / 2)  # E[e^x_i]
    second = first[:, :, None] * first[:, None, :] * np.exp(v)  # E[e^x_i e^x_j]
    weights = activity  # the past cycles' activities
    return Prediction(
        mean_c=np.einsum("pk,pk->p", weights, first[:, :n]),
        mean_x=first[:, n],
        second_cc=np.einsum("pk,pkl,pl->p", weights, second[:, :n, :n], weights),
        second_cx=np.einsum("pk,pk->p", weights, second[:, :n, n]),
        second_xx=second[:, n, n],
        measured_gy=dose.sum(axis=1),
        measured_log_mean=mean_u[:, n + 1],
        measured_log_sd=np.sqrt(cov_uu[:, n + 1, n + 1]),
    )


def course_history(course: Course, side: Side) -> History:
    """One patient's measured history of one kidney side (the mean of both, left or right),
    with the uncertainties the cycles carry; every cycle must have that side's dose."""
    doses = [cycle.exact_dose_gy(side) for cycle in course]
    if None in doses:
        raise ValueError(f"a cycle has no {side} kidney dose")
    dose = np.array([[float(d) for d in doses if d is not None]]).reshape(1, len(course))
    sds = [cycle.dose_sd_gy(side) for cycle in course]
    shares = [cycle.kidney_dose_sd_systematic_share for cycle in course]
    return History(
        activity_gbq=np.array([[c.activity_gbq for c in course]]).reshape(1, len(course)),
        dose_gy=dose,
        relative_sd=np.array([[np.nan if s is None else s for s in sds]]).reshape(dose.shape)
        / dose,
        systematic_share=np.array([[np.nan if s is None else s for s in shares]]).reshape(
            dose.shape
        ),
    )
