"""Kidney BED against hand-computed values (Dale 1985 / Wessels 2008 / Baechler 2008), the
published half-life form and numerical integration of the Lea-Catcheside integral."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import integrate

from startrt.dosimetry.bed import (
    bed_bi_exponential_gy,
    bed_for_fit_gy,
    bed_mono_exponential_gy,
    cumulative_bed_gy,
    dose_for_bed_gy,
)
from startrt.dosimetry.tac import (
    TimeActivityCurve,
    fit_bi,
    fit_mono,
    fit_uptake,
    integrate_trapezoid,
)
from startrt.validation import InvalidInputError

KIDNEY = {"alpha_beta_gy": 2.6, "repair_half_time_h": 2.8}


def test_bed_by_hand() -> None:
    # T_eff 50 h: lambda = 0.693147/50 = 0.0138629 /h; mu = 0.693147/2.8 = 0.247553 /h
    # G = 0.0138629 / (0.247553 + 0.0138629) = 0.0530302
    # BED = 10 * (1 + 10 * 0.0530302 / 2.6) = 10 * 1.2039623 = 12.039623 Gy
    assert bed_mono_exponential_gy(10.0, 50.0, **KIDNEY) == pytest.approx(12.039623, rel=1e-6)


def test_bed_of_zero_dose_is_zero_and_inverse_of_zero_is_zero() -> None:
    assert bed_mono_exponential_gy(0.0, 50.0, **KIDNEY) == 0.0
    assert dose_for_bed_gy(0.0, 50.0, **KIDNEY) == 0.0


def test_inverse_by_hand() -> None:
    # factor = 0.0530302 / 2.6 = 0.0203962 /Gy; BED 12.039623 -> D = 10 (previous test, reversed):
    # 2 * 12.039623 / (1 + sqrt(1 + 4 * 0.0203962 * 12.039623)) = 24.079246 / 2.4079246 = 10.0
    assert dose_for_bed_gy(12.039623, 50.0, **KIDNEY) == pytest.approx(10.0, rel=1e-6)


@given(
    dose=st.floats(min_value=0.0, max_value=60.0),
    half_life=st.floats(min_value=5.0, max_value=159.5),
)
def test_inverse_round_trips(dose: float, half_life: float) -> None:
    bed = bed_mono_exponential_gy(dose, half_life, **KIDNEY)
    assert bed >= dose
    assert dose_for_bed_gy(bed, half_life, **KIDNEY) == pytest.approx(dose, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("dose_gy", {"dose_gy": -1.0, "effective_half_life_h": 50.0}),
        ("effective_half_life_h", {"dose_gy": 1.0, "effective_half_life_h": 0.0}),
    ],
)
def test_bad_input_names_field(field: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError, match=field):
        bed_mono_exponential_gy(**kwargs, **KIDNEY)


def test_bed_bi_exponential_by_hand() -> None:
    # uptake T 1.5 h, clearance T 50 h, repair 2.8 h: a = 0.462098, b = 0.0138629, mu = 0.247553
    # dose rate ~ exp(-b t) - exp(-a t); closed Lea-Catcheside integral (module docstring):
    # 1/(2b(b+mu)) = 1/0.00724798 = 137.9695;  1/((a+b)(b+mu)) = 1/0.124424 = 8.037060
    # 1/((a+b)(a+mu)) = 1/0.337766 = 2.960629; 1/(2a(a+mu)) = 1/0.655856 = 1.524724
    # S = 137.9695 - 8.037060 - 2.960629 + 1.524724 = 128.4966
    # D per unit rate = 1/b - 1/a = (a-b)/(ab); (ab/(a-b))^2 = 0.0142917^2 = 2.042525e-4
    # G = 2 S (ab/(a-b))^2 = 2 * 128.4966 * 2.042525e-4 = 0.0524915
    # BED = 10 * (1 + 10 * 0.0524915 / 2.6) = 10 * 1.2018904 = 12.018904 Gy
    assert bed_bi_exponential_gy(10.0, 1.5, 50.0, **KIDNEY) == pytest.approx(12.018904, rel=1e-6)


def baechler_half_life_form(dose: float, t_up: float, t_clear: float) -> float:
    """Baechler et al., Med Phys 2008;35:1123, the closed form in half-lives, as transcribed
    in PyTheranostics (pytheranostics/dosimetry/base_dosimetry.py, calculate_bed "biexp");
    singular when T_rep equals one of the half-lives."""
    t_rep, ab = KIDNEY["repair_half_time_h"], KIDNEY["alpha_beta_gy"]
    bracket = (
        2 * t_rep**4 * (t_clear - t_up) / ((t_rep**2 - t_clear**2) * (t_rep**2 - t_up**2))
        + 2 * t_clear * t_up * t_rep / (t_clear**2 - t_up**2)
        * (t_clear / (t_rep - t_clear) + t_up / (t_rep - t_up))
        - t_rep / (t_clear - t_up) * (t_clear**2 / (t_rep - t_clear) + t_up**2 / (t_rep - t_up))
    )  # fmt: skip
    return dose * (1 + dose / (t_clear - t_up) / ab * bracket)


@pytest.mark.parametrize(("t_up", "t_clear"), [(1.5, 50.0), (0.5, 40.0), (6.0, 120.0)])
def test_bed_bi_exponential_matches_the_published_half_life_form(
    t_up: float, t_clear: float
) -> None:
    expected = baechler_half_life_form(8.0, t_up, t_clear)
    assert bed_bi_exponential_gy(8.0, t_up, t_clear, **KIDNEY) == pytest.approx(expected, rel=1e-9)


def numerical_protraction(rate: Callable[[float], float], longest_half_life_h: float) -> float:
    """Second method: G = 2/D^2 int_0^inf R(t) int_0^t R(w) exp(-mu (t - w)) dw dt, D = int R,
    by adaptive quadrature (scipy.integrate.quad), cut at 60 half-lives (2^-60 of the peak)."""
    mu = math.log(2) / KIDNEY["repair_half_time_h"]
    upper = 60.0 * longest_half_life_h

    def inner(t: float) -> float:
        return integrate.quad(lambda w: rate(w) * math.exp(-mu * (t - w)), 0.0, t)[0]

    double_integral = integrate.quad(lambda t: rate(t) * inner(t), 0.0, upper, limit=400)[0]
    dose = integrate.quad(rate, 0.0, upper, limit=400)[0]
    return 2 * double_integral / dose**2


@pytest.mark.parametrize(("t_up", "t_clear"), [(1.5, 50.0), (2.8, 60.0), (10.0, 30.0)])
def test_bed_bi_exponential_matches_numerical_lea_catcheside_integral(
    t_up: float, t_clear: float
) -> None:
    # includes T_up = T_rep = 2.8 h, where the half-life form above divides by zero
    a, b = math.log(2) / t_up, math.log(2) / t_clear
    protraction = numerical_protraction(lambda t: math.exp(-b * t) - math.exp(-a * t), t_clear)
    expected = 12.0 * (1 + 12.0 * protraction / KIDNEY["alpha_beta_gy"])
    assert bed_bi_exponential_gy(12.0, t_up, t_clear, **KIDNEY) == pytest.approx(expected, rel=1e-7)


def test_bed_bi_exponential_tends_to_mono_as_uptake_becomes_instant() -> None:
    # G_bi - G_mono = O(uptake half-life): the gap shrinks about tenfold per decade
    mono = bed_mono_exponential_gy(10.0, 50.0, **KIDNEY)  # 12.039623 Gy (test_bed_by_hand)
    gaps = [mono - bed_bi_exponential_gy(10.0, t_up, 50.0, **KIDNEY) for t_up in (1.0, 0.1, 0.01)]
    assert gaps[0] > gaps[1] > gaps[2] > 0
    assert bed_bi_exponential_gy(10.0, 1e-6, 50.0, **KIDNEY) == pytest.approx(mono, rel=1e-6)


def test_bed_bi_exponential_refuses_uptake_not_faster_than_clearance() -> None:
    with pytest.raises(InvalidInputError, match="uptake_half_life_h"):
        bed_bi_exponential_gy(10.0, 50.0, 50.0, **KIDNEY)
    with pytest.raises(InvalidInputError, match="clearance_half_life_h"):
        bed_bi_exponential_gy(10.0, 1.0, -5.0, **KIDNEY)


def test_cumulative_bed_is_the_sum_of_cycles() -> None:
    # 12.04 + 10.5 + 8.0 = 30.54 Gy
    assert cumulative_bed_gy([12.04, 10.5, 8.0]) == pytest.approx(30.54)
    assert cumulative_bed_gy([]) == 0.0
    with pytest.raises(InvalidInputError, match=r"cycle_beds_gy\[1\]"):
        cumulative_bed_gy([12.0, -1.0])


TIMES = np.array([1.0, 2.0, 4.0, 8.0, 24.0, 48.0, 96.0, 168.0])


def kidney_curve(values: np.ndarray) -> TimeActivityCurve:
    return TimeActivityCurve("left_kidney", tuple(TIMES), tuple(float(v) for v in values))


def test_bed_for_fitted_mono_and_uptake_curves_by_hand() -> None:
    # noiseless T_eff 50 h: 12.039623 Gy (test_bed_by_hand);
    # uptake 1.5 h then clearance 50 h: 12.018904 Gy (test_bed_bi_exponential_by_hand)
    mono_fit = fit_mono(kidney_curve(100 * 2 ** (-TIMES / 50)))
    assert bed_for_fit_gy(10.0, mono_fit, **KIDNEY) == pytest.approx(12.039623, rel=1e-6)
    uptake_fit = fit_uptake(kidney_curve(100 * (2 ** (-TIMES / 50) - 2 ** (-TIMES / 1.5))))
    assert bed_for_fit_gy(10.0, uptake_fit, **KIDNEY) == pytest.approx(12.018904, rel=1e-6)


def test_bed_for_a_fitted_bi_exponential_curve_matches_numerical_integral() -> None:
    # two clearance phases: 60 MBq with T = 6 h plus 40 MBq with T = 70 h
    bi_fit = fit_bi(kidney_curve(60 * 2 ** (-TIMES / 6) + 40 * 2 ** (-TIMES / 70)))
    protraction = numerical_protraction(lambda t: 60 * 2 ** (-t / 6) + 40 * 2 ** (-t / 70), 70.0)
    expected = 10.0 * (1 + 10.0 * protraction / KIDNEY["alpha_beta_gy"])
    assert bed_for_fit_gy(10.0, bi_fit, **KIDNEY) == pytest.approx(expected, rel=1e-6)


def test_bed_for_fit_refuses_a_trapezoid_integration() -> None:
    trapezoid = integrate_trapezoid(kidney_curve(100 * 2 ** (-TIMES / 50)))
    with pytest.raises(InvalidInputError, match="fit"):
        bed_for_fit_gy(10.0, trapezoid, **KIDNEY)
