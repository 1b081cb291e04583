"""Tissue densities (ICRU 46 / ICRP 89) and the density checks."""

from __future__ import annotations

import numpy as np
import pytest

from startrt.physics.tissue import checked_density_g_ml, tissue_density_g_ml, voi_density_g_ml
from startrt.validation import InvalidInputError


@pytest.mark.parametrize(
    ("tissue", "density"),
    [("kidney", 1.05), ("liver", 1.06), ("spleen", 1.06), ("soft_tissue", 1.04), ("tumour", 1.04)],
)
def test_published_densities(tissue: str, density: float) -> None:
    # ICRP 89 / ICRU 46 values as fixed in the dosimetry plan
    assert tissue_density_g_ml(tissue) == density


@pytest.mark.parametrize(
    ("voi", "density"),
    [
        ("left_kidney", 1.05),
        ("right_kidney", 1.05),
        ("liver", 1.06),
        ("spleen", 1.06),
        ("bone_marrow", 1.03),
        ("tumour_1", 1.04),
        ("tumour_12", 1.04),
        ("tumour", 1.04),
    ],
)
def test_voi_names_map_to_their_tissue(voi: str, density: float) -> None:
    assert voi_density_g_ml(voi) == density


def test_unknown_names_are_refused() -> None:
    with pytest.raises(InvalidInputError) as error:
        voi_density_g_ml("pancreas")
    assert error.value.field == "voi"
    with pytest.raises(InvalidInputError) as error:
        tissue_density_g_ml("bone")
    assert error.value.field == "tissue"


def test_density_limits_are_inclusive() -> None:
    assert checked_density_g_ml(0.1) == 0.1
    assert checked_density_g_ml(3.0) == 3.0
    assert np.array_equal(checked_density_g_ml([[0.1, 3.0]]), [[0.1, 3.0]])


@pytest.mark.parametrize("bad", [0.099, 3.01, float("nan"), -1.0, [1.0, 0.0012], [1.0, np.inf]])
def test_implausible_densities_are_refused(bad: object) -> None:
    with pytest.raises(InvalidInputError) as error:
        checked_density_g_ml(bad)  # type: ignore[arg-type]
    assert error.value.field == "density_g_ml"
