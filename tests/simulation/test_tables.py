"""Memoised engine calls and step tables: exact where known, unknown inside gaps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from startrt.simulation.tables import Memo, build_step_table, confirm_step_table


def test_memo_calls_once_per_distinct_key() -> None:
    calls: list[int] = []
    keys = np.array([[1, 2], [3, 4], [1, 2], [3, 5], [1, 2]])

    def compute(row: int) -> int:
        calls.append(row)
        return int(keys[row].sum())

    memo: Memo[int] = Memo()
    assert memo.map(keys, compute) == [3, 7, 3, 8, 3]
    assert sorted(calls) == [0, 1, 3]  # one representative row per distinct key
    assert list(memo.map_array(keys[:2], compute, np.int64)) == [3, 7]
    assert len(calls) == 3  # remembered


def test_memo_of_floats_and_empty() -> None:
    memo: Memo[float] = Memo()
    values = np.array([0.1, 0.2, 0.1 + 0.2, 0.3])  # 0.1 + 0.2 != 0.3 in binary
    out = memo.map_array(values, lambda i: float(values[i] * 10))
    assert len(memo.outputs) == 4
    assert out[0] == 1.0
    assert memo.map_array(np.zeros(0), lambda i: 0.0).size == 0


def _floor_tenths(x: float) -> tuple[float, float]:
    """A step function like the planner's rounding: min(floor(10 x) / 10, 7.5), 0 below 1."""
    value = min(math.floor(x * 10 + 1e-9) / 10, 7.5)
    return x, (0.0 if value < 1.0 else value)


def test_step_table_exact_with_zero_tolerance() -> None:
    table = build_step_table(_floor_tenths, [0.0, 2.0, 5.0, 9.0], order=lambda v: v, tolerance=0)
    assert table.outputs[0] == 0.0
    assert table.outputs[-1] == 7.5
    assert len(table.outputs) == 67  # 0, then 1.0 .. 7.5 by 0.1 (66 values)
    # gaps between adjacent floats: every input is known
    assert all(
        np.nextafter(low, math.inf) == high
        for low, high in zip(table.lows, table.highs, strict=True)
    )
    x = np.random.default_rng(5).uniform(0, 9, 5000)
    x = np.concatenate([x, table.lows, table.highs, [0.0, 9.0]])
    index, known = table.lookup(x)
    assert known.all()
    assert [table.outputs[i] for i in index] == [_floor_tenths(v)[1] for v in x]


def test_step_table_gaps_and_range() -> None:
    table = build_step_table(_floor_tenths, [0.5, 8.0], order=lambda v: v, tolerance=1e-6)
    inside = (table.lows[3] + table.highs[3]) / 2
    index, known = table.lookup(np.array([inside, 0.4, 8.5, table.lows[3], table.highs[3]]))
    assert list(known) == [False, False, False, True, True]
    assert table.outputs[index[3]] == _floor_tenths(float(table.lows[3]))[1]
    assert table.outputs[index[4]] == _floor_tenths(float(table.highs[3]))[1]


def test_not_monotone_refused() -> None:
    with pytest.raises(ValueError, match="not monotone"):
        build_step_table(lambda x: (x, -math.floor(x)), [0.0, 3.0], order=lambda v: v)


def test_confirm_step_table() -> None:
    table = build_step_table(_floor_tenths, [0.0, 9.0], order=lambda v: v, tolerance=1e-10)
    same = confirm_step_table(table, _floor_tenths)
    assert same is not None
    assert same.outputs == table.outputs
    assert np.all(same.lows <= table.lows)
    assert np.all(same.highs >= table.highs)
    shifted = confirm_step_table(table, lambda x: _floor_tenths(x + 0.05))
    assert shifted is None
