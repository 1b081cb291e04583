"""Calibration of the planner's stated probabilities in the in-silico trial (issue 13, item 6):
plans that state a probability p of the true (or measured) cumulative kidney dose exceeding the
limit after the planned cycle see it exceeded in a share ~p of the virtual patients, bin by bin,
within Monte Carlo error. At most one plan per personalized patient (its cycle drawn before the
course), so the outcomes are independent; the stated probabilities are those of
`plan_next_cycle` (the kidney-dose model on the measured history and the planned activity).
Also the policies' runner: the same virtual patients under every policy."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from startrt.protocol.definition import Protocol
from startrt.protocol.kidney_dose_prediction import History, predict
from startrt.simulation.cohort import recruit, screen
from startrt.simulation.course import Course, run_course
from startrt.simulation.parameters import Parameters
from startrt.simulation.policies import compare_policies, policies
from startrt.simulation.replicates import decisions_for

SEED = 4242
BINS = (0.0, 0.02, 0.2, 0.45, 0.7, 1.0)


def simulated(
    parameters: Parameters, protocol: Protocol, replicates: int
) -> tuple[Course, np.ndarray]:
    decisions = decisions_for(protocol, parameters)
    chunk = list(range(replicates))
    screenings = screen(parameters, protocol, decisions, SEED, chunk)
    cohort = recruit(parameters, protocol, decisions, SEED, chunk, screenings)
    course = run_course(cohort, parameters, protocol, decisions, SEED)
    guided = np.array([arm.dosimetry_guided for arm in protocol.arms])[cohort.arm]
    return course, guided


def stated_and_seen(course: Course, guided: np.ndarray, limit: float) -> pd.DataFrame:
    # per patient a cycle k drawn before anything happens (3-9, where the limit comes near);
    # the patient's plan of cycle k counts when cycle k was given: the choice does not depend
    # on what followed the plan
    draw = np.random.default_rng(1).integers(3, 10, len(guided))
    given = guided & (course.cycles >= draw)
    who, cycle = np.flatnonzero(given), draw[given]
    rows = []
    for k in np.unique(cycle):
        mine = who[cycle == k]
        prediction = predict(
            History.without_uncertainties(
                course.activity_gbq[mine, : k - 1], course.kidney_measured_gy[mine, : k - 1]
            )
        )
        activity = course.activity_gbq[mine, k - 1]
        rows.append(
            pd.DataFrame(
                {
                    "p_true": prediction.probability_over(limit, activity),
                    "true": course.kidney_true_gy[mine, :k].sum(axis=1) > limit,
                    "p_measured": prediction.probability_measured_over(limit, activity),
                    "measured": course.kidney_measured_gy[mine, :k].sum(axis=1) > limit,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def check_calibrated(stated: pd.Series, seen: pd.Series) -> list[tuple[float, float, int]]:
    """Per bin with 30+ plans: |crossings - sum of stated p| <= 4 SD of that sum (independent
    Bernoulli outcomes) + 1."""
    rows = []
    for low, high in itertools.pairwise(BINS):
        mask = (stated >= low) & (stated < high if high < 1 else stated <= high)
        n = int(mask.sum())
        if n < 30:
            continue
        p, hits = stated[mask], seen[mask]
        sd = float(np.sqrt((p * (1 - p)).sum()))
        assert abs(float(hits.sum()) - float(p.sum())) <= 4 * sd + 1, (low, high, n)
        rows.append((float(p.mean()), float(hits.mean()), n))
    return rows


def test_stated_probabilities_are_calibrated(parameters: Parameters, protocol: Protocol) -> None:
    course, guided = simulated(parameters, protocol, 16)
    plans = stated_and_seen(course, guided, protocol.renal_limit.limit_gy)
    true_bins = check_calibrated(plans["p_true"], plans["true"])
    measured_bins = check_calibrated(plans["p_measured"], plans["measured"])
    assert len(plans) > 1000
    # the bins that carry the decision (p well inside (0, 1)) are populated
    assert len([b for b in true_bins if 0.02 <= b[0] <= 0.75]) >= 3
    assert len([b for b in measured_bins if 0.02 <= b[0] <= 0.75]) >= 2


def test_the_risk_limit_lowers_the_overshoot(parameters: Parameters, protocol: Protocol) -> None:
    """The same virtual patients under v1.0 and under a 5 % limit: fewer true overshoots."""
    limited = policies(protocol)["+ P(true > limit) <= 5%"]
    plain_course, guided = simulated(parameters, protocol, 6)
    risk_course, same = simulated(parameters, limited, 6)
    assert np.array_equal(guided, same)
    over = [
        (c.kidney_true_gy.sum(axis=1) > 30.0)[guided].mean() for c in (plain_course, risk_course)
    ]
    assert over[1] < 0.07 < over[0]


def test_compare_policies_runs_every_policy_on_one_runner(protocol: Protocol) -> None:
    seen: list[Protocol] = []

    def run(policy: Protocol) -> pd.DataFrame:
        seen.append(policy)
        share = policy.renal_limit.max_probability_over_limit or 0.3
        return pd.DataFrame(
            {
                "reject": [True, False],
                **{
                    f"{m}_personalized": [share, share]
                    for m in (
                        "true_kidney_over_limit_share",
                        "measured_kidney_over_limit_share",
                        "cycles",
                        "activity_gbq",
                        "median_pfs_months",
                    )
                },
            }
        )

    table = compare_policies(protocol, run)
    assert len(seen) == 5
    assert [p.renal_limit.max_probability_over_limit for p in seen] == [None, None, 0.05, 0.1, 0.2]
    assert seen[1].renal_limit.kidney_gy_per_gbq_rise_per_cycle == 0.08
    assert table["power"].tolist() == [0.5] * 5
    assert table["power_mc_se"].iloc[0] == pytest.approx(np.sqrt(0.25 / 2))
    assert table["true_over_limit_share"].tolist() == [0.3, 0.3, 0.05, 0.1, 0.2]
