"""WHO 2019 grade from Ki-67 (Nagtegaal 2020, table 2): the boundaries worked by hand."""

import pytest

from startrt.clinical.net_grade import NetGrade, grade_from_ki67
from startrt.validation import InvalidInputError


@pytest.mark.parametrize(
    ("ki67", "grade"),
    [
        (0, NetGrade.G1),
        (2.999, NetGrade.G1),
        (3, NetGrade.G2),
        (3.0, NetGrade.G2),
        (20, NetGrade.G2),
        (20.0, NetGrade.G2),
        (20.01, NetGrade.G3),
        (55, NetGrade.G3),
        (100, NetGrade.G3),
    ],
)
def test_grade_boundaries(ki67: float, grade: NetGrade) -> None:
    assert grade_from_ki67(ki67) is grade


@pytest.mark.parametrize("bad", [-0.1, 100.5, True, "12", float("nan")])
def test_impossible_ki67_is_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="ki67_percent"):
        grade_from_ki67(bad)  # type: ignore[arg-type]
