"""The cumulative dose ledger against hand sums; its output feeds the protocol planner."""

from __future__ import annotations

import pytest

from startrt.dosimetry.ledger import (
    CycleDosimetry,
    DoseLedger,
    KidneyDose,
    ledger_from_records,
    ledger_records,
)
from startrt.validation import InvalidInputError


def cycle(number: int, left: float, right: float, activity: float = 7.5) -> CycleDosimetry:
    return CycleDosimetry(
        cycle=number,
        activity_gbq=activity,
        left_kidney=KidneyDose(left, bed_gy=left * 1.1),
        right_kidney=KidneyDose(right, bed_gy=right * 1.1),
        kidney_effective_half_life_h=50.0,
    )


# left / right kidney Gy per cycle; cycle 3 had a reduced 6.0 GBq
LEDGER = DoseLedger((cycle(1, 3.0, 4.0), cycle(2, 3.3, 4.1), cycle(3, 3.6, 4.6, activity=6.0)))


def test_cumulative_doses_by_hand() -> None:
    # left 3.0 + 3.3 + 3.6 = 9.9; right 4.0 + 4.1 + 4.6 = 12.7; mean (9.9 + 12.7) / 2 = 11.3
    assert LEDGER.cumulative_gy("left") == pytest.approx(9.9)
    assert LEDGER.cumulative_gy("right") == pytest.approx(12.7)
    assert LEDGER.cumulative_gy("mean") == pytest.approx(11.3)
    assert LEDGER.cumulative_gy("worse") == pytest.approx(12.7)
    assert LEDGER.worse_kidney() == "right"
    assert LEDGER.cumulative_bed_gy("mean") == pytest.approx(11.3 * 1.1)


def test_gy_per_gbq_and_prediction_by_hand() -> None:
    # cycle 3: mean (3.6 + 4.6) / 2 = 4.1 Gy at 6.0 GBq = 0.68333 Gy/GBq
    assert LEDGER.cycles[2].gy_per_gbq("mean") == pytest.approx(0.683333, abs=1e-6)
    # a further 7.5 GBq: 11.3 + 0.683333 * 7.5 = 16.425 Gy; worse (right): 12.7 + 4.6/6*7.5 = 18.45
    assert LEDGER.predicted_cumulative_gy(7.5) == pytest.approx(16.425)
    assert LEDGER.predicted_cumulative_gy(7.5, "worse") == pytest.approx(18.45)


def test_rows_accumulate() -> None:
    rows = LEDGER.rows()
    assert [row["cumulative_mean_gy"] for row in rows] == pytest.approx([3.5, 7.2, 11.3])


def test_refuses_gaps_and_implausible_values() -> None:
    with pytest.raises(InvalidInputError, match=r"cycles\[1\]\.cycle"):
        DoseLedger((cycle(1, 3.0, 4.0), cycle(3, 3.0, 4.0)))
    with pytest.raises(InvalidInputError, match="activity_gbq"):
        cycle(1, 3.0, 4.0, activity=-7.5)
    with pytest.raises(InvalidInputError, match="dose_gy"):
        KidneyDose(-1.0)
    with pytest.raises(InvalidInputError, match="bed_gy"):
        KidneyDose(5.0, bed_gy=4.0)
    with pytest.raises(InvalidInputError, match="cycles"):
        DoseLedger().predicted_cumulative_gy(7.5)


def test_stored_records_round_trip_and_bad_records_are_named() -> None:
    again = ledger_from_records(ledger_records(LEDGER))
    assert again == LEDGER
    records = ledger_records(LEDGER)
    records[1]["left_kidney_dose_gy"] = "a lot"
    with pytest.raises(InvalidInputError, match=r"cycles\[1\]\.left_kidney_dose_gy"):
        ledger_from_records(records)
