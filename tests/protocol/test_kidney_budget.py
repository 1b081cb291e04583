"""The kidney-dose budget per cycle (numbers worked by hand) and the limit flag at its boundary:
under, exactly at (reached: the planner keeps a limit it lands on) and over, exactly."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from startrt.protocol.course import Course, CycleDose
from startrt.protocol.definition import Protocol
from startrt.protocol.kidney_budget import kidney_dose_rows, kidneys_at_or_over, limit_flag

Amend = Callable[..., Protocol]


def course(*doses: tuple[float, float], activity_gbq: float = 7.4) -> Course:
    return Course(
        tuple(
            CycleDose(
                activity_gbq=activity_gbq, left_kidney_dose_gy=left, right_kidney_dose_gy=right
            )
            for left, right in doses
        )
    )


def test_rows_worked_by_hand(protocol: Protocol) -> None:
    # 7.4 GBq cycles, 3.86 / 4.12 Gy then 4.10 / 4.50 Gy; START-01 v1.0 reads the mean, 30 Gy
    first, second = kidney_dose_rows(course((3.86, 4.12), (4.10, 4.50)), protocol.renal_limit)
    assert first.left_kidney_gy_per_gbq == pytest.approx(3.86 / 7.4)  # 0.5216
    assert first.right_kidney_gy_per_gbq == pytest.approx(4.12 / 7.4)  # 0.5568
    assert first.cumulative_limited_gy == pytest.approx(3.99)  # (3.86 + 4.12) / 2
    assert first.percent_of_kidney_limit == pytest.approx(13.3)  # 3.99 / 30
    assert first.remaining_kidney_budget_gy == pytest.approx(26.01)
    assert (first.governing_side, first.state) == ("mean", "within")
    assert second.cumulative_left_kidney_dose_gy == pytest.approx(7.96)  # 3.86 + 4.10
    assert second.cumulative_right_kidney_dose_gy == pytest.approx(8.62)  # 4.12 + 4.50
    assert second.cumulative_limited_gy == pytest.approx(8.29)  # (7.96 + 8.62) / 2
    assert second.percent_of_kidney_limit == pytest.approx(27.6333, abs=1e-4)
    assert second.remaining_kidney_budget_gy == pytest.approx(21.71)
    assert limit_flag(second, protocol.renal_limit) is None


@pytest.mark.parametrize(
    ("second_gy", "state", "flag"),
    [
        (14.99, "within", None),
        (
            15.0,
            "reached",
            "Cumulative mean-kidney dose 30.00 Gy has reached the 30 Gy limit (100.0 %): "
            "no budget is left for another cycle",
        ),
        (
            15.01,
            "exceeded",
            "Cumulative mean-kidney dose 30.01 Gy exceeds the 30 Gy limit (100.0 %)",
        ),
        (
            15.25,
            "exceeded",
            "Cumulative mean-kidney dose 30.25 Gy exceeds the 30 Gy limit (100.8 %)",
        ),
    ],
)
def test_the_flag_at_the_boundary(
    protocol: Protocol, second_gy: float, state: str, flag: str | None
) -> None:
    # 15 Gy + 14.99 / 15.00 / 15.01 / 15.25 Gy (both kidneys alike): 29.99 ... 30.25 Gy
    row = kidney_dose_rows(course((15.0, 15.0), (second_gy, second_gy)), protocol.renal_limit)[-1]
    assert row.state == state
    assert limit_flag(row, protocol.renal_limit) == flag


def test_the_boundary_is_exact_where_floats_are_not(protocol: Protocol) -> None:
    assert 9.07 + 9.13 + 11.8 > 30.0  # 30.000000000000004 in floating point
    row = kidney_dose_rows(course((9.07, 9.07), (9.13, 9.13), (11.8, 11.8)), protocol.renal_limit)[
        -1
    ]
    assert (row.state, row.remaining_kidney_budget_gy) == ("reached", 0.0)


def test_a_worse_kidney_limit_flags_one_kidney_over(amend: Amend) -> None:
    worse = amend("renal_limit", kidney="worse").renal_limit
    # left 15.2 + 15.2 = 30.4 Gy over the limit, right 14 + 14 = 28 Gy under it
    row = kidney_dose_rows(course((15.2, 14.0), (15.2, 14.0)), worse)[-1]
    assert (row.governing_side, row.cumulative_limited_gy, row.state) == ("left", 30.4, "exceeded")
    assert limit_flag(row, worse) == (
        "Cumulative worse-kidney dose (left kidney) 30.40 Gy exceeds the 30 Gy limit (101.3 %)"
    )


def test_a_mean_kidney_limit_reads_the_mean_of_one_kidney_over(protocol: Protocol) -> None:
    doses = course((15.2, 14.0), (15.2, 14.0))
    row = kidney_dose_rows(doses, protocol.renal_limit)[-1]
    assert (row.cumulative_limited_gy, row.state) == (pytest.approx(29.2), "within")
    assert kidneys_at_or_over(doses, protocol.renal_limit) == (("left", 30.4),)
    # exactly at the limit counts; just under does not
    assert kidneys_at_or_over(course((15.0, 14.0), (15.0, 15.99)), protocol.renal_limit) == (
        ("left", 30.0),
    )
