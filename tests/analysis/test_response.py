"""Best overall response and response rates; Clopper-Pearson against statsmodels and
textbook values."""

from __future__ import annotations

from typing import Any

import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from startrt.analysis.response import (
    best_response_per_patient,
    exact_proportion,
    response_rates,
)
from startrt.validation import InvalidInputError


@pytest.mark.parametrize(
    ("timeline", "best"),
    [
        ([(84, "SD"), (168, "PR"), (252, "CR")], "CR"),
        ([(84, "PR"), (168, "SD")], "PR"),
        ([(84, "SD"), (168, "PD")], "SD"),
        ([(42, "SD")], "SD"),  # SD at exactly 42 days counts
        ([(41, "SD")], "NE"),  # too early, nothing follows
        ([(41, "SD"), (84, "PD")], "PD"),  # too early, then PD
        ([(41, "SD"), (84, "NE")], "NE"),
        ([(84, "PD"), (168, "PR")], "PD"),  # nothing after the first PD counts
        ([(84, "NE")], "NE"),
        ([], "NE"),  # no assessment: not evaluable
        ([(-10, "PR"), (84, "SD")], "SD"),  # before randomization: ignored
    ],
)
def test_best_response(outcome_dataset: Any, timeline: list[tuple[int, str]], best: str) -> None:
    dataset = outcome_dataset(
        {"P1": {}}, assessments=[("P1", day, response) for day, response in timeline]
    )
    frame = best_response_per_patient(dataset)
    assert list(frame.columns) == ["trial_id", "arm", "treatment_arm", "best_response"]
    assert frame["best_response"].tolist() == [best]


def test_best_response_sorts_assessments_by_date(outcome_dataset: Any) -> None:
    dataset = outcome_dataset({"P1": {}}, assessments=[("P1", 168, "PR"), ("P1", 84, "PD")])
    assert best_response_per_patient(dataset)["best_response"].tolist() == ["PD"]


def test_other_minimum_sd_interval(outcome_dataset: Any) -> None:
    dataset = outcome_dataset({"P1": {}}, assessments=[("P1", 50, "SD")])
    assert best_response_per_patient(dataset, sd_min_interval_days=56)[
        "best_response"
    ].tolist() == ["NE"]


def test_randomized_patient_without_arm_is_refused(outcome_dataset: Any) -> None:
    with pytest.raises(InvalidInputError, match="randomized without arm"):
        best_response_per_patient(outcome_dataset({"P1": {"arm": ""}}))


@pytest.mark.parametrize(
    ("successes", "n", "lower", "upper"),
    # 0/10 and 10/10 by hand: upper = 1 - 0.025^(1/10) = 0.30850, lower = 0.025^(1/10) =
    # 0.69150; 5/10 -> 0.1871-0.8129 as in exact binomial confidence-limit tables.
    [(0, 10, 0.0, 0.3085), (5, 10, 0.1871, 0.8129), (10, 10, 0.6915, 1.0)],
)
def test_exact_proportion_textbook_values(
    successes: int, n: int, lower: float, upper: float
) -> None:
    result = exact_proportion(successes, n)
    assert result.estimate == successes / n
    assert (result.lower, result.upper) == pytest.approx((lower, upper), abs=5e-5)


@pytest.mark.parametrize(("successes", "n"), [(1, 3), (5, 10), (7, 23), (29, 96)])
def test_exact_limits_solve_the_binomial_tail_equations(successes: int, n: int) -> None:
    # Clopper & Pearson's definition: P(X >= x | lower) = P(X <= x | upper) = 0.025.
    result = exact_proportion(successes, n)
    assert stats.binom.sf(successes - 1, n, result.lower) == pytest.approx(0.025, rel=1e-9)
    assert stats.binom.cdf(successes, n, result.upper) == pytest.approx(0.025, rel=1e-9)


@pytest.mark.parametrize(("successes", "n"), [(0, 1), (1, 3), (7, 23), (29, 96), (150, 151)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_exact_proportion_agrees_with_statsmodels(
    successes: int, n: int, confidence: float
) -> None:
    lower, upper = proportion_confint(successes, n, alpha=1 - confidence, method="beta")
    result = exact_proportion(successes, n, confidence)
    assert (result.lower, result.upper) == pytest.approx((lower, upper), abs=1e-12)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ((3, 0), "n"),
        ((-1, 5), "successes"),
        ((6, 5), "successes"),
        ((2.0, 5), "successes"),
        ((2, 5, 1.0), "confidence"),
        ((2, 5, True), "confidence"),
    ],
)
def test_exact_proportion_refuses_bad_input(arguments: tuple[Any, ...], field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        exact_proportion(*arguments)
    assert error.value.field == field


def test_response_rates_by_arm_and_treatment_arm(outcome_dataset: Any) -> None:
    patients = {
        "S1": {"arm": "standard"},
        "S2": {"arm": "standard"},
        "S3": {"arm": "standard"},
        "D1": {"arm": "personalized", "treatment_arm": "dTOC"},
        "D2": {"arm": "personalized", "treatment_arm": "dTOC"},
        "C1": {"arm": "personalized", "treatment_arm": "CAP-dTOC"},
        "X1": {"randomized": False},
    }
    assessments = [
        ("S1", 84, "PR"),
        ("S2", 84, "SD"),
        ("S3", 30, "SD"),  # too early for SD, no later assessment: NE
        ("D1", 84, "CR"),
        ("D2", 84, "PD"),
        ("C1", 84, "PR"),
        ("X1", 84, "PR"),  # not randomized: not counted
    ]
    rates = response_rates(outcome_dataset(patients, assessments=assessments))
    by_group = rates.set_index(["grouping", "group"])
    assert list(by_group.index) == [
        ("arm", "standard"),
        ("arm", "personalized"),
        ("treatment_arm", "standard"),
        ("treatment_arm", "dTOC"),
        ("treatment_arm", "CAP-dTOC"),
    ]
    standard = by_group.loc[("arm", "standard")]
    assert (standard["n"], standard["PR"], standard["SD"], standard["NE"]) == (3, 1, 1, 1)
    assert (standard["orr_n"], standard["dcr_n"]) == (1, 2)
    assert standard["orr"] == pytest.approx(1 / 3)
    lower, upper = proportion_confint(1, 3, method="beta")
    assert (standard["orr_lower"], standard["orr_upper"]) == pytest.approx((lower, upper))
    personalized = by_group.loc[("arm", "personalized")]
    assert (personalized["n"], personalized["orr_n"], personalized["dcr_n"]) == (3, 2, 2)
    assert by_group.loc[("treatment_arm", "dTOC"), "PD"] == 1
    assert by_group.loc[("treatment_arm", "CAP-dTOC"), "orr"] == 1.0
