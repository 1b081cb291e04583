"""Sample size for a two-group survival comparison and group-sequential efficacy boundaries.

Events for the log-rank test (Schoenfeld; Freedman), patients needed to observe them with
uniform accrual and exponential survival, and Lan-DeMets O'Brien-Fleming-type boundaries.
`allocation` is the fraction of patients randomized to the experimental group (0.5 = 1:1);
`hazard_ratio` is experimental vs control. Event and patient numbers are rounded up; a value
within 1e-9 of an integer counts as that integer (floating-point noise, never a real excess).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, stats

from startrt.validation import InvalidInputError

_ROUNDING_SLACK = 1e-9
_MAX_Z = 30.0
_TINY = 1e-300
_GRID_POINTS_PER_SD = 12
_MIN_GRID_INTERVALS = 400


@dataclass(frozen=True)
class Look:
    """One analysis of a group-sequential design: information fraction, alpha spent up to and
    including it, the efficacy boundary on the Z scale and the nominal p value it amounts to
    (two-sided if the design is)."""

    information_fraction: float
    cumulative_alpha: float
    z_boundary: float
    nominal_p: float


def schoenfeld_events(
    hazard_ratio: float,
    alpha: float = 0.05,
    power: float = 0.8,
    allocation: float = 0.5,
    two_sided: bool = True,
) -> int:
    """Events for the log-rank test: d = (z_alpha + z_beta)^2 / (p (1 - p) log(HR)^2), rounded
    up (Schoenfeld, Biometrika 1981;68:316-319 and Biometrics 1983;39:499-503)."""
    theta, p, z_sum = _log_rank_inputs(hazard_ratio, alpha, power, allocation, two_sided)
    return _ceil(z_sum**2 / (p * (1.0 - p) * math.log(theta) ** 2))


def freedman_events(
    hazard_ratio: float,
    alpha: float = 0.05,
    power: float = 0.8,
    allocation: float = 0.5,
    two_sided: bool = True,
) -> int:
    """Events for the log-rank test after Freedman (Stat Med 1982;1:121-129):
    d = (z_alpha + z_beta)^2 (1 + k HR)^2 / (k (1 - HR)^2), k = p / (1 - p) the allocation
    ratio experimental:control; for 1:1, (1 + HR)^2 / (1 - HR)^2 (z_alpha + z_beta)^2."""
    theta, p, z_sum = _log_rank_inputs(hazard_ratio, alpha, power, allocation, two_sided)
    ratio = p / (1.0 - p)
    return _ceil(z_sum**2 * (1.0 + ratio * theta) ** 2 / (ratio * (1.0 - theta) ** 2))


def event_probability(
    hazard_ratio: float,
    median_control_months: float,
    accrual_months: float,
    follow_up_months: float,
    allocation: float = 0.5,
) -> float:
    """Probability that a patient has had the event at the final analysis, with uniform accrual
    over `accrual_months`, analysis `follow_up_months` after the last patient, and exponential
    survival (control median m, hazard log 2 / m; experimental hazard HR times that):
    P = 1 - (exp(-lambda f) - exp(-lambda (a + f))) / (lambda a) per group, averaged with the
    allocation (the exact integral of Schoenfeld 1983's Simpson-rule approximation; Collett,
    Modelling Survival Data in Medical Research, 3rd ed. 2015, 10.2)."""
    theta = _hazard_ratio(hazard_ratio)
    p = _fraction("allocation", allocation)
    median = _positive("median_control_months", median_control_months)
    accrual = _positive("accrual_months", accrual_months)
    follow_up = _number("follow_up_months", follow_up_months)
    if follow_up < 0:
        raise InvalidInputError("follow_up_months", follow_up_months, "must be >= 0 months")
    control_hazard = math.log(2.0) / median

    def probability(hazard: float) -> float:
        unseen = math.exp(-hazard * follow_up) * -math.expm1(-hazard * accrual)
        return 1.0 - unseen / (hazard * accrual)

    return (1.0 - p) * probability(control_hazard) + p * probability(theta * control_hazard)


def patients_for_events(
    events: int,
    hazard_ratio: float,
    median_control_months: float,
    accrual_months: float,
    follow_up_months: float,
    allocation: float = 0.5,
) -> int:
    """Patients to randomize so that `events` are expected at the final analysis:
    events / `event_probability(...)`, rounded up."""
    if isinstance(events, bool) or not isinstance(events, int) or events < 1:
        raise InvalidInputError("events", events, "must be a whole number >= 1")
    probability = event_probability(
        hazard_ratio, median_control_months, accrual_months, follow_up_months, allocation
    )
    return _ceil(events / probability)


def obrien_fleming_spending(information_fraction: float, alpha: float, two_sided: bool) -> float:
    """Cumulative alpha of the Lan-DeMets O'Brien-Fleming-type spending function (Lan &
    DeMets, Biometrika 1983;70:659-663): per side 2 - 2 Phi(z_{a/2} / sqrt(t)) with a the
    one-sided level (alpha/2 of a two-sided design), as in gsDesign's sfLDOF, ld98 (Reboussin
    et al., Control Clin Trials 2000;21:190-207), SAS SEQDESIGN and East. Two-sided: twice that.
    """
    t = _fraction("information_fraction", information_fraction, closed_right=True)
    sides = _sides(two_sided)
    per_side = _alpha(alpha) / sides
    return float(sides * 2.0 * stats.norm.sf(stats.norm.isf(per_side / 2.0) / math.sqrt(t)))


def lan_demets_obrien_fleming(
    information_fractions: Any, alpha: float = 0.05, two_sided: bool = True
) -> list[Look]:
    """Efficacy boundaries spending alpha with `obrien_fleming_spending` at the given looks.

    Boundaries come from the recursive numerical integration of the joint distribution of the
    sequential Z statistics (Armitage, McPherson & Rowe, JRSS A 1969;132:235-244; Jennison &
    Turnbull, Group Sequential Methods, 2000, ch. 19): the density of the score statistic
    S_k = Z_k sqrt(t_k) on the continuation region is carried from look to look on a Simpson
    grid, and each boundary solves P(first crossing at look k) = alpha(t_k) - alpha(t_k-1).
    Two-sided designs are symmetric (|Z_k| >= boundary), without futility boundaries.
    """
    fractions = _information_fractions(information_fractions)
    sides = _sides(two_sided)
    spent = [obrien_fleming_spending(t, alpha, two_sided) for t in fractions]
    increments = np.diff(np.r_[0.0, spent])
    boundaries = _boundaries(fractions, increments, two_sided)
    return [
        Look(
            information_fraction=float(t),
            cumulative_alpha=spent_k,
            z_boundary=z,
            nominal_p=float(sides * stats.norm.sf(z)),
        )
        for t, spent_k, z in zip(fractions, spent, boundaries, strict=True)
    ]


def group_sequential_inflation(
    information_fractions: Any, alpha: float = 0.05, power: float = 0.8, two_sided: bool = True
) -> float:
    """Ratio of the maximum information (events) of the group-sequential design to that of the
    fixed design with the same alpha and power (Jennison & Turnbull 2000, 2.4 and 7.2): the
    squared ratio of the drifts giving `power` (probability of crossing the upper boundary at
    some look) with and without the Lan-DeMets O'Brien-Fleming boundaries."""
    fractions = _information_fractions(information_fractions)
    if fractions[-1] != 1.0:
        raise InvalidInputError("information_fractions", fractions[-1], "must end at 1.0")
    looks = lan_demets_obrien_fleming(fractions, alpha, two_sided)
    boundaries = np.array([look.z_boundary for look in looks])
    fixed_drift = _z_alpha(alpha, two_sided) + _z_power(power)

    def shortfall(drift: float) -> float:
        return _upper_crossing(fractions, boundaries, two_sided, drift) - power

    drift = optimize.brentq(shortfall, fixed_drift, 2.0 * fixed_drift, xtol=1e-12)
    return float((drift / fixed_drift) ** 2)


