"""Physical data of the therapy nuclide (177Lu) and radioactive decay.

Half-life and mean electron energy per decay: ICRP Publication 107 (2008), "Nuclear decay data for
dosimetric calculations", 177Lu; cross-checked with the DDEP/LNHB evaluation (T1/2 = 6.647 d).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from startrt.validation import finite_number, require_positive

JOULE_PER_KEV = 1.602176634e-16  # exact since the 2019 SI redefinition
SECONDS_PER_HOUR = 3600.0
DECAYS_PER_S_PER_MBQ = 1.0e6


@dataclass(frozen=True)
class Nuclide:
    """A radionuclide: half-life and mean energy emitted per decay as electrons (local energy)."""

    name: str
    half_life_h: float
    electron_energy_per_decay_kev: float

    @property
    def decay_constant_per_h(self) -> float:
        """lambda = ln 2 / T1/2, in 1/h."""
        return math.log(2.0) / self.half_life_h

    @property
    def local_deposition_gy_g_per_mbq_h(self) -> float:
        """Gy*g/(MBq*h): D[Gy] = TIA[MBq*h] * factor / m[g] (MIRD local deposition; energy
        [J] = E_kev * 1.602e-16 per decay, 3.6e9 decays per MBq*h, 1 g = 1e-3 kg)."""
        joule_per_mbq_h = (
            self.electron_energy_per_decay_kev
            * JOULE_PER_KEV
            * DECAYS_PER_S_PER_MBQ
            * SECONDS_PER_HOUR
        )
        return joule_per_mbq_h / 1.0e-3

    def decay_factor(self, elapsed_h: float) -> float:
        """Fraction of activity left after `elapsed_h` hours: exp(-lambda t); t may be negative."""
        hours = finite_number("elapsed_h", elapsed_h, "h")
        return math.exp(-self.decay_constant_per_h * hours)


LU177 = Nuclide(name="Lu-177", half_life_h=6.647 * 24.0, electron_energy_per_decay_kev=147.9)

NUCLIDES: dict[str, Nuclide] = {LU177.name: LU177}


def nuclide(name: str) -> Nuclide:
    """The nuclide called `name` ("Lu-177"); unknown names raise ValueError listing known ones."""
    try:
        return NUCLIDES[name]
    except KeyError:
        known = ", ".join(sorted(NUCLIDES))
        raise ValueError(f"nuclide={name!r}: unknown nuclide; known: {known}") from None


def effective_decay_constant_per_h(half_life_h: float) -> float:
    """ln 2 / T, in 1/h, for an effective (biological + physical) half-life in hours."""
    return math.log(2.0) / require_positive("effective_half_life_h", half_life_h, "h")
