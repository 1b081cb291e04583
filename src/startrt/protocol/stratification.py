"""The protocol's randomization strata (site x FDG-PET status by default) and a patient's one."""

from __future__ import annotations

from startrt.protocol.definition import Protocol
from startrt.protocol.randomization import StrataDesign, Stratum
from startrt.validation import InvalidInputError

FDG_LEVELS = ("negative", "positive")


def protocol_strata(protocol: Protocol) -> StrataDesign:
    """The strata design the protocol names: each factor with its levels, in protocol order."""
    levels = {"site": protocol.sites, "fdg": FDG_LEVELS}
    return StrataDesign({factor: levels[factor] for factor in protocol.randomization.strata})


def patient_stratum(protocol: Protocol, *, site: str, fdg_pet_positive: bool | None) -> Stratum:
    """The stratum of a patient of `site` with this FDG-PET result."""
    if "fdg" in protocol.randomization.strata and fdg_pet_positive is None:
        raise InvalidInputError("fdg_pet_positive", None, "FDG-PET status is a stratum factor")
    levels = {"site": site, "fdg": FDG_LEVELS[1] if fdg_pet_positive else FDG_LEVELS[0]}
    design = protocol_strata(protocol)
    return design.stratum_of({factor: levels[factor] for factor in design.factors}, "patient")
