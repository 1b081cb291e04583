"""Survival functions against published values, hand computations, lifelines and statsmodels."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test as lifelines_logrank
from lifelines.utils import median_survival_times
from lifelines.utils import restricted_mean_survival_time as lifelines_rmst
from statsmodels.duration.hazard_regression import PHReg
from statsmodels.duration.survfunc import survdiff

from startrt.analysis.survival import (
    cox_hazard_ratio,
    cox_log_hazard_ratio,
    kaplan_meier,
    logrank_test,
    restricted_mean,
    rmst_difference,
)
from startrt.validation import InvalidInputError

# Freireich et al. 1963 leukaemia remission data (weeks), as tabulated by Gehan 1965 and used
# in Klein & Moeschberger 2003 (section 1.2) and Kleinbaum & Klein 2012 (chapters 2-3).
SIX_MP = [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35]
SIX_MP_EVENT = [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
PLACEBO = [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23]


def gehan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both arms; group 1 = placebo, so the hazard ratio is placebo vs 6-MP."""
    time = np.array(SIX_MP + PLACEBO, dtype=float)
    event = np.array(SIX_MP_EVENT + [1] * len(PLACEBO))
    group = np.array([0] * len(SIX_MP) + [1] * len(PLACEBO))
    return time, event, group


def simulated_trial(seed: int, patients: int = 300, strata: int = 3) -> dict[str, np.ndarray]:
    """A trial in whole days (so with ties), exponential times, uniform censoring."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, patients)
    stratum = rng.integers(0, strata, patients)
    scale = 300.0 * np.where(group == 1, 1.4, 1.0) * (1.0 + 0.4 * stratum)
    event_time = np.round(rng.exponential(scale))
    censor_time = np.round(rng.uniform(60.0, 900.0, patients))
    return {
        "time": np.minimum(event_time, censor_time),
        "event": (event_time <= censor_time).astype(int),
        "group": group,
        "stratum": stratum,
    }


# --- Kaplan-Meier ---------------------------------------------------------------------------


def test_kaplan_meier_reproduces_the_published_6mp_estimates() -> None:
    # Klein & Moeschberger 2003, table 4.1A / Kaplan-Meier estimate of the 6-MP arm.
    km = kaplan_meier(SIX_MP, SIX_MP_EVENT)
    published = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    for week, survival in published.items():
        assert km.survival_at(week) == pytest.approx(survival, abs=5e-4)
    assert km.survival_at(5.99) == 1.0
    assert km.survival_at(100) == pytest.approx(0.448, abs=5e-4)  # flat after the last time
    assert km.median().estimate_days == 23.0


def test_log_log_band_by_hand_at_the_first_event_time() -> None:
    # t = 6: S = 18/21, Greenwood sum = 3 / (21 * 18); band S^exp(-+1.959964 sigma / log S).
    km = kaplan_meier(SIX_MP, SIX_MP_EVENT)
    s = 18 / 21
    sigma = math.sqrt(3 / (21 * 18))
    spread = 1.959964 * sigma / math.log(s)
    index = list(km.time_days).index(6.0)
    assert km.lower[index] == pytest.approx(s ** math.exp(-spread), rel=1e-6)
    assert km.upper[index] == pytest.approx(s ** math.exp(spread), rel=1e-6)
    assert km.lower[index] == pytest.approx(0.6197, abs=1e-4)
    assert km.upper[index] == pytest.approx(0.9516, abs=1e-4)
    assert (km.lower[0], km.upper[0]) == (1.0, 1.0)  # day 0, S = 1


def test_kaplan_meier_counts_at_risk_events_and_censored() -> None:
    km = kaplan_meier([0, 2, 2, 5, 9], [1, 1, 0, 1, 0])
    assert list(km.time_days) == [0.0, 2.0, 5.0, 9.0]
    assert list(km.at_risk) == [5, 4, 2, 1]
    assert list(km.events) == [1, 1, 1, 0]
    assert list(km.censored) == [0, 1, 0, 1]
    assert km.survival[0] == pytest.approx(0.8)  # an event on day 0 counts on day 0
    assert list(km.numbers_at_risk([0, 1, 2, 3, 9, 10])) == [5, 4, 4, 2, 1, 0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kaplan_meier_and_median_agree_with_lifelines(seed: int) -> None:
    data = simulated_trial(seed, patients=120)
    km = kaplan_meier(data["time"], data["event"])
    reference = KaplanMeierFitter().fit(data["time"], data["event"])
    assert np.allclose(km.time_days, reference.survival_function_.index)
    assert np.allclose(km.survival, reference.survival_function_.iloc[:, 0], atol=1e-12)
    assert np.allclose(km.lower, reference.confidence_interval_.iloc[:, 0], atol=1e-12)
    assert np.allclose(km.upper, reference.confidence_interval_.iloc[:, 1], atol=1e-12)
    median = km.median()
    limits = median_survival_times(reference.confidence_interval_).iloc[0]
    assert median.estimate_days == reference.median_survival_time_
    assert (median.lower_days, median.upper_days) == (limits.iloc[0], limits.iloc[1])


def test_median_not_reached_is_none() -> None:
    km = kaplan_meier([5, 10, 20, 30], [1, 0, 0, 0])
    assert km.median().estimate_days is None
    assert km.median_days is None
    assert km.median().upper_days is None


def test_median_when_survival_is_exactly_one_half_over_an_interval() -> None:
    # Uncensored times 1..24: S(t) = (24 - t) / 24 telescopes, so S = 12/24 = 1/2 exactly on
    # [12, 13). The first time S <= 0.5 is 12 (Klein & Moeschberger 2003, 4.5; lifelines);
    # R's survfit(Surv(1:24) ~ 1) prints median 12.5, the midpoint of that interval. The
    # floating-point product of (1 - 1/n) is 0.5000000000000001 there.
    km = kaplan_meier(np.arange(1, 25), np.ones(24))
    assert km.median().estimate_days == 12.0


def _exact_first_half_time(time: list[int], event: list[int]) -> float | None:
    """The first distinct time at which the Kaplan-Meier product, in Fractions, is <= 1/2."""
    survival = Fraction(1)
    for t in sorted(set(time)):
        at_risk = sum(1 for u in time if u >= t)
        deaths = sum(1 for u, e in zip(time, event, strict=True) if u == t and e)
        survival *= Fraction(at_risk - deaths, at_risk)
        if survival <= Fraction(1, 2):
            return float(t)
    return None


@given(
    st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=1, max_size=60),
)
@settings(max_examples=300, deadline=None)
def test_median_equals_the_exact_fraction_computation(patients: list[tuple[int, bool]]) -> None:
    # Small integer times give many ties, so S lands exactly on 1/2 in many examples.
    time = [t for t, _ in patients]
    event = [int(e) for _, e in patients]
    assert kaplan_meier(time, event).median().estimate_days == _exact_first_half_time(time, event)


@given(st.integers(1, 200), st.integers(0, 200))
@settings(max_examples=200, deadline=None)
def test_median_of_one_death_a_day_telescopes(deaths: int, censored_after: int) -> None:
    # Deaths on days 1..d, then c patients censored on day d + 1, N = d + c: the product
    # telescopes to S(k) = (N - k) / N, so S <= 1/2 first at k = ceil(N / 2) (if k <= d).
    # N even puts S exactly on 1/2, where a floating-point product can land just above it.
    total = deaths + censored_after
    time = list(range(1, deaths + 1)) + [deaths + 1] * censored_after
    event = [1] * deaths + [0] * censored_after
    first = -(-total // 2)
    expected = float(first) if first <= deaths else None
    assert kaplan_meier(time, event).median().estimate_days == expected


def test_kaplan_meier_other_confidence_level_is_narrower() -> None:
    wide = kaplan_meier(SIX_MP, SIX_MP_EVENT, confidence=0.95)
    narrow = kaplan_meier(SIX_MP, SIX_MP_EVENT, confidence=0.90)
    inside = (wide.survival > 0) & (wide.survival < 1)
    assert np.all(narrow.lower[inside] > wide.lower[inside])
    assert np.all(narrow.upper[inside] < wide.upper[inside])


# --- log-rank ------------------------------------------------------------------------------


def test_logrank_reproduces_the_published_6mp_statistic() -> None:
    # Kleinbaum & Klein, Survival Analysis, 3rd ed. 2012, ch. 2: log-rank chi2 = 16.79;
    # observed/expected: 6-MP 9 / 19.25, placebo 21 / 10.75.
    result = logrank_test(*gehan())
    assert result.chi2 == pytest.approx(16.79, abs=0.005)
    assert result.observed == (9.0, 21.0)
    assert result.expected[0] == pytest.approx(19.25, abs=0.005)
    assert result.expected[1] == pytest.approx(10.75, abs=0.005)
    assert result.p_value < 1e-4


def test_logrank_by_hand_on_four_patients() -> None:
    # Group 0: events at 1 and 3; group 1: event at 2, censored at 4.
    # t=1: n=4, n1=2 -> E1=1/2, V=1/4; t=2: n=3, n1=2 -> E1=2/3, V=2/9; t=3: n=2, n1=1 ->
    # E1=1/2, V=1/4. O1=1, E1=5/3, V=13/18, chi2=(2/3)^2/(13/18)=8/13.
    result = logrank_test([1, 3, 2, 4], [1, 1, 1, 0], [0, 0, 1, 1])
    assert result.chi2 == pytest.approx(8 / 13)
    assert result.expected == pytest.approx((4 / 3, 5 / 3))
    assert result.observed == (2.0, 1.0)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_logrank_agrees_with_lifelines(seed: int) -> None:
    data = simulated_trial(seed)
    result = logrank_test(data["time"], data["event"], data["group"].astype(bool))
    first, second = data["group"] == 0, data["group"] == 1
    reference = lifelines_logrank(
        data["time"][first], data["time"][second], data["event"][first], data["event"][second]
    )
    assert result.chi2 == pytest.approx(reference.test_statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.p_value, rel=1e-8)


@pytest.mark.parametrize("seed", [7, 8])
def test_stratified_logrank_agrees_with_statsmodels(seed: int) -> None:
    data = simulated_trial(seed)
    labels = np.array(["FDG-", "FDG+", "site B"])[data["stratum"]]
    result = logrank_test(data["time"], data["event"], data["group"], strata=labels)
    chi2, p_value = survdiff(data["time"], data["event"], data["group"], strata=data["stratum"])
    assert result.chi2 == pytest.approx(chi2, rel=1e-10)
    assert result.p_value == pytest.approx(p_value, rel=1e-8)
    plain = logrank_test(data["time"], data["event"], data["group"])
    assert plain.chi2 != pytest.approx(result.chi2)


def test_logrank_one_stratum_equals_unstratified() -> None:
    time, event, group = gehan()
    stratified = logrank_test(time, event, group, strata=["all"] * time.size)
    assert stratified.chi2 == pytest.approx(logrank_test(time, event, group).chi2, rel=1e-14)


# --- Cox ------------------------------------------------------------------------------------


def test_cox_reproduces_the_published_6mp_hazard_ratios() -> None:
    # Efron ties: R coxph (Venables & Ripley, MASS 4th ed. 2002, 13.3, gehan data):
    # coef 1.572, SE 0.412. Breslow ties: Kleinbaum & Klein 2012, ch. 3 (Stata): coef 1.509,
    # HR 4.523, SE 0.410, 95 % CI 2.027-10.094.
    time, event, group = gehan()
    efron = cox_log_hazard_ratio(time, event, group)
    assert efron.estimate == pytest.approx(1.572, abs=5e-4)
    assert efron.standard_error == pytest.approx(0.412, abs=5e-4)
    breslow = cox_hazard_ratio(time, event, group, ties="breslow")
    assert math.log(breslow.hazard_ratio) == pytest.approx(1.509, abs=5e-4)
    assert breslow.hazard_ratio == pytest.approx(4.523, abs=5e-4)
    assert breslow.lower == pytest.approx(2.027, abs=5e-4)
    assert breslow.upper == pytest.approx(10.094, abs=5e-4)


def _lifelines_cox(data: dict[str, np.ndarray], stratified: bool) -> Any:
    frame = pd.DataFrame(
        {"time": data["time"], "event": data["event"], "group": data["group"]}
        | ({"stratum": data["stratum"]} if stratified else {})
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CoxPHFitter().fit(frame, "time", "event", strata=["stratum"] if stratified else None)


@pytest.mark.parametrize("seed", [9, 10, 11])
@pytest.mark.parametrize("stratified", [False, True])
def test_cox_agrees_with_lifelines(seed: int, stratified: bool) -> None:
    data = simulated_trial(seed)
    strata = data["stratum"] if stratified else None
    fit = cox_log_hazard_ratio(data["time"], data["event"], data["group"], strata)
    reference = _lifelines_cox(data, stratified)
    assert fit.estimate == pytest.approx(reference.params_["group"], abs=1e-6)
    assert fit.standard_error == pytest.approx(reference.standard_errors_["group"], abs=1e-6)
    ratio = cox_hazard_ratio(data["time"], data["event"], data["group"], strata)
    row = reference.summary.loc["group"]
    assert ratio.hazard_ratio == pytest.approx(row["exp(coef)"], rel=1e-6)
    assert ratio.lower == pytest.approx(row["exp(coef) lower 95%"], rel=1e-6)
    assert ratio.upper == pytest.approx(row["exp(coef) upper 95%"], rel=1e-6)
    assert ratio.p_value == pytest.approx(row["p"], rel=1e-5)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
@pytest.mark.parametrize("seed", [12, 13])
def test_stratified_cox_agrees_with_statsmodels(ties: Any, seed: int) -> None:
    data = simulated_trial(seed)
    fit = cox_log_hazard_ratio(
        data["time"], data["event"], data["group"], data["stratum"], ties=ties
    )
    reference = PHReg(
        data["time"],
        data["group"][:, None].astype(float),
        status=data["event"],
        strata=data["stratum"],
        ties=ties,
    ).fit()
    assert fit.estimate == pytest.approx(reference.params[0], abs=1e-6)
    assert fit.standard_error == pytest.approx(reference.bse[0], abs=1e-6)


def test_cox_without_ties_does_not_depend_on_the_tie_method() -> None:
    rng = np.random.default_rng(14)
    time = rng.permutation(np.arange(1.0, 61.0))
    event = rng.integers(0, 2, 60)
    group = np.r_[np.zeros(30, int), np.ones(30, int)]
    efron = cox_log_hazard_ratio(time, event, group).estimate
    assert efron == pytest.approx(cox_log_hazard_ratio(time, event, group, ties="breslow").estimate)


def test_cox_with_no_event_in_one_group_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="not estimable"):
        cox_hazard_ratio([1, 2, 3, 4], [1, 1, 0, 0], [0, 0, 1, 1])


def test_cox_with_all_events_before_the_other_group_at_risk_is_refused() -> None:
    # Group 1's only event happens when group 0 is no longer at risk: HR -> infinity.
    with pytest.raises(InvalidInputError, match="not estimable"):
        cox_hazard_ratio([1, 2, 3, 4], [0, 0, 1, 0], [0, 0, 1, 1])


# --- restricted mean ------------------------------------------------------------------------


def test_restricted_mean_by_hand() -> None:
    # KM: S=1 on [0,2), 0.8 on [2,3), 0.6 on [3,5), 0.3 from 5. RMST(6) = 2 + 0.8 + 1.2 + 0.3.
    # Areas to tau after each event: 2.3 (t=2), 1.5 (t=3), 0.3 (t=5); variance
    # 2.3^2/(5*4) + 1.5^2/(4*3) + 0.3^2/(2*1) = 0.2645 + 0.1875 + 0.045 = 0.497.
    rmst = restricted_mean([2, 3, 3, 5, 8], [1, 1, 0, 1, 0], 6)
    assert rmst.estimate_days == pytest.approx(4.3)
    assert rmst.se_days == pytest.approx(math.sqrt(0.497))


@pytest.mark.parametrize("tau", [50.0, 200.0, 455.5])
def test_restricted_mean_estimate_agrees_with_lifelines(tau: float) -> None:
    # lifelines' return_variance is the variance of min(T, tau) itself, not of the estimate,
    # so only the estimate is compared.
    data = simulated_trial(15, patients=150)
    reference = lifelines_rmst(KaplanMeierFitter().fit(data["time"], data["event"]), t=tau)
    assert restricted_mean(data["time"], data["event"], tau).estimate_days == pytest.approx(
        reference, rel=1e-12
    )


@pytest.mark.slow
def test_restricted_mean_standard_error_matches_the_spread_of_estimates() -> None:
    # Exponential (median 300 d) with uniform censoring: the mean SE over 400 trials of 200
    # patients must match the SD of the 400 estimates within ~10 % (Monte Carlo error ~4 %).
    rng = np.random.default_rng(16)
    estimates, errors = [], []
    for _ in range(400):
        event_time = rng.exponential(300 / math.log(2), 200)
        censor_time = rng.uniform(200, 800, 200)
        fit = restricted_mean(np.minimum(event_time, censor_time), event_time <= censor_time, 180)
        estimates.append(fit.estimate_days)
        errors.append(fit.se_days)
    assert np.mean(errors) == pytest.approx(np.std(estimates, ddof=1), rel=0.1)
    truth = 300 / math.log(2) * (1 - math.exp(-math.log(2) * 180 / 300))
    assert np.mean(estimates) == pytest.approx(truth, rel=0.01)


def test_restricted_mean_difference_by_hand() -> None:
    time = [2, 3, 3, 5, 8, 1, 2, 4, 6, 7]
    event = [1, 1, 0, 1, 0, 1, 1, 1, 0, 0]
    group = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    # Group 0: S=1 [0,1), 0.8 [1,2), 0.6 [2,4), 0.4 from 4 -> RMST(6) = 1+0.8+1.2+0.8 = 3.8;
    # areas after events: 2.8, 2.0, 0.8 -> var 2.8^2/20 + 2^2/12 + 0.8^2/6 = 0.392+1/3+0.10667.
    var_0 = 2.8**2 / 20 + 2.0**2 / 12 + 0.8**2 / 6
    var_1 = 0.497
    result = rmst_difference(time, event, group, 6)
    se = math.sqrt(var_0 + var_1)
    assert result.difference_days == pytest.approx(4.3 - 3.8)
    assert result.lower == pytest.approx(0.5 - 1.959964 * se, abs=1e-6)
    assert result.upper == pytest.approx(0.5 + 1.959964 * se, abs=1e-6)
    assert result.p_value == pytest.approx(math.erfc(0.5 / se / math.sqrt(2)))


def test_restricted_mean_beyond_the_data_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="tau_days"):
        restricted_mean([2, 3, 8], [1, 0, 0], 9)
    # A curve that has reached 0 is known beyond the last time.
    assert restricted_mean([2, 3], [1, 1], 10).estimate_days == pytest.approx(2.5)


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("time", "event", "field", "rule"),
    [
        ([1, -2, 3], [1, 0, 1], "time_days", ">= 0"),
        ([1, np.nan, 3], [1, 0, 1], "time_days", "finite"),
        (["a", "b", "c"], [1, 0, 1], "time_days", "numbers"),
        ([1, 2, 3], [1, 2, 1], "event", "0 or 1"),
        ([1, 2, 3], [1, 0], "event", "needs 3"),
        ([], [], "time_days", "non-empty"),
    ],
)
def test_bad_survival_data_is_refused(time: Any, event: Any, field: str, rule: str) -> None:
    with pytest.raises(InvalidInputError, match=rule) as error:
        kaplan_meier(time, event)
    assert error.value.field == field


def test_bad_groups_and_strata_are_refused() -> None:
    time, event = [1, 2, 3, 4], [1, 1, 1, 0]
    with pytest.raises(InvalidInputError, match="both groups") as error:
        logrank_test(time, event, [1, 1, 1, 1])
    assert error.value.field == "group"
    with pytest.raises(InvalidInputError, match="0 or 1"):
        cox_hazard_ratio(time, event, [0, 1, 2, 1])
    with pytest.raises(InvalidInputError, match="needs 4") as error:
        logrank_test(time, event, [0, 1, 0, 1], strata=["a", "b"])
    assert error.value.field == "strata"
    for strata in (["a", None, "a", "b"], pd.Series(["a", np.nan, "a", "b"]), [1.0, np.nan, 1, 2]):
        with pytest.raises(InvalidInputError, match="missing"):
            logrank_test(time, event, [0, 1, 0, 1], strata=strata)
    with pytest.raises(InvalidInputError, match="ties"):
        cox_log_hazard_ratio(time, event, [0, 1, 0, 1], ties="exact")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="confidence"):
        cox_hazard_ratio(time, event, [0, 1, 0, 1], confidence=1.5)
    with pytest.raises(InvalidInputError, match="no event"):
        logrank_test([1, 2, 3, 4], [0, 0, 0, 0], [0, 1, 0, 1])
    with pytest.raises(InvalidInputError, match="t_days"):
        kaplan_meier(time, event).survival_at(-1)
