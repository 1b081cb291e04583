"""Risk-aware planning (issue 13): the figures every plan states, the optional probability
limit (Hypothesis: the largest 0.1 GBq step at or under it, never above the deterministic
rule), the demonstration protocol file, and the dose uncertainties of the course model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from fractions import Fraction
from importlib import resources

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from startrt.protocol.course import Course, CycleDose, course_from_records, course_records
from startrt.protocol.cycle_planning import plan_next_cycle, risk_capped_activity_gbq
from startrt.protocol.definition import (
    Protocol,
    ProtocolFileError,
    load_protocol,
    parse_protocol,
    protocol_in_force,
    shipped_protocol_files,
)
from startrt.protocol.kidney_dose_prediction import History, predict
from startrt.validation import InvalidRecordError

Amend = Callable[..., Protocol]
DEMO = resources.files("startrt.protocol.files").joinpath("demo", "START-01_v1.0-risk5.toml")


def cycles_of(doses: list[float], activity: float = 7.5) -> tuple[CycleDose, ...]:
    return tuple(CycleDose(activity_gbq=activity, kidney_dose_gy=d) for d in doses)


def test_every_plan_states_the_risk_figures(protocol: Protocol) -> None:
    plan = plan_next_cycle("dTOC", cycles_of([5.0, 5.4, 5.6, 6.0]), protocol)
    # v1.0's decision: 22 Gy + 6.0 Gy predicted = 28 Gy <= 30: full
    assert (plan.action, plan.activity_gbq, plan.remaining_kidney_budget_gy) == ("full", 7.5, 8.0)
    assert plan.probability_over_limit is not None
    assert 0.1 < plan.probability_over_limit < 0.3
    assert plan.probability_measured_over_limit is not None
    low, high = plan.predicted_cumulative_kidney_gy_interval or (0.0, 0.0)
    assert low < 30.0 < high
    assert "default measurement error" in (plan.kidney_dose_uncertainty or "")
    assert plan.inputs["kidney_dose_model"]["median_gy_per_gbq"] == 0.38
    assert "P(" not in plan.rule  # v1.0 has no probability limit
    # the same figures straight from the model
    model = predict(
        History.without_uncertainties(np.full((1, 4), 7.5), np.array([[5, 5.4, 5.6, 6]]))
    )
    assert plan.probability_over_limit == round(float(model.probability_over(30.0, 7.5)[0]), 4)


def test_first_cycle_figures_from_the_prior_and_none_without_dosimetry(
    protocol: Protocol,
) -> None:
    first = plan_next_cycle("dTOC", (), protocol)
    assert first.probability_over_limit == 0.0
    assert first.remaining_kidney_budget_gy == 30.0
    missing = plan_next_cycle("dTOC", (CycleDose(activity_gbq=7.5),), protocol)
    assert missing.action == "dosimetry needed"
    assert missing.probability_over_limit is None


def test_given_uncertainties_are_used_and_said(protocol: Protocol) -> None:
    doses = [5.0, 5.4, 5.6, 6.0]
    wide = tuple(
        CycleDose(activity_gbq=7.5, kidney_dose_gy=d, kidney_dose_sd_gy=0.2 * d) for d in doses
    )
    default = plan_next_cycle("dTOC", cycles_of(doses), protocol)
    given_sd = plan_next_cycle("dTOC", wide, protocol)
    assert given_sd.kidney_dose_uncertainty == "each dose's own standard uncertainty"
    assert given_sd.predicted_cumulative_kidney_gy_interval is not None
    assert default.predicted_cumulative_kidney_gy_interval is not None
    width = [
        i[1] - i[0]
        for i in (
            given_sd.predicted_cumulative_kidney_gy_interval,
            default.predicted_cumulative_kidney_gy_interval,
        )
    ]
    assert width[0] > width[1]
    assert given_sd.inputs["cycles"][0]["kidney_dose_sd_gy"] == 1.0


def test_bed_limits_state_no_ad_probabilities(amend: Amend) -> None:
    bed = amend("renal_limit", quantity="BED", limit_gy=40.0)
    cycles = tuple(
        CycleDose(activity_gbq=7.5, kidney_dose_gy=5.0, kidney_effective_half_life_h=50.0)
        for _ in range(2)
    )
    assert plan_next_cycle("dTOC", cycles, bed).probability_over_limit is None
    with pytest.raises(ValueError, match="max_probability_over_limit"):
        amend("renal_limit", quantity="BED", max_probability_over_limit=0.05)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="max_probability_over_limit"):
            amend("renal_limit", max_probability_over_limit=bad)


def test_the_demonstration_file(protocol: Protocol) -> None:
    demo = load_protocol(str(DEMO))
    assert demo.renal_limit.max_probability_over_limit == 0.05
    assert protocol.renal_limit.max_probability_over_limit is None
    same = demo.model_dump(exclude={"version"})
    same["renal_limit"].pop("max_probability_over_limit")
    base = protocol.model_dump(exclude={"version"})
    base["renal_limit"].pop("max_probability_over_limit")
    assert same == base  # only the version and the setting differ from v1.0
    plan = plan_next_cycle("dTOC", cycles_of([5.0, 5.4, 5.6, 6.0]), demo)
    # the deterministic rule gives 7.5 GBq (19 % over); the 5 % limit allows 6.0 GBq
    assert (plan.action, plan.activity_gbq, plan.limiting) == ("reduced", 6.0, "kidney")
    assert plan.probability_over_limit is not None
    assert plan.probability_over_limit <= 0.05
    assert "P(true cumulative kidney AD > 30 Gy) <= 0.05" in plan.rule
    assert "the probability limit allows 6 GBq" in plan.reason


def test_a_malformed_demo_setting_is_refused() -> None:
    text = DEMO.read_text("utf-8").replace(
        "max_probability_over_limit = 0.05", "max_probability_over_limit = 5"
    )
    with pytest.raises(ProtocolFileError, match="max_probability_over_limit"):
        parse_protocol(text, "risk.toml")


def test_risk_capped_activity_exact_and_on_arrays() -> None:
    f = Fraction
    assert risk_capped_activity_gbq(f(75, 10), f(6), f(1)) == 6
    assert risk_capped_activity_gbq(f(5), f(6), f(1)) == 5
    assert risk_capped_activity_gbq(f(75, 10), f(9, 10), f(1)) == 0
    values = risk_capped_activity_gbq(
        np.array([7.5, 5.0, 7.5, 1.6]), np.array([6.0, 6.0, 0.9, 7.5]), np.full(4, 1.0)
    )
    assert values.tolist() == [6.0, 5.0, 0.0, 1.6]  # exactly the chosen operand


doses = st.lists(
    st.decimals(min_value="0.5", max_value="12", places=2).map(float), min_size=1, max_size=7
)


@settings(max_examples=150, deadline=None)
@given(history=doses, maximum=st.sampled_from([0.01, 0.05, 0.1, 0.2, 0.5]))
def test_probability_limit_on_every_history(
    history: list[float], maximum: float, protocol: Protocol, amend: Amend
) -> None:
    """The activity is the largest 0.1 GBq multiple whose P(true cumulative > 30 Gy) is at or
    under the maximum, never above the deterministic rule's; under 1 GBq: stop."""
    risky = amend("renal_limit", max_probability_over_limit=maximum)
    cycles = cycles_of(history)
    plain, plan = plan_next_cycle("dTOC", cycles, protocol), plan_next_cycle("dTOC", cycles, risky)
    assert plan.activity_gbq <= plain.activity_gbq
    if plain.action in ("stop", "dosimetry needed"):
        assert (plan.action, plan.activity_gbq) == (plain.action, plain.activity_gbq)
        return
    model = predict(
        History.without_uncertainties(np.full((1, len(history)), 7.5), np.array([history]))
    )

    def probability(gbq: float) -> float:
        return float(model.probability_over(30.0, gbq)[0])

    if plan.activity_gbq > 0:
        assert probability(plan.activity_gbq) <= maximum
        assert plan.activity_gbq >= 1.0
    if plan.activity_gbq < plain.activity_gbq:
        above = round(plan.activity_gbq + 0.1, 1) if plan.activity_gbq else 1.0
        assert probability(above) > maximum
        assert plan.limiting == "kidney"
        assert plan.action == ("reduced" if plan.activity_gbq else "stop")
    else:
        assert (plan.action, plan.limiting) == (plain.action, plain.limiting)