def required_events_group_sequential(
    hazard_ratio: float,
    information_fractions: Any,
    alpha: float = 0.05,
    power: float = 0.8,
    allocation: float = 0.5,
    two_sided: bool = True,
) -> int:
    """Events at the final analysis of the group-sequential design: Schoenfeld's (unrounded)
    events times `group_sequential_inflation`, rounded up."""
    theta = _hazard_ratio(hazard_ratio)
    p = _fraction("allocation", allocation)
    z_sum = _z_alpha(alpha, two_sided) + _z_power(power)
    fixed = z_sum**2 / (p * (1.0 - p) * math.log(theta) ** 2)
    return _ceil(fixed * group_sequential_inflation(information_fractions, alpha, power, two_sided))


# Recursive numerical integration on the score scale S_k = Z_k sqrt(t_k), whose increments
# are independent N(drift * dt, dt) (Jennison & Turnbull 2000, 3.1 and 19.2).


@dataclass(frozen=True)
class _Density:
    """Sub-density of S_k on the continuation region at a look, as Simpson nodes and weights."""

    nodes: NDArray[np.float64]
    weighted: NDArray[np.float64]  # density x Simpson weight


def _boundaries(
    fractions: list[float], increments: NDArray[np.float64], two_sided: bool
) -> list[float]:
    boundaries: list[float] = []
    density: _Density | None = None
    for k, (t, increment) in enumerate(zip(fractions, increments, strict=True)):
        previous_t = fractions[k - 1] if k else 0.0
        z = _boundary(density, previous_t, t, float(increment), two_sided)
        boundaries.append(z)
        next_t = fractions[k + 1] if k + 1 < len(fractions) else None
        density = _carry(density, previous_t, t, z, two_sided, 0.0, next_t)
    return boundaries


