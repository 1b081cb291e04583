"""Recovery-coefficient correction against hand-interpolated values."""

from __future__ import annotations

import math

import pytest

from startrt.imaging.recovery import RecoveryCurve, correct_activity
from startrt.validation import InvalidInputError

# NEMA-like spheres: 0.5, 1.2, 2.6, 5.6, 11.5, 26.5 mL (RC values of a typical 177Lu SPECT)
CURVE = RecoveryCurve((0.5, 1.2, 2.6, 5.6, 11.5, 26.5), (0.30, 0.45, 0.58, 0.70, 0.80, 0.88))


def test_at_calibration_points() -> None:
    assert CURVE.coefficient(5.6) == pytest.approx(0.70)
    correction = correct_activity(35.0, 5.6, CURVE)
    assert correction.corrected_mbq == pytest.approx(50.0)  # 35 / 0.70
    assert not correction.extrapolated


def test_log_linear_between_points() -> None:
    # V = 4 mL between 2.6 (0.58) and 5.6 (0.70): w = ln(4/2.6) / ln(5.6/2.6) = 0.430783/0.767255
    # = 0.561460 -> RC = 0.58 + 0.561460 * 0.12 = 0.647375
    w = math.log(4 / 2.6) / math.log(5.6 / 2.6)
    assert w == pytest.approx(0.561460, abs=1e-6)
    assert CURVE.coefficient(4.0) == pytest.approx(0.647375, abs=1e-6)


def test_held_at_the_ends_and_flagged() -> None:
    assert CURVE.coefficient(0.1) == pytest.approx(0.30)
    assert CURVE.coefficient(200.0) == pytest.approx(0.88)
    assert correct_activity(3.0, 0.1, CURVE).extrapolated


@pytest.mark.parametrize(
    ("volumes", "rcs", "field"),
    [
        ((1.0, 0.5), (0.4, 0.5), "volumes_ml"),
        ((1.0, 2.0), (0.4, 1.5), "coefficients"),
        ((1.0,), (0.4,), "coefficients"),
        ((-1.0, 2.0), (0.4, 0.5), "volumes_ml"),
    ],
)
def test_bad_curves(volumes: tuple[float, ...], rcs: tuple[float, ...], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        RecoveryCurve(volumes, rcs)