def test_standard_arm_is_not_risk_limited(amend: Amend) -> None:
    risky = amend("renal_limit", max_probability_over_limit=0.01)
    plan = plan_next_cycle("standard", cycles_of([9.0, 9.0, 9.0]), risky)
    assert (plan.action, plan.activity_gbq) == ("full", 7.5)
    assert plan.probability_over_limit is not None
    assert plan.probability_over_limit > 0.9


def test_dose_uncertainties_validated_with_label_and_unit() -> None:
    for value in (-0.1, float("nan"), float("inf"), 60.0):
        with pytest.raises(
            InvalidRecordError, match=r"standard uncertainty of the left kidney dose.*Gy"
        ):
            course_from_records(
                [
                    {
                        "activity_gbq": 7.5,
                        "left_kidney_dose_gy": 3.0,
                        "right_kidney_dose_gy": 3.0,
                        "left_kidney_dose_sd_gy": value,
                    }
                ]
            )
    with pytest.raises(InvalidRecordError, match="without the right kidney dose"):
        course_from_records([{"activity_gbq": 7.5, "right_kidney_dose_sd_gy": 0.3}])
    with pytest.raises(InvalidRecordError, match="kidney_dose_sd_systematic_share"):
        course_from_records(
            [{"activity_gbq": 7.5, "kidney_dose_gy": 3.0, "kidney_dose_sd_systematic_share": 1.2}]
        )


def test_records_round_trip_with_and_without_uncertainties() -> None:
    old = [{"activity_gbq": 7.5, "kidney_dose_gy": 3.1}]  # a ledger written before issue 13
    assert course_records(course_from_records(old)) == old
    new = [
        {
            "activity_gbq": 7.5,
            "left_kidney_dose_gy": 3.0,
            "right_kidney_dose_gy": 3.4,
            "left_kidney_dose_sd_gy": 0.3,
            "right_kidney_dose_sd_gy": 0.35,
            "kidney_dose_sd_systematic_share": 0.4,
        }
    ]
    course = course_from_records(new)
    assert course_records(course) == new
    assert course.cycles[0].dose_sd_gy("mean") == pytest.approx(0.325)
    assert Course(course.cycles).cumulative_gy("mean") == 3.2


def test_the_demonstration_folder_is_a_registry_of_its_own() -> None:
    """`protocol_in_force` reads the demo subfolder as a registry (the shipped registry, one
    level up, never sees it)."""
    folder = resources.files("startrt.protocol.files").joinpath("demo")
    assert protocol_in_force(date(2026, 1, 1), folder).label == "START-01 v1.0-risk5"
    assert "START-01_v1.0-risk5.toml" not in shipped_protocol_files()
