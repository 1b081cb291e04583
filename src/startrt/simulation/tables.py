"""Engine decisions on arrays without re-implementing them: memoised calls and step tables.

Two ways to apply a scalar decision function of the protocol engine to many patients at once,
both exact (the engine decides; the table only remembers what it said):

- `Memo`: the engine is called once per distinct input (values reported at laboratory
  precision repeat a lot) or once per distinct key on a representative patient, when the code
  shows the output depends on the inputs only through that key.
- `StepTable`: a function of one continuous number that is a monotone step function (the
  planner's next activity as a function of the activity the kidney budget allows; the
  capecitabine renal factor as a function of CrCl). Its steps are located by calling the engine
  on a grid and bisecting every change of output down to a gap narrower than `tolerance`. By
  monotonicity the output is known exactly everywhere outside the gaps; a value that falls
  inside a gap (or outside the probed range) is reported unknown, and the caller asks the
  engine directly for that patient.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from startrt.simulation.arrays import Floats

T = TypeVar("T", bound=Hashable)
_MISSING = object()


class Memo(Generic[T]):
    """Remember the engine's output per key; `map` answers many keys with one call per new
    distinct key. `compute(row)` gets the index of a representative row with that key."""

    def __init__(self) -> None:
        self.outputs: dict[tuple[Any, ...], T] = {}

    def distinct(
        self, keys: NDArray[Any], compute: Callable[[int], T]
    ) -> tuple[list[T], NDArray[np.intp]]:
        """The outputs of the distinct rows of `keys` ((n,) or (n, m) array) and, per row,
        the index of its output."""
        if not len(keys):
            return [], np.zeros(0, dtype=np.intp)
        table = keys.reshape(len(keys), -1)
        if table.shape[1] == 1:
            _, first, inverse = np.unique(table[:, 0], return_index=True, return_inverse=True)
        else:
            codes = np.zeros(len(keys), dtype=np.int64)
            for column in table.T:  # mixed-radix code of each row (1-D sorts only)
                levels, level = np.unique(column, return_inverse=True)
                if codes.max(initial=0) >= 2**62 // max(len(levels), 1):
                    codes = np.unique(codes, return_inverse=True)[1].reshape(-1)
                codes = codes * len(levels) + level.reshape(-1)
            _, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
        outputs = self.outputs
        answers: list[T] = []
        for representative, row in zip(first.tolist(), table[first].tolist(), strict=True):
            key = tuple(row)
            answer = outputs.get(key, _MISSING)
            if answer is _MISSING:
                answer = outputs[key] = compute(representative)
            answers.append(answer)  # type: ignore[arg-type]
        return answers, inverse.reshape(-1)

    def map(self, keys: NDArray[Any], compute: Callable[[int], T]) -> list[T]:
        """The output for every row of `keys`."""
        answers, inverse = self.distinct(keys, compute)
        return [answers[i] for i in inverse]

    def map_array(
        self, keys: NDArray[Any], compute: Callable[[int], T], dtype: type = np.float64
    ) -> NDArray[Any]:
        """The output for every row of `keys`, as an array of `dtype` (one row per key row
        when the outputs are tuples)."""
        answers, inverse = self.distinct(keys, compute)
        return np.asarray(answers, dtype=dtype)[inverse]


Probe = Callable[[float], tuple[float, T]]


@dataclass(frozen=True)
class StepTable(Generic[T]):
    """A monotone step function known exactly outside narrow gaps.

    outputs[0] holds on [bottom, lows[0]], outputs[i] on [highs[i-1], lows[i]], outputs[-1] on
    [highs[-1], top]; inside a gap (lows[i], highs[i]) or outside [bottom, top] it is unknown.
    `points[i]` is an input known to give outputs[i] (a representative).
    """

    bottom: float
    top: float
    lows: Floats
    highs: Floats
    outputs: tuple[T, ...]
    points: tuple[float, ...]

    def lookup(self, x: Floats) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Index into `outputs` of each x, and whether it is known (False: ask the engine)."""
        values = np.asarray(x, dtype=np.float64)
        index = np.searchsorted(self.highs, values, side="right")
        upper = np.append(self.lows, self.top)[index]
        known = (values >= self.bottom) & (values <= upper)
        return index.astype(np.int64), known


