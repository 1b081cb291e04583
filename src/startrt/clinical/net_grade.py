"""The WHO grade of a well-differentiated neuroendocrine tumour from its Ki-67 index.

Source: WHO Classification of Tumours, Digestive System Tumours, 5th ed. (2019), as summarized by
Nagtegaal ID et al., Histopathology 2020;76:182-188, table 2: NET G1 Ki-67 < 3 %, G2 3-20 %,
G3 > 20 % (the mitotic count, not kept here, can raise the grade; lung carcinoids are graded by
mitoses and necrosis instead, so their Ki-67 grade is indicative only).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from startrt.validation import InvalidInputError

G2_FROM_KI67_PERCENT = Decimal(3)
G3_ABOVE_KI67_PERCENT = Decimal(20)


class NetGrade(StrEnum):
    G1 = "G1"
    G2 = "G2"
    G3 = "G3"


def grade_from_ki67(ki67_percent: float) -> NetGrade:
    """G1 below 3 %, G2 from 3 % to 20 % inclusive, G3 above 20 % (compared exactly, as the
    decimal the number reads as: 2.999 is G1, 20.0 is G2, 20.01 is G3)."""
    if isinstance(ki67_percent, bool) or not isinstance(ki67_percent, int | float):
        raise InvalidInputError("ki67_percent", ki67_percent, "must be a number (%)")
    value = Decimal(repr(float(ki67_percent)))
    if not value.is_finite() or not Decimal(0) <= value <= Decimal(100):
        raise InvalidInputError("ki67_percent", ki67_percent, "must lie in [0, 100] %")
    if value < G2_FROM_KI67_PERCENT:
        return NetGrade.G1
    return NetGrade.G2 if value <= G3_ABOVE_KI67_PERCENT else NetGrade.G3
