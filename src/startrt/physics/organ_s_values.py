"""Organ S values of 177Lu in the ICRP 110 adult reference phantoms (OpenDose).

Source: the OpenDose collaboration (opendose.org; Chauvin M, et al., "OpenDose: open-access
resource for nuclear medicine dosimetry", J Nucl Med 2020;61:1514-1519), Monte Carlo S values for
the ICRP Publication 110 (2009) adult male (AM) and female (AF) voxel phantoms. Shipped tables
(startrt/physics/data/opendose-s-values): one JSON file per source organ, rows [target region,
S in mGy/(MBq*s), statistical uncertainty, target mass in g]; targets keep OpenDose's names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Literal, NamedTuple, get_args

from startrt.validation import InvalidInputError

Phantom = Literal["AM", "AF"]

# project source-organ name -> (OpenDose file stem, OpenDose name of the organ as a target)
_SOURCES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "left_kidney": ("lu-177_left_kidney_c-m-p", "Left kidney C+M+P"),
        "right_kidney": ("lu-177_right_kidney_c-m-p", "Right kidney C+M+P"),
        "liver": ("lu-177_liver", "Liver"),
        "spleen": ("lu-177_spleen", "Spleen"),
    }
)
SOURCE_ORGANS: tuple[str, ...] = tuple(_SOURCES)


class OrganSValue(NamedTuple):
    """S value from a source organ to a target region, and the target's phantom mass."""

    s_mgy_per_mbq_s: float
    target_mass_g: float


def self_target_name(source: str) -> str:
    """OpenDose name of a source organ as a target (`left_kidney` -> "Left kidney C+M+P")."""
    return _checked_source(source)[1]


def organ_s_value(source: str, target: str, phantom: Phantom) -> OrganSValue:
    """S (mGy/(MBq*s)) from `source` (snake_case) to `target` (OpenDose name) in ICRP 110 AM/AF."""
    stem, _ = _checked_source(source)
    if phantom not in get_args(Phantom):
        raise InvalidInputError("phantom", phantom, "must be 'AM' or 'AF' (ICRP 110 adult)")
    text = (
        resources.files("startrt.physics.data")
        .joinpath("opendose-s-values", f"ICRP_110_{phantom}", f"{stem}.json")
        .read_text("utf-8")
    )
    for name, s_value, _uncertainty, mass in json.loads(text):
        if name == target:
            return OrganSValue(float(s_value), float(mass))
    raise InvalidInputError(
        "target", target, f"not a target region of the OpenDose {phantom} table (OpenDose names)"
    )


def _checked_source(source: str) -> tuple[str, str]:
    try:
        return _SOURCES[source]
    except KeyError:
        known = ", ".join(SOURCE_ORGANS)
        raise InvalidInputError("source", source, f"no S values shipped; known: {known}") from None
