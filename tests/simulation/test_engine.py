"""The tabulated decisions give exactly the engine's answers, patient by patient."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from startrt.protocol.capecitabine import capecitabine_decision
from startrt.protocol.course import Course, allowed_activity_gbq
from startrt.protocol.cycle_planning import Budget
from startrt.protocol.definition import Protocol
from startrt.simulation.engine import (
    EngineDecisions,
    History,
    LabValues,
    require_simulated_fields,
)
from startrt.simulation.parameters import Parameters
from startrt.simulation.population import Candidates, draw_candidates
from startrt.simulation.tabulated import TabulatedDecisions, kidney_allowance_gbq
from startrt.validation import InvalidInputError


def amended(protocol: Protocol, section: str, **changes: Any) -> Protocol:
    data = protocol.model_dump(by_alias=True)
    data[section] = {**(data[section] or {}), **changes}
    return Protocol.model_validate(data)


@pytest.fixture(scope="module")
def engine(parameters: Parameters, protocol: Protocol) -> EngineDecisions:
    return EngineDecisions(protocol, parameters.trial.start_date)


@pytest.fixture(scope="module")
def tabulated(parameters: Parameters, protocol: Protocol) -> TabulatedDecisions:
    return TabulatedDecisions(protocol, parameters.trial.start_date)


def with_values(candidates: Candidates, **columns: Any) -> Candidates:
    """The candidates with some columns cycled through the given values."""
    n = len(candidates)
    changed = {
        name: np.resize(np.asarray(v), n).astype(getattr(candidates, name).dtype)
        for name, v in columns.items()
    }
    return dataclasses.replace(candidates, **changed)


def test_eligibility_matches_the_engine(
    parameters: Parameters,
    protocol: Protocol,
    engine: EngineDecisions,
    tabulated: TabulatedDecisions,
) -> None:
    rng = np.random.default_rng(6)
    random = draw_candidates(parameters, protocol.sites, rng, 1500)
    edges = with_values(
        draw_candidates(parameters, protocol.sites, rng, 400),
        hemoglobin_g_l=[90, 91, 130, 130],
        platelets=[100, 101, 99, 250, 250],
        gfr_measured=[50, 51, 49, 80, 80, 80],
        neutrophils=[15, 16, 14, 30, 30, 30, 30],
        leukocytes=[30, 31, 29, 60],
        progression_days=[30, 31, 730, 731, 732, 45, 700, 300],
        ecog=[0, 1, 2],
        krenning_score=[2, 3, 4, 4],
        albumin_g_l=[25, 26, 40],
    )
    for candidates in (random, edges):
        dates = [parameters.trial.start_date] * len(candidates)
        exact = engine.eligible(candidates, dates)
        assert np.array_equal(tabulated.eligible(candidates, dates), exact)
        assert 0.02 < exact.mean() < 0.95  # both decisions exercised (edges: ~5 % eligible)


def random_history(rng: np.random.Generator, n: int, k: int) -> History:
    rate = 0.38 * np.exp(0.5 * rng.standard_normal((n, 1)) + 0.1 * rng.standard_normal((n, k)))
    activity = np.full((n, k), 7.5)
    if k:
        activity[:, -1] = rng.choice([7.5, 7.4, 3.7, 1.0, 5.2], n)
    return History(
        activity_gbq=activity,
        kidney_gy=np.minimum(np.round(rate * activity, rng.integers(2, 12)), 100.0),
        kidney_half_life_h=np.full(n, 50.0),
        marrow_gy=0.067 * activity,
    )


@pytest.mark.parametrize("rise", [0.0, 0.08])
def test_the_tables_key_is_the_engines_allowance(protocol: Protocol, rise: float) -> None:
    """The fast path keys its tables on the course model's allowance computed on arrays; it
    agrees with the same functions on exact fractions to floating-point precision (the step
    tables' gaps, 1e-9 GBq, send anything closer to an edge to the engine)."""
    limit = protocol.renal_limit.model_copy(update={"kidney_gy_per_gbq_rise_per_cycle": rise})
    protocol = protocol.model_copy(update={"renal_limit": limit})
    rng = np.random.default_rng(7)
    for k in (1, 2, 5, 9):
        history = random_history(rng, 200, k)
        mine = kidney_allowance_gbq(history, protocol.renal_limit)
        for i in range(200):
            budget = Budget(Course(history.planner_cycles(i)), protocol)
            cumulative = budget.course.exact_cumulative_gy("mean")
            assert cumulative is not None
            exact = allowed_activity_gbq(Fraction(30), cumulative, budget.rate("mean"))
            assert mine[i] == pytest.approx(float(exact), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("cycles", [0, 1, 2, 3, 4, 5, 8, 12])
def test_plans_match_the_engine(
    cycles: int, engine: EngineDecisions, tabulated: TabulatedDecisions
) -> None:
    rng = np.random.default_rng(100 + cycles)
    history = random_history(rng, 400, cycles)
    arms = rng.integers(0, 3, 400)
    exact, fast = engine.plan(arms, history), tabulated.plan(arms, history)
    for name in ("action", "activity_gbq", "limiting"):
        assert np.array_equal(getattr(fast, name), getattr(exact, name)), name


def test_plans_at_the_rounding_edges(
    protocol: Protocol, engine: EngineDecisions, tabulated: TabulatedDecisions
) -> None:
    # Histories whose allowed activity is (up to rounding) exactly a step: 1.0, 3.7, 7.5 GBq.
    # One full cycle of d Gy: allowed = (30 - d) / (d / 7.5) -> d = 30 x 7.5 / (a + 7.5).
    targets = np.array([1.0, 3.7, 7.5, 0.99999999, 7.49999999, 3.7000000001])
    doses = 30.0 * 7.5 / (targets + 7.5)
    doses = np.concatenate([doses, np.nextafter(doses, 0), np.nextafter(doses, 100)])
    n = len(doses)
    history = History(np.full((n, 1), 7.5), doses[:, None], np.full(n, 50.0), np.full((n, 1), 0.5))
    arms = np.full(n, 1)
    exact, fast = engine.plan(arms, history), tabulated.plan(arms, history)
    assert np.array_equal(fast.activity_gbq, exact.activity_gbq)
    assert np.array_equal(fast.action, exact.action)


def test_standard_arm_gets_its_fixed_cycles(
    protocol: Protocol, tabulated: TabulatedDecisions
) -> None:
    rng = np.random.default_rng(8)
    for k in range(7):
        plans = tabulated.plan(np.zeros(50, dtype=np.int64), random_history(rng, 50, k))
        full = plans.activity_gbq == protocol.treatment.activity_per_cycle_gbq
        assert full.all() if k < 4 else not full.any()


def test_bed_limit_is_planned_by_the_engine(parameters: Parameters, protocol: Protocol) -> None:
    bed = amended(protocol, "renal_limit", quantity="BED", limit_gy=40.0)
    fast = TabulatedDecisions(bed, parameters.trial.start_date)
    exact = EngineDecisions(bed, parameters.trial.start_date)
    assert not fast.tabulated_planning
    history = random_history(np.random.default_rng(9), 100, 4)
    arms = np.full(100, 2)
    assert np.array_equal(
        fast.plan(arms, history).activity_gbq, exact.plan(arms, history).activity_gbq
    )


def test_lab_actions_match_the_engine(
    engine: EngineDecisions, tabulated: TabulatedDecisions
) -> None:
    rng = np.random.default_rng(10)
    n = 600
    labs = LabValues(
        hemoglobin_g_l=rng.choice([89.0, 90.0, 91.0, 120.0, 135.0], n),
        platelets_10e9_l=rng.choice([99.0, 100.0, 101.0, 180.0, 240.0], n),
        leukocytes_10e9_l=rng.choice([2.9, 3.0, 3.1, 5.0], n),
        neutrophils_10e9_l=rng.choice([1.4, 1.5, 1.6, 3.0], n),
        measured_gfr_ml_min_173=rng.choice([29.0, 30.0, 50.0, 51.0, 75.0], n),
    )
    for weeks in (0.0, 2.0, 6.0, 8.0):
        exact = engine.lab_actions(labs, weeks)
        assert np.array_equal(tabulated.lab_actions(labs, weeks), exact)
        assert len(set(exact.tolist())) >= 2


def test_capecitabine_matches_the_engine(
    engine: EngineDecisions, tabulated: TabulatedDecisions, protocol: Protocol
) -> None:
    rng = np.random.default_rng(11)
    n = 300
    arm = np.full(n, engine.arm_ids.index("CAP-dTOC"))
    height = rng.integers(150, 200, n)
    weight = rng.integers(45, 130, n)
    crcl = np.concatenate([rng.uniform(30, 250, n - 6), [30.0, 50.0, 50.000001, 49.9, 31, 250]])
    level = rng.choice([100, 75, 50], n)
    for cycle in (1, 4):
        exact = engine.capecitabine_tablets(arm, cycle, height, weight, crcl, level)
        fast = tabulated.capecitabine_tablets(arm, cycle, height, weight, crcl, level)
        assert np.array_equal(fast[0], exact[0])
        assert np.array_equal(fast[1], exact[1])
    # the engine's course is the protocol decision's, patient by patient
    for i in (0, n - 6, n - 4, n - 3):  # CrCl 30 and 50 (75 %), just over 50 (100 %)
        decision = capecitabine_decision(
            "CAP-dTOC",
            4,
            height_cm=float(height[i]),
            weight_kg=float(weight[i]),
            crcl_ml_min=float(crcl[i]),
            dose_level_percent=int(level[i]),
            protocol=protocol,
        )
        assert decision.course_tablets == {500: exact[0][i], 150: exact[1][i]}
    # both refuse what the decision refuses: a fifth cycle, another arm, CrCl < 30 ml/min
    one = (height[:1], weight[:1], crcl[:1], level[:1])
    for decisions in (engine, tabulated):
        with pytest.raises(InvalidInputError, match="cycles 1-4 only"):
            decisions.capecitabine_tablets(arm[:1], 5, *one)
        with pytest.raises(InvalidInputError, match="arm dTOC gives no capecitabine"):
            decisions.capecitabine_tablets(np.array([engine.arm_ids.index("dTOC")]), 1, *one)
        with pytest.raises(InvalidInputError, match="severe renal impairment"):
            decisions.capecitabine_tablets(
                arm[:1], 1, height[:1], weight[:1], np.array([29.0]), level[:1]
            )


def test_schedule_derived_counts(tabulated: TabulatedDecisions) -> None:
    assert tabulated.interval_days == 70  # 10 weeks
    days, without_imaging, imaging = tabulated.cycle_visits(1, with_capecitabine=False)
    # imaging at 4, 24, 96, 168 h -> days 0, 1, 4, 7; labs day -7, +14, +28, +42; cycle day 0
    assert imaging == 4
    assert (days, without_imaging) == (8, 5)
    assert tabulated.cycle_visits(1, with_capecitabine=True)[0] == 9  # + capecitabine day 14
    assert tabulated.cycle_visits(5, with_capecitabine=True)[0] == 8  # capecitabine: cycles 1-4


def test_unsimulated_criterion_refused(protocol: Protocol) -> None:
    data = protocol.model_dump(by_alias=True)
    ki67 = {"id": "IN99", "text": "Ki-67 <= 50 %", "field": "ki67_percent", "operator": "<="}
    data["eligibility"]["inclusion"] = (
        *data["eligibility"]["inclusion"],
        {**ki67, "threshold": 50},
    )
    with pytest.raises(InvalidInputError, match=r"IN99.*ki67_percent"):
        require_simulated_fields(Protocol.model_validate(data))


@pytest.mark.parametrize("cycles", [0, 1, 3, 5, 8])
def test_risk_limited_plans_match_the_engine(
    cycles: int, parameters: Parameters, protocol: Protocol
) -> None:
    """Under a probability limit the fast path caps the tabulated plans with the kidney-dose
    model on arrays; the engine plans patient by patient: the same plans."""
    limit = protocol.renal_limit.model_copy(update={"max_probability_over_limit": 0.05})
    risky = protocol.model_copy(update={"renal_limit": limit})
    rng = np.random.default_rng(300 + cycles)
    history = random_history(rng, 300, cycles)
    arms = rng.integers(0, 3, 300)
    exact = EngineDecisions(risky, parameters.trial.start_date).plan(arms, history)
    fast = TabulatedDecisions(risky, parameters.trial.start_date).plan(arms, history)
    for name in ("action", "activity_gbq", "limiting"):
        assert np.array_equal(getattr(fast, name), getattr(exact, name)), name
    if cycles >= 3:  # the limit bites: some plans lower than the deterministic rule's
        plain = TabulatedDecisions(protocol, parameters.trial.start_date).plan(arms, history)
        assert (fast.activity_gbq < plain.activity_gbq).any()
        assert (fast.activity_gbq <= plain.activity_gbq).all()
