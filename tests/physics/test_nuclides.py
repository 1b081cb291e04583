"""177Lu physical data against the published figures in REFERENCE.md (ICRP 107 / DDEP)."""

from __future__ import annotations

import math

import pytest

from startrt.physics.nuclides import LU177, effective_decay_constant_per_h, nuclide
from startrt.validation import InvalidInputError


def test_lu177_half_life_and_decay_constant() -> None:
    # 6.647 d * 24 h/d = 159.528 h; ln2 / 159.528 = 0.0043450 /h (REFERENCE.md: 0.004345 /h)
    assert LU177.half_life_h == pytest.approx(159.528, abs=1e-9)
    assert LU177.decay_constant_per_h == pytest.approx(0.004345, rel=1e-4)


def test_local_deposition_factor_matches_published_value() -> None:
    # 147.9 keV * 1.602e-16 J/keV = 2.3696e-14 J per decay; * 3.6e9 decays per MBq*h
    # = 8.5306e-5 J per MBq*h; per gram (1e-3 kg): 0.085306 Gy*g/(MBq*h) (REFERENCE.md: 0.08531)
    assert LU177.local_deposition_gy_g_per_mbq_h == pytest.approx(0.08531, rel=1e-4)


def test_decay_factor_after_one_and_two_half_lives() -> None:
    assert LU177.decay_factor(LU177.half_life_h) == pytest.approx(0.5)
    assert LU177.decay_factor(2 * LU177.half_life_h) == pytest.approx(0.25)
    assert LU177.decay_factor(0.0) == 1.0
    # decay correction backwards (a time before the reference) grows the activity
    assert LU177.decay_factor(-LU177.half_life_h) == pytest.approx(2.0)


def test_decay_factor_refuses_non_numbers() -> None:
    with pytest.raises(InvalidInputError, match="elapsed_h"):
        LU177.decay_factor(math.nan)


def test_effective_decay_constant() -> None:
    # T_eff 50 h: ln2/50 = 0.0138629 /h
    assert effective_decay_constant_per_h(50.0) == pytest.approx(0.0138629, rel=1e-5)
    with pytest.raises(InvalidInputError, match="effective_half_life_h"):
        effective_decay_constant_per_h(0.0)


def test_unknown_nuclide_is_named() -> None:
    assert nuclide("Lu-177") is LU177
    with pytest.raises(ValueError, match="Y-90"):
        nuclide("Y-90")
