"""Mass densities of tissues (g/mL) for converting VOI volumes and voxels to masses.

Source: ICRU Report 46 (1992), "Photon, electron, proton and neutron interaction data for body
tissues", adult tissue compositions, as adopted by ICRP Publication 89 (2002) reference values:
kidney 1.05, liver 1.06, spleen 1.06, red marrow 1.03, cortical bone 1.92 g/mL; soft tissue and
tumour 1.04 g/mL (soft tissue of the MIRD adult phantoms, Cristy & Eckerman, ORNL/TM-8381, 1987).
Water 1.00 g/mL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from startrt.validation import InvalidInputError, PlausibleRange

TISSUE_DENSITY_G_ML: Mapping[str, float] = MappingProxyType(
    {
        "kidney": 1.05,
        "liver": 1.06,
        "spleen": 1.06,
        "red_marrow": 1.03,
        "cortical_bone": 1.92,
        "soft_tissue": 1.04,
        "tumour": 1.04,
        "water": 1.00,
    }
)

# Any tissue a density map may hold: lung (~0.26 g/mL) to dense cortical bone (~1.92 g/mL), with
# margin; air (0.0012 g/mL) is refused because a dose per mass of air is meaningless.
DENSITY_G_ML = PlausibleRange(0.1, 3.0, "g/mL")

# VOI name (snake_case, project convention) -> tissue; tumours are `tumour` or `tumour_<n>`.
_VOI_TISSUE: Mapping[str, str] = MappingProxyType(
    {
        "left_kidney": "kidney",
        "right_kidney": "kidney",
        "kidney": "kidney",
        "kidneys": "kidney",
        "liver": "liver",
        "spleen": "spleen",
        "bone_marrow": "red_marrow",
        "red_marrow": "red_marrow",
        "soft_tissue": "soft_tissue",
    }
)
_TUMOUR_NAME = re.compile(r"tumou?r(_\w+)?")


def tissue_density_g_ml(tissue: str) -> float:
    """Density (g/mL) of a tissue named in TISSUE_DENSITY_G_ML (ICRU 46 / ICRP 89)."""
    try:
        return TISSUE_DENSITY_G_ML[tissue]
    except KeyError:
        known = ", ".join(sorted(TISSUE_DENSITY_G_ML))
        raise InvalidInputError("tissue", tissue, f"unknown tissue; known: {known}") from None


def voi_density_g_ml(voi: str) -> float:
    """Density (g/mL) of the tissue of a VOI (`left_kidney`, `liver`, `tumour_1`, ...)."""
    if _TUMOUR_NAME.fullmatch(voi):
        return TISSUE_DENSITY_G_ML["tumour"]
    try:
        return TISSUE_DENSITY_G_ML[_VOI_TISSUE[voi]]
    except KeyError:
        known = ", ".join([*sorted(_VOI_TISSUE), "tumour_<n>"])
        raise InvalidInputError(
            "voi", voi, f"no tissue density for this VOI; known: {known}"
        ) from None


def checked_density_g_ml(density_g_ml: float | npt.ArrayLike) -> float | npt.NDArray[np.float64]:
    """A density (scalar or array, g/mL) after checking every value against DENSITY_G_ML."""
    if np.ndim(density_g_ml) == 0:
        return DENSITY_G_ML.check("density_g_ml", density_g_ml)  # type: ignore[arg-type]
    values = np.asarray(density_g_ml, dtype=np.float64)
    bad = ~(np.isfinite(values) & (values >= DENSITY_G_ML.low) & (values <= DENSITY_G_ML.high))
    if bad.any():
        first = float(values[np.unravel_index(int(np.argmax(bad)), values.shape)])
        raise InvalidInputError(
            "density_g_ml",
            first,
            f"every voxel must lie in [{DENSITY_G_ML.low:g}, {DENSITY_G_ML.high:g}] g/mL",
        )
    return values
