"""TAC fits and integration against hand-computed values and a Monte Carlo check."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from startrt.dosimetry.tac import (
    FitResult,
    TimeActivityCurve,
    fit_best,
    fit_bi,
    fit_mono,
    fit_uptake,
    integrate_trapezoid,
)
from startrt.validation import InvalidInputError

LN2 = math.log(2.0)
LU177_LAMBDA = LN2 / 159.528  # 6.647 d * 24 = 159.528 h -> 0.00434499 /h
TIMES = (1.0, 2.0, 4.0, 8.0, 24.0, 48.0, 96.0, 168.0)


def mono(t: np.ndarray, a0: float, half_life_h: float) -> np.ndarray:
    return a0 * np.exp(-LN2 / half_life_h * t)


def bi(t: np.ndarray, a_f: float, t_f: float, a_s: float, t_s: float) -> np.ndarray:
    return mono(t, a_f, t_f) + mono(t, a_s, t_s)


def uptake(t: np.ndarray, a: float, t_clear: float, t_up: float) -> np.ndarray:
    return mono(t, a, t_clear) - mono(t, a, t_up)


def curve(values: np.ndarray, times: tuple[float, ...] = TIMES) -> TimeActivityCurve:
    return TimeActivityCurve("left_kidney", times, tuple(float(v) for v in values))


def noisy(values: np.ndarray, relative_sd: float, seed: int) -> np.ndarray:
    return values * (1.0 + relative_sd * np.random.default_rng(seed).standard_normal(len(values)))


T = np.array(TIMES)


def test_mono_fit_of_noiseless_data_by_hand() -> None:
    # A0 = 100 MBq, T_eff = 50 h: lambda = 0.693147 / 50 = 0.0138629 /h
    # TIA = A0 / lambda = 100 * 50 / 0.693147 = 7213.475 MBq*h
    fit = fit_mono(curve(mono(T, 100.0, 50.0)))
    assert fit.model == "mono"
    assert fit.tia_mbq_h == pytest.approx(7213.475, rel=1e-6)
    assert fit.parameters["a0_mbq"] == pytest.approx(100.0, rel=1e-6)
    assert fit.parameters["lambda_per_h"] == pytest.approx(0.01386294, rel=1e-6)
    assert fit.effective_half_life_h == pytest.approx(50.0, rel=1e-6)


def test_uptake_fit_of_noiseless_data_by_hand() -> None:
    # A = 120 MBq, clearance T = 60 h, uptake T = 3 h:
    # 1/l_c = 60 / 0.693147 = 86.5617 h; 1/l_u = 3 / 0.693147 = 4.32809 h
    # TIA = 120 * (86.5617 - 4.32809) = 120 * 82.2336 = 9868.03 MBq*h; terminal T = 60 h
    fit = fit_uptake(curve(uptake(T, 120.0, 60.0, 3.0)))
    assert fit.tia_mbq_h == pytest.approx(9868.034, rel=1e-6)
    assert fit.parameters["a_mbq"] == pytest.approx(120.0, rel=1e-6)
    assert fit.parameters["lambda_clearance_per_h"] == pytest.approx(LN2 / 60.0, rel=1e-6)
    assert fit.parameters["lambda_uptake_per_h"] == pytest.approx(LN2 / 3.0, rel=1e-6)
    assert fit.effective_half_life_h == pytest.approx(60.0, rel=1e-6)


def test_bi_fit_of_noiseless_data_by_hand() -> None:
    # 80 MBq with T = 5 h plus 40 MBq with T = 80 h:
    # TIA = (80 * 5 + 40 * 80) / 0.693147 = 3600 / 0.693147 = 5193.702 MBq*h; terminal T = 80 h
    fit = fit_bi(curve(bi(T, 80.0, 5.0, 40.0, 80.0)))
    assert fit.tia_mbq_h == pytest.approx(5193.702, rel=1e-6)
    expected = {
        "a_fast_mbq": 80.0,
        "lambda_fast_per_h": LN2 / 5.0,
        "a_slow_mbq": 40.0,
        "lambda_slow_per_h": LN2 / 80.0,
    }
    for name, value in expected.items():
        assert fit.parameters[name] == pytest.approx(value, rel=1e-6)
    assert fit.effective_half_life_h == pytest.approx(80.0, rel=1e-6)


@pytest.mark.parametrize(
    ("fitter", "generator", "truth"),
    [
        (fit_mono, mono, (250.0, 120.0)),
        (fit_uptake, uptake, (40.0, 100.0, 0.8)),
        (fit_bi, bi, (300.0, 1.5, 20.0, 140.0)),
        (fit_bi, bi, (5.0, 20.0, 60.0, 45.0)),
    ],
)
def test_noiseless_fits_recover_generating_parameters(
    fitter: Callable[[TimeActivityCurve], FitResult],
    generator: Callable[..., np.ndarray],
    truth: tuple[float, ...],
) -> None:
    # half-lives in `truth` -> rates ln2 / T; amplitudes as given
    fit = fitter(curve(generator(T, *truth)))
    recovered = list(fit.parameters.values())
    names = list(fit.parameters)
    expected = [LN2 / v if "lambda" in n else v for n, v in zip(names, truth, strict=True)]
    assert recovered == pytest.approx(expected, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    a0=st.floats(min_value=1.0, max_value=1e4),
    half_life_h=st.floats(min_value=2.0, max_value=159.5),
)
def test_noiseless_mono_tia_is_a0_over_lambda(a0: float, half_life_h: float) -> None:
    fit = fit_best(curve(mono(T, a0, half_life_h)))
    assert fit.model == "mono"
    assert fit.tia_mbq_h == pytest.approx(a0 * half_life_h / LN2, rel=1e-6)


def test_prediction_reproduces_the_curve() -> None:
    fit = fit_uptake(curve(uptake(T, 120.0, 60.0, 3.0)))
    # at 10 h: 120 * (2^(-10/60) - 2^(-10/3)) = 120 * (0.890899 - 0.099213) = 95.0023 MBq
    assert fit.predict([10.0])[0] == pytest.approx(95.0023, rel=1e-5)


def test_rate_bound_is_active_when_data_decay_slower_than_physical() -> None:
    # 10 -> 9.5 -> 9.2 MBq over 144 h is slower than 177Lu decay: the fit sits on the bound
    fit = fit_mono(curve(np.array([10.0, 9.5, 9.2]), (24.0, 96.0, 168.0)))
    assert fit.parameters["lambda_per_h"] == pytest.approx(LU177_LAMBDA, rel=1e-12)
    assert fit.effective_half_life_h == pytest.approx(159.528, rel=1e-9)


def test_all_fitted_rates_respect_the_physical_bound() -> None:
    # kidney-like data that barely clear: no rate of any model may be slower than physical decay
    values = noisy(uptake(T, 30.0, 400.0, 2.0), 0.03, seed=3)
    for fitter in (fit_mono, fit_uptake, fit_bi):
        fit = fitter(curve(values))
        rates = [v for name, v in fit.parameters.items() if "lambda" in name]
        assert min(rates) >= LU177_LAMBDA * (1 - 1e-12)
    up = fit_uptake(curve(values)).parameters
    assert up["lambda_uptake_per_h"] > up["lambda_clearance_per_h"]


def test_two_points_give_the_mono_exponential_through_both() -> None:
    # (24 h, 80 MBq), (96 h, 30 MBq): lambda = ln(80/30) / 72 = 0.980829 / 72 = 0.0136226 /h
    # A0 = 80 * exp(0.0136226 * 24) = 80 * exp(0.326943) = 80 * 1.386723 = 110.9378 MBq
    # TIA = 110.9378 / 0.0136226 = 8143.64 MBq*h
    tac = curve(np.array([80.0, 30.0]), (24.0, 96.0))
    fit = fit_best(tac)
    assert fit.model == "mono"
    assert fit.parameters["lambda_per_h"] == pytest.approx(0.01362263, rel=1e-6)
    assert fit.parameters["a0_mbq"] == pytest.approx(110.9378, rel=1e-6)
    assert fit.tia_mbq_h == pytest.approx(8143.64, rel=1e-6)
    # an exact fit leaves no residual variance: no AIC and, without given SDs, no SD
    assert fit.aic is None
    assert fit.aicc is None
    assert fit.tia_sd_mbq_h is None


def test_two_point_sd_from_given_sigmas_matches_error_propagation() -> None:
    # second method: TIA(A1, A2) in closed form (previous test), derivatives by central
    # differences, SD = sqrt(sum (dTIA/dAi * sigma_i)^2)
    def closed_form(a1: float, a2: float) -> float:
        rate = math.log(a1 / a2) / 72.0
        return a1 * math.exp(rate * 24.0) / rate

    sigmas = (4.0, 2.0)
    h = 1e-4
    d1 = (closed_form(80.0 + h, 30.0) - closed_form(80.0 - h, 30.0)) / (2 * h)
    d2 = (closed_form(80.0, 30.0 + h) - closed_form(80.0, 30.0 - h)) / (2 * h)
    expected = math.hypot(d1 * sigmas[0], d2 * sigmas[1])
    tac = TimeActivityCurve("liver", (24.0, 96.0), (80.0, 30.0), sigmas)
    assert fit_mono(tac).tia_sd_mbq_h == pytest.approx(expected, rel=1e-5)


def test_aicc_picks_the_generating_model() -> None:
    # 8 points, 3 % noise, fixed seeds: AICc is defined for every model (8 - 4 - 1 = 3 > 0)
    assert fit_best(curve(noisy(mono(T, 100.0, 50.0), 0.03, seed=1))).model == "mono"
    assert fit_best(curve(noisy(bi(T, 80.0, 4.0, 40.0, 80.0), 0.03, seed=1))).model == "bi"
    assert fit_best(curve(noisy(uptake(T, 120.0, 60.0, 3.0), 0.03, seed=1))).model == "uptake"


def test_aicc_by_hand_for_a_mono_fit() -> None:
    # AICc = n ln(WRSS/n) + 2k + 2k(k+1)/(n-k-1); n = 8, k = 2: penalty 4 + 12/5 = 6.4
    data = noisy(mono(T, 100.0, 50.0), 0.03, seed=1)
    fit = fit_mono(curve(data))
    wrss = float(np.sum(((fit.predict(T) - data) / data) ** 2))  # relative weighting
    assert fit.aic == pytest.approx(8 * math.log(wrss / 8) + 4, rel=1e-9)
    assert fit.aicc == pytest.approx(8 * math.log(wrss / 8) + 6.4, rel=1e-9)


def test_noiseless_data_choose_the_simplest_exact_model() -> None:
    # every model fits noiseless mono data exactly; only the penalties differ
    assert fit_best(curve(mono(T, 100.0, 50.0))).model == "mono"


def test_candidates_need_more_points_than_parameters() -> None:
    # 3 points: only mono (k = 2) has a residual degree of freedom, even on uptake data
    tac = curve(uptake(np.array([1.0, 24.0, 96.0]), 120.0, 60.0, 3.0), (1.0, 24.0, 96.0))
    assert fit_best(tac).model == "mono"
    with pytest.raises(InvalidInputError, match="models"):
        fit_best(tac, models=("bi",))


def test_two_points_need_the_mono_model() -> None:
    with pytest.raises(InvalidInputError, match="models"):
        fit_best(curve(np.array([80.0, 30.0]), (24.0, 96.0)), models=("uptake", "bi"))


def test_one_point_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="times_h"):
        fit_best(curve(np.array([50.0]), (96.0,)))


def test_trapezoid_worked_example() -> None:
    # samples (4, 50), (24, 60), (96, 40), (168, 25) MBq, from (0, 0):
    # 0-4: 4 * 50 / 2 = 100; 4-24: 20 * 110 / 2 = 1100; 24-96: 72 * 100 / 2 = 3600;
    # 96-168: 72 * 65 / 2 = 2340; sum 7140 MBq*h
    # physical tail: 25 / 0.00434499 = 25 * 159.528 / 0.693147 = 5753.756; total 12893.756
    tac = curve(np.array([50.0, 60.0, 40.0, 25.0]), (4.0, 24.0, 96.0, 168.0))
    result = integrate_trapezoid(tac)
    assert result.tia_mbq_h == pytest.approx(12893.756, rel=1e-6)
    assert result.tia_sd_mbq_h is None
    assert result.aic is None
    # tail with a fitted effective rate 0.01 /h: 25 / 0.01 = 2500; total 9640
    assert integrate_trapezoid(tac, tail_rate_per_h=0.01).tia_mbq_h == pytest.approx(9640.0)
    # the curve: linear between samples, 0 at t = 0, exponential tail
    assert result.predict([0.0, 2.0, 60.0]).tolist() == pytest.approx([0.0, 25.0, 50.0])
    assert result.predict([168.0 + 159.528])[0] == pytest.approx(12.5)


def test_trapezoid_with_a_sample_at_injection() -> None:
    # (0, 10), (2, 6) MBq: 2 * 16 / 2 = 16; tail 6 / 0.00434499 = 1380.90; total 1396.90
    result = integrate_trapezoid(curve(np.array([10.0, 6.0]), (0.0, 2.0)))
    assert result.tia_mbq_h == pytest.approx(1396.902, rel=1e-6)
    assert result.predict([0.0])[0] == 10.0


def test_trapezoid_tail_faster_than_physical_only() -> None:
    tac = curve(np.array([50.0, 40.0]), (24.0, 96.0))
    with pytest.raises(InvalidInputError, match="tail_rate_per_h"):
        integrate_trapezoid(tac, tail_rate_per_h=0.001)


@pytest.mark.slow
def test_delta_method_sd_agrees_with_monte_carlo() -> None:
    # 500 replicates with 5 % Gaussian noise: the SD of the fitted TIAs vs the delta method,
    # (a) SDs given (absolute): the SD of the fit to the noiseless curve;
    # (b) relative weighting: the root-mean-square of each replicate's own SD estimate.
    times = (4.0, 24.0, 48.0, 96.0, 168.0)
    truth = mono(np.array(times), 100.0, 50.0)
    sigma = tuple(float(s) for s in 0.05 * truth)
    rng = np.random.default_rng(20240611)
    given, relative, relative_sd = [], [], []
    for _ in range(500):
        sample = tuple(float(v) for v in truth + rng.standard_normal(len(times)) * sigma)
        given.append(fit_mono(TimeActivityCurve("kidney", times, sample, sigma)).tia_mbq_h)
        fit = fit_mono(TimeActivityCurve("kidney", times, sample))
        relative.append(fit.tia_mbq_h)
        assert fit.tia_sd_mbq_h is not None
        relative_sd.append(fit.tia_sd_mbq_h)
    delta = fit_mono(TimeActivityCurve("kidney", times, tuple(truth), sigma)).tia_sd_mbq_h
    assert delta is not None
    assert float(np.std(given, ddof=1)) == pytest.approx(delta, rel=0.2)
    rms = math.sqrt(float(np.mean(np.square(relative_sd))))
    assert float(np.std(relative, ddof=1)) == pytest.approx(rms, rel=0.2)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("times_h", {"times_h": (24.0, 4.0), "activity_mbq": (1.0, 2.0)}),
        ("times_h", {"times_h": (-1.0, 4.0), "activity_mbq": (1.0, 2.0)}),
        ("times_h", {"times_h": (), "activity_mbq": ()}),
        ("activity_mbq", {"times_h": (4.0, 24.0), "activity_mbq": (1.0, -2.0)}),
        ("activity_mbq", {"times_h": (4.0, 24.0), "activity_mbq": (1.0,)}),
        ("activity_mbq", {"times_h": (4.0, 24.0), "activity_mbq": (1.0, math.nan)}),
        ("sigma_mbq", {"times_h": (4.0, 24.0), "activity_mbq": (1.0, 2.0), "sigma_mbq": (1.0,)}),
        ("sigma_mbq", {"times_h": (4.0, 24.0), "activity_mbq": (1, 2), "sigma_mbq": (1.0, 0.0)}),
    ],
)
def test_bad_curves_are_refused_naming_the_field(field: str, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match=field):
        TimeActivityCurve("liver", **kwargs)  # type: ignore[arg-type]


def test_fits_refuse_zero_activity_and_too_few_points() -> None:
    with pytest.raises(InvalidInputError, match="activity_mbq"):
        fit_mono(curve(np.array([10.0, 0.0, 5.0]), (4.0, 24.0, 96.0)))
    with pytest.raises(InvalidInputError, match="times_h"):
        fit_bi(curve(np.array([10.0, 8.0, 5.0]), (4.0, 24.0, 96.0)))
    with pytest.raises(InvalidInputError, match="decay_constant_per_h"):
        fit_mono(curve(mono(T, 100.0, 50.0)), decay_constant_per_h=0.0)