def _refine(
    probe: Probe[T],
    order: Callable[[T], float],
    low: tuple[float, float, T],
    high: tuple[float, float, T],
    tolerance: float,
) -> list[tuple[tuple[float, float, T], tuple[float, float, T]]]:
    """Gaps between two probes (target, x, output), found by bisection on the target."""
    (t_low, x_low, out_low), (t_high, x_high, out_high) = low, high
    if out_low == out_high:
        return []
    if order(out_low) > order(out_high):
        raise ValueError(f"not monotone between x={x_low!r} and x={x_high!r}")
    t_mid = (t_low + t_high) / 2
    if x_high - x_low <= tolerance * max(1.0, abs(x_low)) or t_mid in (t_low, t_high):
        return [(low, high)]
    x_mid, out_mid = probe(t_mid)
    if not x_low <= x_mid <= x_high:
        raise ValueError(f"the probe is not monotone at target {t_mid!r}")
    middle = (t_mid, x_mid, out_mid)
    return _refine(probe, order, low, middle, tolerance) + _refine(
        probe, order, middle, high, tolerance
    )


def build_step_table(
    probe: Probe[T],
    targets: Sequence[float],
    order: Callable[[T], float],
    tolerance: float = 1e-9,
) -> StepTable[T]:
    """Tabulate the engine's step function from probes on an increasing grid of targets.

    `probe(target)` calls the engine on an input near `target` and returns (x, output) with x
    the exact input value the engine used; `order` ranks outputs (the function must be
    non-decreasing in that rank). Raises ValueError when the probes are not monotone.
    """
    probes = [(t, *probe(t)) for t in targets]
    for (_, x0, out0), (_, x1, out1) in itertools.pairwise(probes):
        if not x0 < x1 or order(out0) > order(out1):
            raise ValueError(f"not monotone between x={x0!r} and x={x1!r}")
    gaps = [
        gap
        for left, right in itertools.pairwise(probes)
        for gap in _refine(probe, order, left, right, tolerance)
    ]
    outputs = (probes[0][2], *(high[2] for _, high in gaps))
    points = (probes[0][1], *(high[1] for _, high in gaps))
    return StepTable(
        bottom=probes[0][1],
        top=probes[-1][1],
        lows=np.array([low[1] for low, _ in gaps], dtype=np.float64),
        highs=np.array([high[1] for _, high in gaps], dtype=np.float64),
        outputs=outputs,
        points=points,
    )


def confirm_step_table(
    table: StepTable[T], probe: Probe[T], margin: float = 1e-8
) -> StepTable[T] | None:
    """The same steps for another engine input (e.g. one more cycle given), confirmed by
    probing just outside each gap and at both ends; None when any probe disagrees.

    By monotonicity, agreement at both sides of every gap fixes the output on every interval;
    the confirmed table's gaps reach from probe to probe (slightly wider than the original)."""
    x_bottom, out_bottom = probe(table.bottom)
    x_top, out_top = probe(table.top)
    if out_bottom != table.outputs[0] or out_top != table.outputs[-1]:
        return None
    lows, highs = [], []
    for i, (low, high) in enumerate(zip(table.lows, table.highs, strict=True)):
        x_low, out_low = probe(float(low) - margin * max(1.0, abs(float(low))))
        x_high, out_high = probe(float(high) + margin * max(1.0, abs(float(high))))
        if out_low != table.outputs[i] or out_high != table.outputs[i + 1] or x_low >= x_high:
            return None
        lows.append(x_low)
        highs.append(x_high)
    points = (x_bottom, *highs)
    return StepTable(x_bottom, x_top, np.array(lows), np.array(highs), table.outputs, tuple(points))
