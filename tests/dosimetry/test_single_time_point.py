"""Single-time-point TIA (Hänscheid 2018, Madsen 2018) against hand-derived properties.

Hänscheid for A(t) = A0 exp(-l t), l = ln2 / T_eff, u = t / T_eff:
  estimate / truth = A0 exp(-l t) (2t / ln2) / (A0 / l) = 2 l t exp(-l t) / ln2
                   = 2 u ln2 2^(-u) / ln2 = u 2^(1 - u).
  u 2^(1-u) = 1 at u = 1 (1 * 2^0) and u = 2 (2 * 2^-1); nowhere else, since ln(u) + (1-u) ln2
  is concave. Maximum where d/du [ln u - u ln2] = 1/u - ln2 = 0: u = 1/ln2 = 1.4427,
  ratio 1.4427 * 2^(-0.4427) = 2 / (e ln2) = 1.06148 (6.1 % high). The ratio falls to 0.9 at
  u = 0.7644 and u = 2.4373 (roots of u 2^(1-u) = 0.9); so within 10 % for
  0.77 <= u <= 2.43, e.g. 0.77 * 2^0.23 = 0.77 * 1.17283 = 0.90308 and
  2.43 * 2^-1.43 = 2.43 * 0.37115 = 0.90190; outside at u = 0.75: 0.75 * 2^0.25 = 0.75 * 1.18921
  = 0.89191 and u = 2.5: 2.5 * 2^-1.5 = 2.5 * 0.35355 = 0.88388.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from startrt.dosimetry.single_time_point import hanscheid_tia_mbq_h, madsen_tia_mbq_h
from startrt.validation import InvalidInputError

LN2 = math.log(2.0)


def hanscheid_ratio(u: float, half_life_h: float = 50.0) -> float:
    """Hänscheid estimate / true TIA for A0 = 100 MBq, T_eff = half_life_h, t = u T_eff."""
    a_t = 100.0 * 2.0 ** (-u)
    return hanscheid_tia_mbq_h(a_t, u * half_life_h) / (100.0 * half_life_h / LN2)


def test_hanscheid_by_hand() -> None:
    # 100 MBq at 96 h: 100 * 2 * 96 / 0.693147 = 27699.74 MBq*h
    assert hanscheid_tia_mbq_h(100.0, 96.0) == pytest.approx(27699.74, rel=1e-6)


@pytest.mark.parametrize("u", [1.0, 2.0])
def test_hanscheid_exact_at_one_and_two_effective_half_lives(u: float) -> None:
    # t = 50 h: A = 50 MBq, 50 * 100 / ln2 = 7213.48 = 100 * 50 / ln2 (truth)
    # t = 100 h: A = 25 MBq, 25 * 200 / ln2 = 7213.48
    assert hanscheid_ratio(u) == pytest.approx(1.0, rel=1e-12)


def test_hanscheid_largest_overestimate() -> None:
    assert hanscheid_ratio(1.0 / LN2) == pytest.approx(2.0 / (math.e * LN2), rel=1e-12)
    assert 2.0 / (math.e * LN2) == pytest.approx(1.06148, rel=1e-5)


def test_hanscheid_within_ten_percent_between_077_and_243_effective_half_lives() -> None:
    for u in np.linspace(0.77, 2.43, 167):
        assert abs(hanscheid_ratio(float(u)) - 1.0) <= 0.1
    assert hanscheid_ratio(0.77) == pytest.approx(0.90308, rel=1e-4)
    assert hanscheid_ratio(2.43) == pytest.approx(0.90190, rel=1e-4)
    assert hanscheid_ratio(0.75) == pytest.approx(0.89191, rel=1e-4)
    assert hanscheid_ratio(2.5) == pytest.approx(0.88388, rel=1e-4)


def test_hanscheid_at_96_h_for_a_50_h_kidney() -> None:
    # u = 96 / 50 = 1.92: 1.92 * 2^-0.92 = 1.92 * 0.528509 = 1.01474 (1.5 % high)
    assert hanscheid_ratio(1.92) == pytest.approx(1.014737, rel=1e-6)


def test_madsen_exact_for_mono_exponential_with_the_true_rate() -> None:
    # A0 = 100, T_eff = 50 h, t = 96 h: A(96) = 100 * 2^-1.92 = 26.42545 MBq
    # exp(k t) = 2^1.92 = 3.784231; 26.42545 * 3.784231 / 0.0138629 = 100 / 0.0138629 = 7213.475
    assert madsen_tia_mbq_h(26.42545101, 96.0, 50.0) == pytest.approx(7213.475, rel=1e-6)


def test_madsen_by_hand_with_a_population_half_life() -> None:
    # 30 MBq at 96 h, T_eff 60 h: k = 0.693147 / 60 = 0.0115525 /h; exp(k t) = 2^1.6 = 3.031433
    # 30 * 3.031433 / 0.0115525 = 7872.18 MBq*h
    assert madsen_tia_mbq_h(30.0, 96.0, 60.0) == pytest.approx(7872.18, rel=1e-6)


@pytest.mark.parametrize(
    ("field", "call"),
    [
        ("activity_mbq", lambda: hanscheid_tia_mbq_h(-1.0, 96.0)),
        ("time_h", lambda: hanscheid_tia_mbq_h(10.0, 0.0)),
        ("time_h", lambda: madsen_tia_mbq_h(10.0, math.inf, 50.0)),
        ("effective_half_life_h", lambda: madsen_tia_mbq_h(10.0, 96.0, 0.0)),
        ("effective_half_life_h", lambda: madsen_tia_mbq_h(10.0, 96.0, 170.0)),
    ],
)
def test_bad_input_names_field(field: str, call: object) -> None:
    with pytest.raises(InvalidInputError, match=field):
        call()  # type: ignore[operator]


def test_madsen_accepts_the_physical_half_life_itself() -> None:
    # T_eff = 159.528 h (no biological clearance): 10 * 2^(96/159.528) / (ln2/159.528)
    # = 10 * 2^0.601775 * 230.1503 = 10 * 1.517583 * 230.1503 = 3492.72 MBq*h
    assert madsen_tia_mbq_h(10.0, 96.0, 159.528) == pytest.approx(3492.72, rel=1e-5)
