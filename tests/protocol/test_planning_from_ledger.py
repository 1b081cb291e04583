"""The dosimetry ledger's cycles are the cycle planner's input."""

from __future__ import annotations

import pytest

from startrt.dosimetry.ledger import CycleDosimetry, DoseLedger, KidneyDose
from startrt.protocol.cycle_planning import CycleDose, plan_next_cycle
from startrt.protocol.definition import Protocol


def test_planner_reads_the_ledger(protocol: Protocol) -> None:
    ledger = DoseLedger(
        tuple(
            CycleDosimetry(number, activity, KidneyDose(left), KidneyDose(right))
            for number, activity, left, right in (
                (1, 7.5, 3.0, 4.0),
                (2, 7.5, 3.3, 4.1),
                (3, 6.0, 3.6, 4.6),
            )
        )
    )
    cycles = tuple(CycleDose(**row) for row in ledger.planner_cycles())
    plan = plan_next_cycle("dTOC", cycles, protocol)
    # mean kidney: 3.5 + 3.7 + 4.1 = 11.3 Gy; latest 4.1 Gy / 6.0 GBq; + 7.5 GBq -> 16.425 Gy
    assert plan.cumulative_kidney_gy == pytest.approx(11.3)
    assert plan.predicted_cumulative_kidney_gy == pytest.approx(16.425)
    assert plan.worse_kidney == "right"
