"""The kidney-dose model against independent computations: the conjugate normal update by hand
(independent measurement errors), importance sampling from the generative model (systematic
errors shared between cycles, the Fenton-Wilkinson sum), the measured cumulative's exact
lognormal, and the shipped prior's numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from startrt.protocol.course import Course, CycleDose
from startrt.protocol.kidney_dose_prediction import (
    History,
    course_history,
    kidney_dose_prior,
    predict,
)

PRIOR = kidney_dose_prior()
POP = math.log1p(0.5**2)  # ln(1 + cv^2), population variance of ln g (cv 50 %)
CYC = math.log1p(0.1**2)
RISE = math.log(1.08)


def history(doses: list[float], sd: float | None = None, share: float | None = None) -> History:
    activity = np.full((1, len(doses)), 7.5)
    dose = np.array([doses])
    return History(
        activity,
        dose,
        np.full(dose.shape, np.nan if sd is None else sd),
        np.full(dose.shape, np.nan if share is None else share),
    )


def test_shipped_prior_values_and_sources() -> None:
    # REFERENCE.md: DOTATOC median 0.38 Gy/GBq, CV ~50 %; +8 %/cycle (LUMEN)
    assert (PRIOR.gy_per_gbq.median, PRIOR.gy_per_gbq.cv) == (0.38, 0.5)
    assert PRIOR.rise_per_cycle.value == 0.08
    assert PRIOR.population_sigma == pytest.approx(math.sqrt(POP))
    for part in (PRIOR.gy_per_gbq, PRIOR.rise_per_cycle, PRIOR.cycle_cv, PRIOR.measurement_cv):
        assert "REFERENCE.md" in part.source or "assumption" in part.source


@pytest.mark.parametrize("doses", [[3.0], [2.0, 2.4, 2.5], [6.0, 5.0, 7.0, 6.5]])
def test_next_cycle_is_the_conjugate_normal_update_by_hand(doses: list[float]) -> None:
    """Independent errors (systematic share 0): theta = ln g has prior N(m0, POP); each cycle
    y_k = theta + (k - 1) ln 1.08 + noise of variance CYC + ln(1 + 0.1^2). Posterior precision
    1/POP + n/v, mean (m0/POP + sum(y_k - d_k)/v) / precision (Gelman BDA3 2.5); the next
    cycle's log Gy/GBq is N(mean + n ln 1.08, 1/precision + CYC)."""
    n, rel = len(doses), 0.1
    v = CYC + math.log1p(rel**2)
    y = [math.log(d / 7.5) - k * RISE for k, d in enumerate(doses)]
    precision = 1 / POP + n / v
    mean = (math.log(0.38) / POP + sum(y) / v) / precision
    m, var = mean + n * RISE, 1 / precision + CYC
    prediction = predict(history(doses, sd=rel, share=0.0))
    assert prediction.mean_x[0] == pytest.approx(math.exp(m + var / 2), rel=1e-12)
    assert prediction.second_xx[0] == pytest.approx(math.exp(2 * m + 2 * var), rel=1e-12)
    # the next measured log Gy/GBq: the same plus the measurement variance
    assert prediction.measured_log_mean[0] == pytest.approx(m, rel=1e-12)
    assert prediction.measured_log_sd[0] ** 2 == pytest.approx(var + math.log1p(rel**2))


def importance_sampled(
    doses: list[float], rel: float, share: float, activity: float, limit: float, draws: int
) -> tuple[float, float]:
    """P(true cumulative > limit) and P(measured cumulative > limit) by sampling the latent
    (ln g, systematic error, cycle variations) from the generative model and weighting by the
    likelihood of the measured doses (the independent error part, normal)."""
    rng = np.random.default_rng(11)
    n = len(doses)
    var = math.log1p(rel**2)
    a, b = math.sqrt(share * var), math.sqrt((1 - share) * var)
    theta = math.log(0.38) + math.sqrt(POP) * rng.standard_normal(draws)
    z = rng.standard_normal(draws)
    e = math.sqrt(CYC) * rng.standard_normal((draws, n + 1))
    x = theta[:, None] + RISE * np.arange(n + 1) + e  # true log Gy/GBq
    y = np.log(np.array(doses) / 7.5)
    log_w = stats.norm.logpdf(y, loc=x[:, :n] + a * z[:, None], scale=b).sum(axis=1)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    true_total = 7.5 * np.exp(x[:, :n]).sum(axis=1) + activity * np.exp(x[:, n])
    next_measured = np.exp(x[:, n] + a * z + b * rng.standard_normal(draws))
    measured_total = sum(doses) + activity * next_measured
    return float(w @ (true_total > limit)), float(w @ (measured_total > limit))


