"""Time-activity curves: weighted least-squares exponential fits, model choice by AICc, and
time-integrated activity (TIA) with its delta-method uncertainty; trapezoid integration.

Fits minimise sum(((A_model - A_i) / sigma_i)^2) with scipy's bounded trust-region solver;
sigma_i are the given SDs, or, when none are given, proportional to the measured activity
(relative weighting). Every clearance rate is >= the physical decay constant, the uptake rate
>= the clearance rate, and a fast phase may not pass more than five half-lives before the
first sample (see `tac_models`). Model choice: Glatting et al., Med Phys 2007;34:4285 (AIC for
fit-function choice in dosimetry); AICc: Burnham & Anderson, Model Selection and Multimodel
Inference, 2nd ed., Springer 2002. Forms: models in `startrt.dosimetry.tac_models`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

import numpy as np
from scipy.optimize import least_squares

from startrt.dosimetry.tac_models import MODELS, ExponentialModel, FloatArray, ModelName
from startrt.physics.nuclides import LU177
from startrt.validation import InvalidInputError, finite_number, require_positive

LU177_DECAY_CONSTANT_PER_H = LU177.decay_constant_per_h
ALL_MODELS: tuple[ModelName, ...] = ("mono", "uptake", "bi")  # simplest first (wins ties)
_WRSS_FLOOR_PER_POINT = 1e-18


def _numbers(field_name: str, values: Sequence[float], unit: str) -> tuple[float, ...]:
    return tuple(finite_number(f"{field_name}[{i}]", v, unit) for i, v in enumerate(values))


@dataclass(frozen=True)
class TimeActivityCurve:
    """Activity (MBq) of one VOI at times (h after injection), optionally with SDs (MBq)."""

    voi: str
    times_h: tuple[float, ...]
    activity_mbq: tuple[float, ...]
    sigma_mbq: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        times = _numbers("times_h", self.times_h, "h")
        activity = _numbers("activity_mbq", self.activity_mbq, "MBq")
        if not times:
            raise InvalidInputError("times_h", self.times_h, "needs at least one time point")
        if len(activity) != len(times):
            raise InvalidInputError("activity_mbq", self.activity_mbq, "one value per time")
        if times[0] < 0 or any(b <= a for a, b in pairwise(times)):
            raise InvalidInputError("times_h", self.times_h, "must be >= 0 h, strictly increasing")
        if min(activity) < 0:
            raise InvalidInputError("activity_mbq", self.activity_mbq, "must be >= 0 MBq")
        if self.sigma_mbq is not None:
            sigma = _numbers("sigma_mbq", self.sigma_mbq, "MBq")
            if len(sigma) != len(times) or min(sigma) <= 0:
                raise InvalidInputError("sigma_mbq", self.sigma_mbq, "one value > 0 per time")
            object.__setattr__(self, "sigma_mbq", sigma)
        object.__setattr__(self, "times_h", times)
        object.__setattr__(self, "activity_mbq", activity)

    @property
    def n_points(self) -> int:
        return len(self.times_h)


@dataclass(frozen=True)
class FitResult:
    """A fitted (or integrated) curve: parameters (names carry units), covariance (order of
    `parameters`), TIA (MBq*h) and its SD, AIC / AICc (None where undefined), and the
    effective half-life (mono) or terminal half-life (bi, uptake); `predict` evaluates it."""

    model: Literal["mono", "bi", "uptake", "trapezoid"]
    parameters: Mapping[str, float]
    covariance: tuple[tuple[float, ...], ...] | None
    tia_mbq_h: float
    tia_sd_mbq_h: float | None
    aic: float | None
    aicc: float | None
    effective_half_life_h: float | None
    _curve: Callable[[FloatArray], FloatArray] = field(repr=False, compare=False)

    def predict(self, times_h: Sequence[float] | FloatArray) -> FloatArray:
        """Activity (MBq) of the curve at `times_h` (h after injection)."""
        times = np.asarray(times_h, dtype=float)
        if not np.all(np.isfinite(times)) or np.any(times < 0):
            raise InvalidInputError("times_h", times_h, "must be finite and >= 0 h")
        return self._curve(times)


def _decay_constant(decay_constant_per_h: float) -> float:
    return require_positive("decay_constant_per_h", decay_constant_per_h, "1/h")


def _weights_sigma(tac: TimeActivityCurve) -> tuple[FloatArray, bool]:
    """(sigma per point, absolute?): the given SDs, or the measured activity (relative)."""
    if tac.sigma_mbq is not None:
        return np.array(tac.sigma_mbq, dtype=np.float64), True
    return np.array(tac.activity_mbq, dtype=np.float64), False


def _information_criteria(wrss: float, n: int, k: int) -> tuple[float | None, float | None]:
    """AIC = n ln(WRSS/n) + 2k (None unless n > k); AICc adds 2k(k+1)/(n-k-1) if n-k-1 > 0.
    WRSS below rounding level (1e-9 per point in units of sigma) counts as that level, so fits
    to noiseless data differ only by their penalties."""
    if n <= k:
        return None, None
    aic = n * math.log(max(wrss, n * _WRSS_FLOOR_PER_POINT) / n) + 2 * k
    aicc = aic + 2 * k * (k + 1) / (n - k - 1) if n - k - 1 > 0 else None
    return aic, aicc


def _least_squares(
    model: ExponentialModel,
    times: FloatArray,
    activity: FloatArray,
    sigma: FloatArray,
    decay_constant_per_h: float,
) -> tuple[FloatArray, float]:
    """(natural parameters, WRSS) of the best bounded fit over the model's starting points."""
    matrix, lower = model.matrix(), model.lower(decay_constant_per_h)
    upper = model.upper(float(times[times > 0][0]))

    def residuals(x: FloatArray) -> FloatArray:
        return (model.value(matrix @ x, times) - activity) / sigma

    def jacobian(x: FloatArray) -> FloatArray:
        return (model.jacobian(matrix @ x, times) / sigma[:, None]) @ matrix

    log_weights = (activity / sigma) ** 2
    best = None
    for start in model.starting_points(times, activity, log_weights, decay_constant_per_h):
        x0 = np.clip(model.internal(start), lower, upper)
        # degenerate directions (e.g. a vanishing second phase) make scipy divide by zero
        # inside its trust-region step; such steps are rejected, so the warnings are muted
        with np.errstate(divide="ignore", invalid="ignore"):
            solution = least_squares(
                residuals, x0, jac=jacobian, bounds=(lower, upper), method="trf",
                x_scale="jac", ftol=1e-13, xtol=1e-13, gtol=1e-13, max_nfev=2000,
            )  # fmt: skip
        if np.isfinite(solution.cost) and (best is None or solution.cost < best.cost):
            best = solution
    if best is None:
        raise InvalidInputError("activity_mbq", activity.tolist(), f"the {model.name} fit failed")
    return matrix @ best.x, float(np.sum(best.fun**2))


