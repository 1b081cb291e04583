"""Kidney BED against hand-computed values (Dale 1985 / Wessels 2008 formula)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from startrt.dosimetry.bed import bed_mono_exponential_gy, dose_for_bed_gy
from startrt.validation import InvalidInputError

KIDNEY = {"alpha_beta_gy": 2.6, "repair_half_time_h": 2.8}


def test_bed_by_hand() -> None:
    # T_eff 50 h: lambda = 0.693147/50 = 0.0138629 /h; mu = 0.693147/2.8 = 0.247553 /h
    # G = 0.0138629 / (0.247553 + 0.0138629) = 0.0530302
    # BED = 10 * (1 + 10 * 0.0530302 / 2.6) = 10 * 1.2039623 = 12.039623 Gy
    assert bed_mono_exponential_gy(10.0, 50.0, **KIDNEY) == pytest.approx(12.039623, rel=1e-6)


def test_bed_of_zero_dose_is_zero_and_inverse_of_zero_is_zero() -> None:
    assert bed_mono_exponential_gy(0.0, 50.0, **KIDNEY) == 0.0
    assert dose_for_bed_gy(0.0, 50.0, **KIDNEY) == 0.0


def test_inverse_by_hand() -> None:
    # factor = 0.0530302 / 2.6 = 0.0203962 /Gy; BED 12.039623 -> D = 10 (previous test, reversed):
    # 2 * 12.039623 / (1 + sqrt(1 + 4 * 0.0203962 * 12.039623)) = 24.079246 / 2.4079246 = 10.0
    assert dose_for_bed_gy(12.039623, 50.0, **KIDNEY) == pytest.approx(10.0, rel=1e-6)


@given(
    dose=st.floats(min_value=0.0, max_value=60.0),
    half_life=st.floats(min_value=5.0, max_value=159.5),
)
def test_inverse_round_trips(dose: float, half_life: float) -> None:
    bed = bed_mono_exponential_gy(dose, half_life, **KIDNEY)
    assert bed >= dose
    assert dose_for_bed_gy(bed, half_life, **KIDNEY) == pytest.approx(dose, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("dose_gy", {"dose_gy": -1.0, "effective_half_life_h": 50.0}),
        ("effective_half_life_h", {"dose_gy": 1.0, "effective_half_life_h": 0.0}),
    ],
)
def test_bad_input_names_field(field: str, kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInputError, match=field):
        bed_mono_exponential_gy(**kwargs, **KIDNEY)