def _boundary(
    density: _Density | None, previous_t: float, t: float, increment: float, two_sided: bool
) -> float:
    """The Z boundary at look t whose first-crossing probability under H0 is `increment`."""

    def excess(z: float) -> float:
        crossing = _crossing(density, previous_t, t, z, both_tails=two_sided, drift=0.0)
        return math.log(max(crossing, _TINY)) - math.log(increment)

    if increment <= _TINY or excess(_MAX_Z) > 0.0:
        raise InvalidInputError(
            "information_fractions", t, f"spends too little alpha (boundary above {_MAX_Z})"
        )
    return float(optimize.brentq(excess, 0.0, _MAX_Z, xtol=1e-12))


def _upper_crossing(
    fractions: list[float], boundaries: NDArray[np.float64], two_sided: bool, drift: float
) -> float:
    """Probability under `drift` of crossing an upper boundary before crossing any other."""
    total = 0.0
    density: _Density | None = None
    for k, t in enumerate(fractions):
        previous_t = fractions[k - 1] if k else 0.0
        z = float(boundaries[k])
        total += _crossing(density, previous_t, t, z, both_tails=False, drift=drift)
        next_t = fractions[k + 1] if k + 1 < len(fractions) else None
        density = _carry(density, previous_t, t, z, two_sided, drift, next_t)
    return total


def _crossing(
    density: _Density | None,
    previous_t: float,
    t: float,
    z: float,
    *,
    both_tails: bool,
    drift: float,
) -> float:
    """P(continue to look k, then |Z_k| >= z (both tails) or Z_k >= z)."""
    step = t - previous_t
    bound = z * math.sqrt(t)
    if density is None:
        starts, weights = np.zeros(1), np.ones(1)
    else:
        starts, weights = density.nodes, density.weighted
    mean = starts + drift * step
    upper = stats.norm.sf((bound - mean) / math.sqrt(step))
    lower = stats.norm.cdf((-bound - mean) / math.sqrt(step)) if both_tails else 0.0
    return float(np.sum(weights * (upper + lower)))