def _fit(tac: TimeActivityCurve, model: ExponentialModel, decay_constant_per_h: float) -> FitResult:
    """Weighted least squares of `model`; covariance from the Jacobian at the solution, scaled
    by the residual variance WRSS/(n-k) under relative weighting (None when n = k) or unscaled
    with given SDs; TIA SD by the delta method (gradient of TIA and the covariance)."""
    lam = _decay_constant(decay_constant_per_h)
    n, k = tac.n_points, model.n_parameters
    if n < k:
        raise InvalidInputError(
            "times_h", tac.times_h, f"a {model.name} fit needs at least {k} time points"
        )
    times = np.array(tac.times_h, dtype=np.float64)
    activity = np.array(tac.activity_mbq, dtype=np.float64)
    if np.any(activity <= 0):
        raise InvalidInputError("activity_mbq", tac.activity_mbq, "must be > 0 MBq for a fit")
    sigma, absolute = _weights_sigma(tac)
    p, wrss = _least_squares(model, times, activity, sigma, lam)
    covariance = _covariance(model.jacobian(p, times) / sigma[:, None], wrss, n, k, absolute)
    tia_sd = None
    if covariance is not None:
        gradient = model.tia_gradient(p)
        tia_sd = math.sqrt(max(float(gradient @ covariance @ gradient), 0.0))
    aic, aicc = _information_criteria(wrss, n, k)
    return FitResult(
        model=model.name,
        parameters=dict(zip(model.parameter_names, (float(v) for v in p), strict=True)),
        covariance=None if covariance is None else tuple(map(tuple, covariance.tolist())),
        tia_mbq_h=model.tia(p),
        tia_sd_mbq_h=tia_sd,
        aic=aic,
        aicc=aicc,
        effective_half_life_h=math.log(2.0) / model.terminal_rate_per_h(p),
        _curve=lambda t: model.value(p, t),
    )


def _covariance(
    weighted_jacobian: FloatArray, wrss: float, n: int, k: int, absolute: bool
) -> FloatArray | None:
    """(J^T J)^+ times the residual variance WRSS/(n-k) (relative weights) or 1 (given SDs)."""
    if not absolute and n <= k:
        return None
    scale = 1.0 if absolute else wrss / (n - k)
    information = weighted_jacobian.T @ weighted_jacobian
    covariance = np.linalg.pinv(information, rcond=1e-12, hermitian=True) * scale
    return np.asarray(covariance, dtype=np.float64)


def fit_mono(
    tac: TimeActivityCurve, *, decay_constant_per_h: float = LU177_DECAY_CONSTANT_PER_H
) -> FitResult:
    """Mono-exponential fit A0 exp(-l t), l >= physical decay constant; TIA = A0/l (MBq*h).
    With two points the curve goes through both (unless that needs l < physical)."""
    return _fit(tac, MODELS["mono"], decay_constant_per_h)