@pytest.mark.parametrize(
    ("doses", "rel", "share", "activity"),
    [
        ([5.0, 5.4, 5.6, 6.0], 0.15, 0.5, 7.5),
        ([5.0, 5.4, 5.6, 6.0], 0.15, 0.5, 5.0),
        ([6.5, 7.0, 7.2], 0.20, 0.8, 7.5),
        ([8.0, 8.5, 9.0], 0.10, 0.0, 4.0),
    ],
)
def test_probabilities_against_importance_sampling(
    doses: list[float], rel: float, share: float, activity: float
) -> None:
    expected_true, expected_measured = importance_sampled(
        doses, rel, share, activity, 30.0, 400_000
    )
    prediction = predict(history(doses, sd=rel, share=share))
    true = float(prediction.probability_over(30.0, activity)[0])
    measured = float(prediction.probability_measured_over(30.0, activity)[0])
    assert 0.01 < expected_true < 0.99
    # Fenton-Wilkinson: within 2 percentage points of the sampled tail here
    assert true == pytest.approx(expected_true, abs=0.02)
    assert measured == pytest.approx(expected_measured, abs=0.01)


def test_systematic_error_widens_the_true_cumulative() -> None:
    """A shared error moves every past measured dose alike: the true dose so far is less
    certain than with independent errors of the same size."""
    doses = [5.0, 5.4, 5.6, 6.0]
    independent = predict(history(doses, sd=0.15, share=0.0)).interval_gy(7.5)
    shared = predict(history(doses, sd=0.15, share=1.0)).interval_gy(7.5)
    assert shared[1][0] - shared[0][0] > independent[1][0] - independent[0][0]


def test_interval_is_the_fenton_wilkinson_lognormal() -> None:
    prediction = predict(history([5.0, 5.4]))
    mean = prediction.mean_c + 7.5 * prediction.mean_x
    second = prediction.second_cc + 15 * prediction.second_cx + 56.25 * prediction.second_xx
    sigma = math.sqrt(math.log(second[0] / mean[0] ** 2))
    mu = math.log(mean[0]) - sigma**2 / 2
    low, high = prediction.interval_gy(7.5)
    assert low[0] == pytest.approx(stats.lognorm.ppf(0.05, sigma, scale=math.exp(mu)))
    assert high[0] == pytest.approx(stats.lognorm.ppf(0.95, sigma, scale=math.exp(mu)))


def test_measured_cumulative_already_over_and_no_activity() -> None:
    prediction = predict(history([10.0, 11.0, 10.0]))
    assert prediction.probability_measured_over(30.0, 0.0)[0] == 1.0
    assert prediction.probability_measured_over(30.0, 7.5)[0] == 1.0
    under = predict(history([5.0, 5.0]))
    assert under.probability_measured_over(30.0, 0.0)[0] == 0.0


def test_no_history_is_the_prior() -> None:
    """Before the first cycle: the next true Gy/GBq is the population's lognormal with the
    cycle variation (median 0.38, log variance POP + CYC)."""
    empty = predict(History.without_uncertainties(np.zeros((1, 0)), np.zeros((1, 0))))
    expected = stats.lognorm.sf(30.0 / 7.5, math.sqrt(POP + CYC), scale=0.38)
    assert empty.probability_over(30.0, 7.5)[0] == pytest.approx(expected, rel=1e-9)
    assert empty.probability_over(30.0, 0.0)[0] == 0.0


def test_largest_safe_steps_by_brute_force() -> None:
    many = predict(
        History.without_uncertainties(
            np.full((4, 3), 7.5), np.array([[5, 5.4, 5.6], [7, 7, 7.5], [2, 2, 2], [9, 9.5, 10]])
        )
    )
    steps = many.largest_safe_steps(30.0, 0.05, 0.1, 75)
    for i in range(4):
        fits = [k for k in range(76) if many.probability_over(30.0, k * 0.1)[i] <= 0.05]
        assert steps[i] == (max(fits) if fits else 0)


def test_course_history_reads_the_side_and_its_uncertainty() -> None:
    course = Course(
        (
            CycleDose(
                activity_gbq=7.5,
                left_kidney_dose_gy=4.0,
                right_kidney_dose_gy=6.0,
                left_kidney_dose_sd_gy=0.4,
                right_kidney_dose_sd_gy=0.8,
                kidney_dose_sd_systematic_share=0.3,
            ),
            CycleDose(activity_gbq=6.0, kidney_dose_gy=4.2),
        )
    )
    mean = course_history(course, "mean")
    assert mean.dose_gy.tolist() == [[5.0, 4.2]]
    # the mean's SD from both sides, fully correlated: (0.4 + 0.8) / 2 = 0.6 -> 0.6 / 5
    assert mean.relative_sd[0, 0] == pytest.approx(0.12)
    assert math.isnan(mean.relative_sd[0, 1])
    assert mean.systematic_share[0, 0] == 0.3
    assert course_history(course.__class__(course.cycles[:1]), "right").relative_sd[0, 0] == (
        pytest.approx(0.8 / 6.0)
    )
    with pytest.raises(ValueError, match="left"):
        course_history(course, "left")
