"""OpenDose ICRP 110 organ S values against rows of the published tables."""

from __future__ import annotations

import pytest

from startrt.physics.organ_s_values import (
    SOURCE_ORGANS,
    OrganSValue,
    organ_s_value,
    self_target_name,
)
from startrt.validation import InvalidInputError


def test_left_kidney_self_am() -> None:
    # OpenDose AM, source left kidney: "Left kidney C+M+P" 1.5662e-4 mGy/(MBq*s), 152.983 g
    s_value, mass_g = organ_s_value("left_kidney", "Left kidney C+M+P", "AM")
    assert (s_value, mass_g) == (1.5662e-4, 152.983)


def test_cross_and_female_rows() -> None:
    assert organ_s_value("left_kidney", "RKidney + LKidney", "AM") == OrganSValue(7.706e-5, 309.994)
    assert organ_s_value("right_kidney", "Right kidney C+M+P", "AF") == (1.9083e-4, 125.530)
    assert organ_s_value("liver", "Liver", "AM") == (1.3713e-5, 1799.776)
    assert organ_s_value("spleen", "Left kidney C+M+P", "AF") == (4.2404e-7, 149.483)


def test_self_target_names() -> None:
    assert SOURCE_ORGANS == ("left_kidney", "right_kidney", "liver", "spleen")
    assert self_target_name("right_kidney") == "Right kidney C+M+P"
    assert self_target_name("spleen") == "Spleen"


def test_self_s_times_mass_similar_across_phantoms() -> None:
    # self-dose is mostly electrons: S * m nearly the same for both kidneys in AM and AF
    # (1.5662e-4 * 152.983 = 0.023960; 1.9083e-4 * 125.530 = 0.023955)
    products = [
        s * m
        for s, m in (
            organ_s_value(organ, self_target_name(organ), phantom)
            for organ in ("left_kidney", "right_kidney")
            for phantom in ("AM", "AF")
        )
    ]
    assert max(products) / min(products) < 1.01


@pytest.mark.parametrize(
    ("source", "target", "phantom", "field"),
    [
        ("pancreas", "Pancreas", "AM", "source"),
        ("left_kidney", "Left kidney", "AM", "target"),
        ("left_kidney", "Left kidney C+M+P", "XX", "phantom"),
    ],
)
def test_refuses_unknown_names(source: str, target: str, phantom: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        organ_s_value(source, target, phantom)  # type: ignore[arg-type]
    assert error.value.field == field
