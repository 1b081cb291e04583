"""Exponential time-activity models: values, derivatives, integrals and starting values.

Forms (MIRD Pamphlet No. 16, Siegel et al., J Nucl Med 1999;40:37S; as in PyTheranostics):
mono A0 exp(-l t); bi A_fast exp(-l_fast t) + A_slow exp(-l_slow t) (two clearance phases,
amplitudes >= 0); uptake A (exp(-l_c t) - exp(-l_u t)) with l_u > l_c. Integrals from 0 to
infinity: A0/l; A_fast/l_fast + A_slow/l_slow; A (1/l_c - 1/l_u).

The optimiser works on internal variables x with box bounds and the natural parameters are
p = M x (linear): a rate difference d >= 0 keeps l_fast >= l_slow and l_u >= l_c, and every
clearance rate is bounded below by the physical decay constant. The difference d is bounded
above by 5 ln 2 / t1 (t1 the first sample after injection): a phase that has passed more than
five half-lives before the first sample is not determined by the data, and without this bound
a fit may "explain" the first point by a huge, very fast phase that inflates the TIA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ModelName = Literal["mono", "bi", "uptake"]

# Multiples of the terminal rate tried as the faster rate when fitting bi / uptake (multi-start).
_FAST_RATE_MULTIPLES = (3.0, 30.0)
FAST_PHASE_HALF_LIVES = 5.0  # at most this many half-lives of a phase before the first sample


def _log_linear_fit(times_h: FloatArray, activity: FloatArray, weights: FloatArray) -> FloatArray:
    """(A0, rate) of the weighted least-squares line ln A = ln A0 - rate t (two points or more)."""
    design = np.column_stack([np.ones_like(times_h), -times_h])
    root = np.sqrt(weights)
    solution = np.linalg.lstsq(design * root[:, None], np.log(activity) * root, rcond=None)[0]
    return np.array([math.exp(solution[0]), solution[1]])


def _amplitude_for_rate(
    times_h: FloatArray, activity: FloatArray, weights: FloatArray, rate: float
) -> float:
    """A0 of ln A = ln A0 - rate t with the rate fixed (weighted mean of ln A + rate t)."""
    return math.exp(float(np.average(np.log(activity) + rate * times_h, weights=weights)))


def _terminal_line(
    times_h: FloatArray, activity: FloatArray, weights: FloatArray, first: int, min_rate: float
) -> tuple[float, float]:
    """(A, rate) of the log-linear line through points first.. (rate clamped to >= min_rate)."""
    tail = slice(first, None)
    amplitude, rate = _log_linear_fit(times_h[tail], activity[tail], weights[tail])
    if rate < min_rate:
        rate = min_rate
        amplitude = _amplitude_for_rate(times_h[tail], activity[tail], weights[tail], rate)
    return float(amplitude), float(rate)


def _peeled_rate(
    times_h: FloatArray, residual: FloatArray, weights: FloatArray, floor: float
) -> tuple[float, float] | None:
    """(A, rate) of the log-linear line through the positive early residuals, if >= 2 and the
    rate exceeds `floor`; else None (method of residuals, "peeling")."""
    positive = residual > 0
    if positive.sum() < 2:
        return None
    amplitude, rate = _log_linear_fit(times_h[positive], residual[positive], weights[positive])
    return (float(amplitude), float(rate)) if rate > floor else None


@dataclass(frozen=True)
class ExponentialModel:
    """One model form: its parameter names, the internal-to-natural map and its integral."""

    name: ModelName
    parameter_names: tuple[str, ...]
    internal_to_natural: tuple[tuple[float, ...], ...]  # M in p = M x
    lower_bounds: tuple[str, ...]  # per internal variable: "zero" or "decay"
    fast_difference: int | None  # index of the internal rate difference d, if any

    @property
    def n_parameters(self) -> int:
        return len(self.parameter_names)

    def matrix(self) -> FloatArray:
        return np.array(self.internal_to_natural, dtype=float)

    def internal(self, natural: FloatArray) -> FloatArray:
        return np.asarray(np.linalg.solve(self.matrix(), natural), dtype=np.float64)

    def lower(self, decay_constant_per_h: float) -> FloatArray:
        return np.array([decay_constant_per_h if b == "decay" else 0.0 for b in self.lower_bounds])

    def upper(self, first_sample_h: float) -> FloatArray:
        """Upper bounds: 5 ln 2 / t1 for the rate difference d, none for the others."""
        bounds = np.full(self.n_parameters, np.inf)
        if self.fast_difference is not None:
            bounds[self.fast_difference] = FAST_PHASE_HALF_LIVES * math.log(2.0) / first_sample_h
        return bounds

    def terms(self, p: FloatArray) -> tuple[tuple[float, float], ...]:
        """(amplitude, rate) of each exponential term of the natural parameters p."""
        if self.name == "mono":
            return ((p[0], p[1]),)
        if self.name == "bi":
            return ((p[0], p[1]), (p[2], p[3]))
        return ((p[0], p[1]), (-p[0], p[2]))

    def value(self, p: FloatArray, times_h: FloatArray) -> FloatArray:
        """Activity (MBq) at `times_h`."""
        total = np.zeros_like(times_h, dtype=float)
        for amplitude, rate in self.terms(p):
            total = total + amplitude * np.exp(-rate * times_h)
        return total

    def jacobian(self, p: FloatArray, times_h: FloatArray) -> FloatArray:
        """d activity / d p, shape (n_times, n_parameters)."""
        if self.name == "uptake":
            e_c, e_u = np.exp(-p[1] * times_h), np.exp(-p[2] * times_h)
            return np.column_stack([e_c - e_u, -p[0] * times_h * e_c, p[0] * times_h * e_u])
        columns: list[FloatArray] = []
        for amplitude, rate in self.terms(p):
            decay = np.exp(-rate * times_h)
            columns += [decay, -amplitude * times_h * decay]
        return np.column_stack(columns)

    def tia(self, p: FloatArray) -> float:
        """Integral from 0 to infinity, MBq*h: sum of amplitude / rate."""
        return float(sum(amplitude / rate for amplitude, rate in self.terms(p)))

    def tia_gradient(self, p: FloatArray) -> FloatArray:
        """d TIA / d p (for the delta method)."""
        if self.name == "uptake":
            return np.array([1 / p[1] - 1 / p[2], -p[0] / p[1] ** 2, p[0] / p[2] ** 2])
        gradient: list[float] = []
        for amplitude, rate in self.terms(p):
            gradient += [1 / rate, -amplitude / rate**2]
        return np.array(gradient)

    def terminal_rate_per_h(self, p: FloatArray) -> float:
        """Rate of the slowest (last to vanish) term."""
        return float(p[1] if self.name in ("mono", "uptake") else p[3])

    def starting_points(
        self, times_h: FloatArray, activity: FloatArray, weights: FloatArray, min_rate: float
    ) -> list[FloatArray]:
        """Natural-parameter starts: log-linear regression (mono) or peeling plus a few
        multiples of the terminal rate for the fast phase (bi, uptake)."""
        n = len(times_h)
        if self.name == "mono":
            return [np.array(_terminal_line(times_h, activity, weights, 0, min_rate))]
        if self.name == "uptake":
            first_tail = min(int(np.argmax(activity)), n - 2)
        else:
            first_tail = n - max(2, n // 2)
        amplitude, rate = _terminal_line(times_h, activity, weights, first_tail, min_rate)
        head = slice(0, first_tail)
        terminal = amplitude * np.exp(-rate * times_h[head])
        sign = 1.0 if self.name == "uptake" else -1.0  # uptake: line minus data; bi: data minus
        peeled = _peeled_rate(
            times_h[head], sign * (terminal - activity[head]), weights[head], rate
        )
        fast_rates = [] if peeled is None else [peeled[1]]
        fast_rates += [rate * multiple for multiple in _FAST_RATE_MULTIPLES]
        if self.name == "uptake":
            return [np.array([amplitude, rate, fast]) for fast in fast_rates]
        fast_amplitude = 0.1 * amplitude if peeled is None else peeled[0]
        return [np.array([fast_amplitude, fast, amplitude, rate]) for fast in fast_rates]


MODELS: dict[ModelName, ExponentialModel] = {
    "mono": ExponentialModel(
        "mono", ("a0_mbq", "lambda_per_h"), ((1, 0), (0, 1)), ("zero", "decay"), None
    ),
    # internal x = (a_fast, d, a_slow, l_slow); l_fast = l_slow + d
    "bi": ExponentialModel(
        "bi",
        ("a_fast_mbq", "lambda_fast_per_h", "a_slow_mbq", "lambda_slow_per_h"),
        ((1, 0, 0, 0), (0, 1, 0, 1), (0, 0, 1, 0), (0, 0, 0, 1)),
        ("zero", "zero", "zero", "decay"),
        1,
    ),
    # internal x = (a, l_c, d); l_u = l_c + d
    "uptake": ExponentialModel(
        "uptake",
        ("a_mbq", "lambda_clearance_per_h", "lambda_uptake_per_h"),
        ((1, 0, 0), (0, 1, 0), (0, 1, 1)),
        ("zero", "decay", "zero"),
        2,
    ),
}