def _carry(
    density: _Density | None,
    previous_t: float,
    t: float,
    z: float,
    two_sided: bool,
    drift: float,
    next_t: float | None,
) -> _Density | None:
    """Density of S_k on the continuation region at look k, on a grid fine enough for the
    spread of this look's and the next look's increments."""
    if next_t is None:
        return None
    step = t - previous_t
    bound = z * math.sqrt(t)
    low = -bound if two_sided else drift * t - 12.0 * math.sqrt(t)
    spacing = min(math.sqrt(step), math.sqrt(next_t - t)) / _GRID_POINTS_PER_SD
    intervals = max(_MIN_GRID_INTERVALS, 2 * math.ceil((bound - low) / spacing / 2))
    nodes = np.linspace(low, bound, intervals + 1)
    simpson = np.ones(intervals + 1)
    simpson[1:-1:2], simpson[2:-1:2] = 4.0, 2.0
    simpson *= (nodes[1] - nodes[0]) / 3.0
    if density is None:
        values = stats.norm.pdf(nodes, loc=drift * t, scale=math.sqrt(t))
    else:
        spread = (nodes[:, None] - density.nodes[None, :] - drift * step) / math.sqrt(step)
        values = stats.norm.pdf(spread) @ density.weighted / math.sqrt(step)
    return _Density(nodes, values * simpson)


def _information_fractions(values: Any) -> list[float]:
    array = np.atleast_1d(np.asarray(values, dtype=float))
    if array.ndim != 1 or array.size == 0:
        raise InvalidInputError("information_fractions", values, "must be a non-empty list")
    fractions = [_fraction("information_fractions", float(t), closed_right=True) for t in array]
    if any(later <= earlier for earlier, later in itertools.pairwise(fractions)):
        raise InvalidInputError("information_fractions", values, "must be strictly increasing")
    return fractions


def _log_rank_inputs(
    hazard_ratio: float, alpha: float, power: float, allocation: float, two_sided: bool
) -> tuple[float, float, float]:
    """(hazard ratio, allocation fraction, z_alpha + z_beta) of an events formula, validated."""
    theta = _hazard_ratio(hazard_ratio)
    p = _fraction("allocation", allocation)
    return theta, p, _z_alpha(alpha, two_sided) + _z_power(power)


def _z_alpha(alpha: float, two_sided: bool) -> float:
    return float(stats.norm.isf(_alpha(alpha) / _sides(two_sided)))


def _sides(two_sided: bool) -> float:
    if not isinstance(two_sided, bool):
        raise InvalidInputError("two_sided", two_sided, "must be a bool")
    return 2.0 if two_sided else 1.0


def _z_power(power: float) -> float:
    return float(stats.norm.ppf(_fraction("power", power)))


def _alpha(alpha: float) -> float:
    return _fraction("alpha", alpha)


def _hazard_ratio(hazard_ratio: float) -> float:
    theta = _positive("hazard_ratio", hazard_ratio)
    if theta == 1.0:
        raise InvalidInputError("hazard_ratio", hazard_ratio, "must differ from 1")
    return theta


def _fraction(field: str, value: float, closed_right: bool = False) -> float:
    number = _number(field, value)
    if not 0.0 < number < 1.0 and not (closed_right and number == 1.0):
        interval = "(0, 1]" if closed_right else "(0, 1)"
        raise InvalidInputError(field, value, f"must lie in {interval}")
    return number


def _positive(field: str, value: float) -> float:
    number = _number(field, value)
    if number <= 0:
        raise InvalidInputError(field, value, "must be > 0")
    return number


def _number(field: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise InvalidInputError(field, value, "must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(field, value, "must be finite")
    return number


def _ceil(value: float) -> int:
    return math.ceil(value - _ROUNDING_SLACK)
