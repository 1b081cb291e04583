"""The course model against hand sums: per-kidney doses, cumulative mean / left / right / worse,
BED by hand and by the dosimetry layer's Lea-Catcheside integral, stored records."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from startrt.dosimetry.bed import bed_mono_exponential_gy
from startrt.protocol.course import (
    Course,
    CycleDose,
    allowed_activity_gbq,
    course_from_records,
    course_records,
    exact,
)
from startrt.protocol.cycle_planning import plan_next_cycle
from startrt.protocol.definition import Protocol, RenalLimit, default_protocol
from startrt.validation import InvalidInputError


def cycle(left: float, right: float, activity: float = 7.5) -> CycleDose:
    return CycleDose(
        activity_gbq=activity,
        left_kidney_dose_gy=left,
        right_kidney_dose_gy=right,
        kidney_effective_half_life_h=50.0,
    )


# left / right kidney Gy per cycle; cycle 3 had a reduced 6.0 GBq
COURSE = Course((cycle(3.0, 4.0), cycle(3.3, 4.1), cycle(3.6, 4.6, activity=6.0)))


def test_cumulative_doses_by_hand() -> None:
    # left 3.0 + 3.3 + 3.6 = 9.9; right 4.0 + 4.1 + 4.6 = 12.7; mean (9.9 + 12.7) / 2 = 11.3
    assert COURSE.cumulative_gy("left") == 9.9
    assert COURSE.cumulative_gy("right") == 12.7
    assert COURSE.cumulative_gy("mean") == 11.3
    assert COURSE.cumulative_gy("worse") == 12.7
    assert COURSE.worse_kidney() == ("right", 12.7)
    assert [row["cumulative_mean_kidney_dose_gy"] for row in COURSE.rows(_limit())] == [
        3.5,
        7.2,
        11.3,
    ]


def test_the_worse_kidney_is_the_higher_total_not_the_sum_of_cycle_maxima() -> None:
    # cycle maxima 8 + 8 = 16 Gy, but each kidney has 12 Gy
    course = Course((cycle(8.0, 4.0), cycle(4.0, 8.0)))
    assert course.cumulative_gy("worse") == 12.0
    assert course.cycles[0].dose_gy("worse") == 8.0


def test_exact_sums_of_entered_decimals() -> None:
    course = Course(tuple(CycleDose(activity_gbq=7.5, kidney_dose_gy=d) for d in (18.7, 5.65)))
    assert course.exact_cumulative_gy("mean") == Fraction("24.35")
    assert (30 - (18.7 + 5.65)) / (5.65 / 7.5) < 7.5  # floating point misses the boundary
    assert course.exact_cumulative_gy("mean") + exact(5.65) == 30


def test_a_mean_only_cycle_has_no_sides() -> None:
    course = Course((CycleDose(activity_gbq=7.5, kidney_dose_gy=3.0),))
    assert course.cumulative_gy("mean") == 3.0
    assert course.cumulative_gy("left") is None
    assert course.worse_kidney() == (None, None)


def _limit() -> RenalLimit:
    return default_protocol().renal_limit


@pytest.mark.parametrize(("dose", "half_life"), [(5.0, 50.0), (2.9, 40.0), (12.0, 120.0)])
def test_bed_equals_the_lea_catcheside_integral(dose: float, half_life: float) -> None:
    limit = _limit()
    course = Course(
        (CycleDose(activity_gbq=7.5, kidney_dose_gy=dose, kidney_effective_half_life_h=half_life),)
    )
    # the dosimetry layer integrates the protraction factor with ln 2 / T rates (a second method)
    expected = bed_mono_exponential_gy(
        dose, half_life, limit.alpha_beta_gy, limit.repair_half_time_h
    )
    assert course.cumulative_bed_gy("mean", limit) == pytest.approx(expected, rel=1e-12)


def test_bed_by_hand() -> None:
    # G = 2.8 / (2.8 + 50) = 0.0530303; BED = 5 (1 + 5 x 0.0530303 / 2.6) = 5.509907 Gy
    limit = _limit()
    course = Course(
        (CycleDose(activity_gbq=7.5, kidney_dose_gy=5.0, kidney_effective_half_life_h=50.0),)
    )
    assert course.cumulative_bed_gy("mean", limit) == pytest.approx(5.509907, abs=1e-6)


def test_allowed_activity_by_hand_on_fractions_and_arrays() -> None:
    # (30 - 24.35) / (5.65 / 7.5) = 7.5 GBq exactly; over the limit: 0
    rate = exact(5.65) / exact(7.5)
    assert allowed_activity_gbq(Fraction(30), Fraction("24.35"), rate) == Fraction("7.5")
    assert allowed_activity_gbq(Fraction(30), Fraction(31), rate) == 0
    arrays = allowed_activity_gbq(
        np.array([30.0, 30.0]), np.array([20.0, 31.0]), np.array([2.0, 1.0])
    )
    assert arrays.tolist() == [5.0, 0.0]


def test_stored_records_round_trip_and_bad_records_are_named(protocol: Protocol) -> None:
    again = course_from_records(course_records(COURSE))
    assert again == COURSE
    records = course_records(COURSE)
    records[1]["left_kidney_dose_gy"] = "a lot"
    with pytest.raises(InvalidInputError, match=r"left_kidney_dose_gy"):
        course_from_records(records)
    with pytest.raises(InvalidInputError, match="activity_gbq"):
        course_from_records([{"activity_gbq": -7.5}])


def test_the_planner_reads_the_course(protocol: Protocol) -> None:
    plan = plan_next_cycle("dTOC", COURSE.cycles, protocol)
    # mean kidney: 3.5 + 3.7 + 4.1 = 11.3 Gy; latest 4.1 Gy / 6.0 GBq; + 7.5 GBq -> 16.425 Gy
    assert plan.cumulative_kidney_gy == 11.3
    assert plan.predicted_cumulative_kidney_gy == 16.425
    assert (plan.worse_kidney, plan.worse_kidney_cumulative_gy) == ("right", 12.7)
