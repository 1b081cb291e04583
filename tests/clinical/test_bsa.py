"""Body surface area against hand-computed values (arithmetic in the comments)."""

from __future__ import annotations

import math

import pytest

from startrt.clinical.bsa import dubois_bsa_m2, mosteller_bsa_m2
from startrt.validation import InvalidInputError


@pytest.mark.parametrize(
    ("height_cm", "weight_kg", "expected_m2"),
    [
        # 70^0.425 = exp(0.425 * 4.2484952) = exp(1.8056105) = 6.0836843
        # 170^0.725 = exp(0.725 * 5.1357984) = exp(3.7234539) = 41.4071622
        # 0.007184 * 6.0836843 * 41.4071622 = 1.8097078
        # second method, log10 form: log10 BSA = log10 0.007184 + 0.425 log10 70 + 0.725 log10 170
        # = -2.1436337 + 0.425*1.8450980 + 0.725*2.2304489 = 0.2576085 -> 10^0.2576085 = 1.8097078
        (170.0, 70.0, 1.8097078),
        # 80^0.425 = exp(0.425 * 4.3820266) = exp(1.8623613) = 6.4389232
        # 180^0.725 = exp(0.725 * 5.1929569) = exp(3.7648937) = 43.1591185
        # 0.007184 * 6.4389232 * 43.1591185 = 1.9964210
        (180.0, 80.0, 1.9964210),
        # 50^0.425 = exp(0.425 * 3.9120230) = exp(1.6626098) = 5.2730544
        # 160^0.725 = exp(0.725 * 5.0751738) = exp(3.6795010) = 39.6266161
        # 0.007184 * 5.2730544 * 39.6266161 = 1.5011205
        (160.0, 50.0, 1.5011205),
    ],
)
def test_dubois_hand_computed(height_cm: float, weight_kg: float, expected_m2: float) -> None:
    assert dubois_bsa_m2(height_cm, weight_kg) == pytest.approx(expected_m2, rel=1e-6)


@pytest.mark.parametrize(
    ("height_cm", "weight_kg", "expected_m2"),
    [
        (180.0, 80.0, 2.0),  # sqrt(180 * 80 / 3600) = sqrt(14400 / 3600) = sqrt(4) = 2
        (170.0, 70.0, 1.8181187),  # sqrt(11900 / 3600) = sqrt(3.3055556) = 1.8181187
        (160.0, 50.0, 1.4907120),  # sqrt(8000 / 3600) = sqrt(2.2222222) = 1.4907120
        (225.0, 144.0, 3.0),  # sqrt(32400 / 3600) = sqrt(9) = 3
    ],
)
def test_mosteller_hand_computed(height_cm: float, weight_kg: float, expected_m2: float) -> None:
    assert mosteller_bsa_m2(height_cm, weight_kg) == pytest.approx(expected_m2, rel=1e-6)


def test_units_are_cm_and_kg_not_m_and_lb() -> None:
    # 1.80 m entered as height_cm is refused; 176 lb (= 80 kg) would give a wrong but plausible
    # number, so only the height mix-up can be caught.
    with pytest.raises(InvalidInputError) as error:
        mosteller_bsa_m2(1.80, 80.0)
    assert error.value.field == "height_cm"


@pytest.mark.parametrize("bsa", [dubois_bsa_m2, mosteller_bsa_m2])
@pytest.mark.parametrize(
    ("height_cm", "weight_kg", "field"),
    [
        (99.0, 70.0, "height_cm"),
        (251.0, 70.0, "height_cm"),
        (math.nan, 70.0, "height_cm"),
        (170.0, 19.0, "weight_kg"),
        (170.0, 351.0, "weight_kg"),
        (170.0, "70", "weight_kg"),
        (170.0, True, "weight_kg"),
    ],
)
def test_bad_input_names_the_field(
    bsa: object, height_cm: object, weight_kg: object, field: str
) -> None:
    assert callable(bsa)
    with pytest.raises(InvalidInputError) as error:
        bsa(height_cm, weight_kg)
    assert error.value.field == field


@pytest.mark.parametrize("bsa", [dubois_bsa_m2, mosteller_bsa_m2])
def test_range_limits_are_accepted(bsa: object) -> None:
    assert callable(bsa)
    assert bsa(100.0, 20.0) > 0
    assert bsa(250.0, 350.0) > 0