def fit_bi(
    tac: TimeActivityCurve, *, decay_constant_per_h: float = LU177_DECAY_CONSTANT_PER_H
) -> FitResult:
    """Bi-exponential fit A_f exp(-l_f t) + A_s exp(-l_s t), amplitudes >= 0,
    l_f >= l_s >= physical decay constant; TIA = A_f/l_f + A_s/l_s (MBq*h)."""
    return _fit(tac, MODELS["bi"], decay_constant_per_h)


def fit_uptake(
    tac: TimeActivityCurve, *, decay_constant_per_h: float = LU177_DECAY_CONSTANT_PER_H
) -> FitResult:
    """Uptake-constrained fit A (exp(-l_c t) - exp(-l_u t)), l_u >= l_c >= physical decay
    constant (A(0) = 0); TIA = A (1/l_c - 1/l_u) (MBq*h)."""
    return _fit(tac, MODELS["uptake"], decay_constant_per_h)


_FITTERS: dict[ModelName, Callable[..., FitResult]] = {
    "mono": fit_mono,
    "bi": fit_bi,
    "uptake": fit_uptake,
}


def fit_best(
    tac: TimeActivityCurve,
    models: Sequence[ModelName] = ALL_MODELS,
    decay_constant_per_h: float = LU177_DECAY_CONSTANT_PER_H,
) -> FitResult:
    """Fit each requested model with more points than parameters (n=2: mono through both
    points; n=3: mono; n=4: + uptake; n>=5: + bi) and return the lowest AICc, or the lowest
    AIC when AICc is undefined (n-k-1 <= 0) for a candidate; ties go to the simpler model.
    One point: refused (use `startrt.dosimetry.single_time_point`). Sources: module docstring."""
    if not models or any(name not in MODELS for name in models):
        raise InvalidInputError("models", models, f"must be a non-empty subset of {ALL_MODELS}")
    n = tac.n_points
    if n == 1:
        raise InvalidInputError(
            "times_h", tac.times_h, "one time point: use a single-time-point method"
        )
    candidates = [
        name
        for name in ALL_MODELS
        if name in models and (MODELS[name].n_parameters < n or (name == "mono" and n == 2))
    ]
    if not candidates:
        raise InvalidInputError(
            "models", models, f"no requested model has fewer parameters than the {n} points"
        )
    fits = [_FITTERS[name](tac, decay_constant_per_h=decay_constant_per_h) for name in candidates]
    if len(fits) == 1:
        return fits[0]
    use_aicc = all(fit.aicc is not None for fit in fits)

    def criterion(fit: FitResult) -> float:
        value = fit.aicc if use_aicc else fit.aic
        assert value is not None  # n > k for every candidate, so AIC is defined
        return value

    return min(fits, key=criterion)  # min keeps the first (simplest) of equal values


def integrate_trapezoid(
    tac: TimeActivityCurve,
    *,
    tail_rate_per_h: float | None = None,
    decay_constant_per_h: float = LU177_DECAY_CONSTANT_PER_H,
) -> FitResult:
    """TIA (MBq*h) by trapezoids from (0, 0) through the samples, plus the tail A_n / rate
    after the last sample: rate = the physical decay constant, or `tail_rate_per_h` (e.g. the
    terminal rate of a fit; must be >= physical). No uncertainty, AIC or half-life.
    Source: MIRD Pamphlet No. 16 (Siegel et al., J Nucl Med 1999;40:37S)."""
    lam = _decay_constant(decay_constant_per_h)
    rate = (
        lam if tail_rate_per_h is None else finite_number("tail_rate_per_h", tail_rate_per_h, "1/h")
    )
    if rate < lam:
        raise InvalidInputError(
            "tail_rate_per_h", tail_rate_per_h, f"must be >= the physical decay constant {lam:g} /h"
        )
    start = [] if tac.times_h[0] == 0 else [0.0]  # a sample at t = 0 replaces (0, 0)
    times = np.array(start + list(tac.times_h))
    activity = np.array(start + list(tac.activity_mbq))
    area = float(np.sum(np.diff(times) * (activity[1:] + activity[:-1]) / 2.0))
    last_time, last_activity = float(times[-1]), float(activity[-1])

    def curve(t: FloatArray) -> FloatArray:
        inside = np.interp(t, times, activity)
        tail = last_activity * np.exp(-rate * np.maximum(t - last_time, 0.0))
        result: FloatArray = np.where(t <= last_time, inside, tail)
        return result

    return FitResult(
        model="trapezoid",
        parameters={"tail_rate_per_h": rate},
        covariance=None,
        tia_mbq_h=area + last_activity / rate,
        tia_sd_mbq_h=None,
        aic=None,
        aicc=None,
        effective_half_life_h=None,
        _curve=curve,
    )
