"""Sample size and group-sequential boundaries against REFERENCE.md, hand computations,
published boundaries and an independent multivariate-normal computation."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate, stats

from startrt.analysis.sample_size import (
    event_probability,
    freedman_events,
    group_sequential_inflation,
    lan_demets_obrien_fleming,
    obrien_fleming_spending,
    patients_for_events,
    required_events_group_sequential,
    schoenfeld_events,
)
from startrt.validation import InvalidInputError

Z_975 = 1.959964  # normal quantiles from tables
Z_80 = 0.841621
Z_90 = 1.281552


@pytest.mark.parametrize(
    ("hazard_ratio", "events", "unrounded"),
    # REFERENCE.md: 1:1, two-sided 0.05, 80 % power. Each is the ceiling of
    # 4 (1.959964 + 0.841621)^2 / log(HR)^2 = 120.3, 169.2, 246.8, 379.4.
    [(0.60, 121, 120.3), (0.65, 170, 169.2), (0.70, 247, 246.8), (0.75, 380, 379.4)],
)
def test_schoenfeld_events_match_the_reference(
    hazard_ratio: float, events: int, unrounded: float
) -> None:
    by_hand = 4 * (Z_975 + Z_80) ** 2 / math.log(hazard_ratio) ** 2
    assert by_hand == pytest.approx(unrounded, abs=0.05)
    assert schoenfeld_events(hazard_ratio) == events


def test_schoenfeld_events_other_settings_by_hand() -> None:
    # 90 % power: 4 (1.959964 + 1.281552)^2 / log(0.7)^2 = 330.4 -> 331.
    assert schoenfeld_events(0.7, power=0.9) == 331
    # 2:1 allocation: (1.959964 + 0.841621)^2 / ((2/9) log(0.7)^2) = 277.7 -> 278.
    assert schoenfeld_events(0.7, allocation=2 / 3) == 278
    # One-sided 0.025 is the two-sided 0.05 design.
    assert schoenfeld_events(0.7, alpha=0.025, two_sided=False) == 247
    # The same events detect HR and 1/HR.
    assert schoenfeld_events(1 / 0.7) == 247


def test_freedman_events_by_hand() -> None:
    # (1 + 0.7)^2 / (1 - 0.7)^2 (1.959964 + 0.841621)^2 = 32.111 * 7.84888 = 252.04 -> 253.
    assert freedman_events(0.7) == 253
    # HR 0.5: 9 * 7.84888 = 70.64 -> 71.
    assert freedman_events(0.5) == 71
    # 2:1 (k = 2): 7.84888 (1 + 2 * 0.7)^2 / (2 * 0.3^2) = 7.84888 * 32 = 251.16 -> 252.
    assert freedman_events(0.7, allocation=2 / 3) == 252
    assert freedman_events(0.6) > schoenfeld_events(0.6)


def _event_probability_by_integration(
    hazard_ratio: float, median: float, accrual: float, follow_up: float, allocation: float
) -> float:
    """Average over uniform entry u in [0, a] of P(T <= a + f - u), by numerical quadrature."""
    total = 0.0
    for share, ratio in ((1 - allocation, 1.0), (allocation, hazard_ratio)):
        hazard = ratio * math.log(2) / median

        def died(u: float, hazard: float = hazard) -> float:
            return 1 - math.exp(-hazard * (accrual + follow_up - u))

        total += share * integrate.quad(died, 0, accrual)[0] / accrual
    return total


@pytest.mark.parametrize(
    ("hazard_ratio", "median", "accrual", "follow_up", "allocation"),
    [(0.7, 24, 36, 24, 0.5), (0.6, 14, 30, 12, 0.5), (0.75, 30, 48, 0, 2 / 3)],
)
def test_event_probability_closed_form_equals_the_integral(
    hazard_ratio: float, median: float, accrual: float, follow_up: float, allocation: float
) -> None:
    closed = event_probability(hazard_ratio, median, accrual, follow_up, allocation)
    exact = _event_probability_by_integration(hazard_ratio, median, accrual, follow_up, allocation)
    assert closed == pytest.approx(exact, rel=1e-10)
    # Schoenfeld 1983's Simpson rule, 1 - (S(f) + 4 S(f + a/2) + S(f + a)) / 6, is close.
    simpson = 0.0
    for share, ratio in ((1 - allocation, 1.0), (allocation, hazard_ratio)):
        hazard = ratio * math.log(2) / median
        survival = [math.exp(-hazard * (follow_up + x)) for x in (0, accrual / 2, accrual)]
        simpson += share * (1 - (survival[0] + 4 * survival[1] + survival[2]) / 6)
    assert closed == pytest.approx(simpson, abs=5e-3)


def test_patients_for_events() -> None:
    probability = _event_probability_by_integration(0.7, 24, 36, 24, 0.5)
    assert patients_for_events(247, 0.7, 24, 36, 24) == math.ceil(247 / probability)
    assert patients_for_events(247, 0.7, 24, 36, 24) == 395  # 247 / 0.62591 = 394.6
    assert patients_for_events(247, 0.7, 24, 36, 120) < 300  # longer follow-up, fewer patients


def _crossing_probabilities(fractions: list[float], boundaries: list[float]) -> list[float]:
    """Cumulative P(|Z_j| >= c_j for some j <= k) under H0 from multivariate normal
    probabilities (corr(Z_i, Z_j) = sqrt(t_i / t_j)), by inclusion over the sign patterns:
    an independent check of the recursive integration."""
    cumulative = []
    for k in range(1, len(fractions) + 1):
        t = np.array(fractions[:k])
        cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
        c = np.array(boundaries[:k])
        inside = stats.multivariate_normal(
            mean=np.zeros(k), cov=cov, abseps=1e-9, releps=1e-6, maxpts=500_000
        ).cdf(c, lower_limit=-c)
        cumulative.append(1.0 - inside)
    return cumulative


@pytest.mark.parametrize(
    ("fractions", "published"),
    [
        # gsDesign sfLDOF / rpact "asOF" / SAS SEQDESIGN ERRFUNCOBF, two-sided 0.05.
        ([0.5, 1.0], [2.963, 1.969]),
        ([1 / 3, 2 / 3, 1.0], [3.710, 2.511, 1.993]),
        # Reboussin et al., Control Clin Trials 2000 (ld98); DeMets & Lan, Stat Med 1994.
        ([0.2, 0.4, 0.6, 0.8, 1.0], [4.877, 3.357, 2.680, 2.290, 2.031]),
    ],
)
def test_lan_demets_boundaries_match_published_values(
    fractions: list[float], published: list[float]
) -> None:
    looks = lan_demets_obrien_fleming(fractions)
    assert [look.z_boundary for look in looks] == pytest.approx(published, abs=5e-4)
    assert looks[-1].cumulative_alpha == pytest.approx(0.05, rel=1e-12)
    for look in looks:
        assert look.nominal_p == pytest.approx(2 * stats.norm.sf(look.z_boundary))


@pytest.mark.parametrize("fractions", [[0.5, 1.0], [0.3, 0.65, 1.0], [0.25, 0.5, 0.75, 1.0]])
def test_boundaries_spend_the_planned_alpha_by_multivariate_normal(fractions: list[float]) -> None:
    looks = lan_demets_obrien_fleming(fractions)
    crossing = _crossing_probabilities(fractions, [look.z_boundary for look in looks])
    for look, probability in zip(looks, crossing, strict=True):
        assert probability == pytest.approx(look.cumulative_alpha, rel=1e-4, abs=1e-7)
        # alpha*(t) = 2 (2 - 2 Phi(z_{1 - 0.05/4} / sqrt(t))), written out here.
        spent = 4 * stats.norm.sf(stats.norm.isf(0.0125) / math.sqrt(look.information_fraction))
        assert look.cumulative_alpha == pytest.approx(spent, rel=1e-12)


def test_one_sided_boundaries_equal_two_sided_at_half_the_alpha() -> None:
    two_sided = lan_demets_obrien_fleming([0.4, 0.7, 1.0], alpha=0.05)
    one_sided = lan_demets_obrien_fleming([0.4, 0.7, 1.0], alpha=0.025, two_sided=False)
    assert [look.z_boundary for look in one_sided] == pytest.approx(
        [look.z_boundary for look in two_sided], abs=1e-6
    )
    assert one_sided[-1].cumulative_alpha == pytest.approx(0.025)
    assert one_sided[0].nominal_p == pytest.approx(stats.norm.sf(one_sided[0].z_boundary))


def test_single_look_is_the_fixed_design() -> None:
    (look,) = lan_demets_obrien_fleming([1.0])
    assert look.z_boundary == pytest.approx(Z_975, abs=1e-6)
    assert obrien_fleming_spending(1.0, 0.05, True) == pytest.approx(0.05)


def _upper_crossing_by_multivariate_normal(
    fractions: list[float], boundaries: list[float], drift: float
) -> float:
    """P(Z_k >= c_k for some k) with E Z_k = drift sqrt(t_k), ignoring the lower boundary
    (its probability under these drifts is below 1e-9)."""
    t = np.array(fractions)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    below = stats.multivariate_normal(
        mean=drift * np.sqrt(t), cov=cov, abseps=1e-9, releps=1e-6, maxpts=500_000
    ).cdf(np.array(boundaries))
    return float(1.0 - below)


@pytest.mark.parametrize("power", [0.8, 0.9])
@pytest.mark.parametrize("fractions", [[0.5, 1.0], [1 / 3, 2 / 3, 1.0]])
def test_inflation_factor_gives_the_power_by_multivariate_normal(
    fractions: list[float], power: float
) -> None:
    inflation = group_sequential_inflation(fractions, power=power)
    assert 1.0 < inflation < 1.05
    boundaries = [look.z_boundary for look in lan_demets_obrien_fleming(fractions)]
    drift = (Z_975 + stats.norm.ppf(power)) * math.sqrt(inflation)
    achieved = _upper_crossing_by_multivariate_normal(fractions, boundaries, drift)
    assert achieved == pytest.approx(power, abs=1e-6)


def test_required_events_group_sequential() -> None:
    inflation = group_sequential_inflation([0.5, 1.0])
    fixed = 4 * (Z_975 + Z_80) ** 2 / math.log(0.7) ** 2  # 246.8
    assert required_events_group_sequential(0.7, [0.5, 1.0]) == math.ceil(fixed * inflation)
    assert required_events_group_sequential(0.7, [0.5, 1.0]) == 248


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: schoenfeld_events(1.0), "hazard_ratio"),
        (lambda: schoenfeld_events(-0.5), "hazard_ratio"),
        (lambda: schoenfeld_events(0.7, alpha=1.2), "alpha"),
        (lambda: schoenfeld_events(0.7, alpha=0.0), "alpha"),
        (lambda: schoenfeld_events(0.7, power=1.0), "power"),
        (lambda: freedman_events(0.7, allocation=1.0), "allocation"),
        (lambda: freedman_events(0.7, two_sided="yes"), "two_sided"),
        (lambda: schoenfeld_events(True), "hazard_ratio"),
        (lambda: patients_for_events(0, 0.7, 24, 36, 24), "events"),
        (lambda: patients_for_events(100, 0.7, 0, 36, 24), "median_control_months"),
        (lambda: patients_for_events(100, 0.7, 24, 36, -1), "follow_up_months"),
        (lambda: event_probability(0.7, 24, math.inf, 24), "accrual_months"),
        (lambda: lan_demets_obrien_fleming([0.5, 0.5, 1.0]), "information_fractions"),
        (lambda: lan_demets_obrien_fleming([0.0, 1.0]), "information_fractions"),
        (lambda: lan_demets_obrien_fleming([0.5, 1.2]), "information_fractions"),
        (lambda: lan_demets_obrien_fleming([]), "information_fractions"),
        (lambda: lan_demets_obrien_fleming([1e-4, 1.0]), "information_fractions"),
        (lambda: group_sequential_inflation([0.5, 0.9]), "information_fractions"),
    ],
)
def test_bad_input_is_refused(call: Any, field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        call()
    assert error.value.field == field
