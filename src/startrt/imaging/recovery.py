"""Recovery-coefficient (partial-volume) correction for small volumes from a calibration curve.

A SPECT system measures only a fraction RC(V) of the activity in a small object (spill-out by
limited resolution). The curve RC(V) comes from phantom measurements of spheres of known volume
and activity; the activity of a VOI of volume V is corrected as A_true = A_measured / RC(V).
Source: Dewaraja et al., MIRD Pamphlet No. 23, J Nucl Med 2012;53:1310 (section on partial-volume
correction); Ljungberg et al., MIRD Pamphlet No. 26, J Nucl Med 2016;57:151 (177Lu SPECT).
Between calibration points RC is interpolated linearly in log(volume); outside them it is held
at the end values (no extrapolation), and a VOI smaller than the smallest sphere is flagged.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from startrt.validation import InvalidInputError, require_positive


@dataclass(frozen=True)
class RecoveryCurve:
    """Measured recovery coefficients (0 < RC <= 1.2) of spheres with increasing volumes (mL)."""

    volumes_ml: tuple[float, ...]
    coefficients: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.volumes_ml) != len(self.coefficients) or len(self.volumes_ml) < 2:
            raise InvalidInputError(
                "coefficients", self.coefficients, "need one RC per volume, at least two points"
            )
        volumes = [require_positive("volumes_ml", v, "mL") for v in self.volumes_ml]
        if any(b <= a for a, b in itertools.pairwise(volumes)):
            raise InvalidInputError("volumes_ml", self.volumes_ml, "must increase strictly")
        for rc in self.coefficients:
            if not 0 < rc <= 1.2:
                raise InvalidInputError("coefficients", rc, "each RC must lie in (0, 1.2]")

    def coefficient(self, volume_ml: float) -> float:
        """RC at `volume_ml`, log-linear between points, held constant beyond the ends."""
        volume = require_positive("volume_ml", volume_ml, "mL")
        return float(
            np.interp(math.log(volume), np.log(self.volumes_ml), np.asarray(self.coefficients))
        )

    def covers(self, volume_ml: float) -> bool:
        """Whether `volume_ml` lies within the calibrated range."""
        return self.volumes_ml[0] <= volume_ml <= self.volumes_ml[-1]


@dataclass(frozen=True)
class RecoveryCorrection:
    measured_mbq: float
    corrected_mbq: float
    coefficient: float
    extrapolated: bool


def correct_activity(
    measured_mbq: float, volume_ml: float, curve: RecoveryCurve
) -> RecoveryCorrection:
    """A_true = A_measured / RC(V); `extrapolated` when V is outside the calibrated volumes."""
    rc = curve.coefficient(volume_ml)
    return RecoveryCorrection(
        measured_mbq=measured_mbq,
        corrected_mbq=measured_mbq / rc,
        coefficient=rc,
        extrapolated=not curve.covers(volume_ml),
    )
