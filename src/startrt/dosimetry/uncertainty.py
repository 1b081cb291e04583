"""Standard uncertainty of each VOI's TIA and absorbed dose, by the law of propagation of
uncertainty (JCGM 100:2008, GUM) as the EANM guidance applies it to the dosimetry chain (Gear et
al., Eur J Nucl Med Mol Imaging 2018;45:2456): D = TIA x dose factor, TIA the integral of
A(t) = counts / (calibration x recovery). All factors are multiplicative, so relative standard
uncertainties add in quadrature (first order; independent components).

`COMPONENTS` says, for each source, whether it enters the TIA and the dose and whether it is
shared by a patient's cycles (systematic: the same camera factor, correction method and dose
factors every cycle, so their errors do not average out over a course) or independent per cycle:
- calibration: the camera calibration factor; shared.
- partial_volume: the recovery or PSF correction (its sensitivity to the PSF width,
  `dosimetry.partial_volume`), zero without a correction; shared.
- time_activity_fit: the fit's TIA SD from its parameter covariance (delta method, `tac`), or
  `SINGLE_TIME_POINT_RELATIVE` for a single-time-point TIA; independent.
- volume: VOI delineation, a boundary uncertainty delta on the sphere of equal volume,
  u(V) = 4 pi r^2 delta = (36 pi V^2)^(1/3) delta (Gear 2018, sphere model); independent (each
  cycle's VOIs are drawn again). It enters the TIA (= concentration x V) but not the dose of a
  uniform organ: the dose is concentration x energy per mass, in which V cancels.
- dose_factor: the S value or voxel kernel for this patient's anatomy; shared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from startrt.validation import InvalidInputError, require_non_negative

SINGLE_TIME_POINT_RELATIVE = 0.10  # assumed: Hanscheid 2018 STP kidney TIA within ~10 %


@dataclass(frozen=True)
class ComponentKind:
    """Where a source of uncertainty enters, and whether a patient's cycles share it."""

    label: str
    in_tia: bool
    in_dose: bool
    shared_between_cycles: bool


COMPONENTS: dict[str, ComponentKind] = {
    "calibration": ComponentKind("camera calibration factor", True, True, True),
    "partial_volume": ComponentKind("partial-volume correction", True, True, True),
    "time_activity_fit": ComponentKind("time-activity fit", True, True, False),
    "volume": ComponentKind("VOI volume (delineation)", True, False, False),
    "dose_factor": ComponentKind("S value or voxel kernel", False, True, True),
}


@dataclass(frozen=True)
class UncertaintyBudget:
    """The site's stated relative standard uncertainties (fractions) and VOI boundary (mm)."""

    calibration_relative: float = 0.03
    dose_factor_relative: float = 0.05
    boundary_mm: float = 2.0

    def __post_init__(self) -> None:
        for name in ("calibration_relative", "dose_factor_relative"):
            if not 0 <= getattr(self, name) < 1:
                raise InvalidInputError(name, getattr(self, name), "must lie in [0, 1)")
        require_non_negative("boundary_mm", self.boundary_mm, "mm")


@dataclass(frozen=True)
class VoiUncertainty:
    """One VOI's relative uncertainty per component and the standard uncertainties."""

    relative: dict[str, float]
    tia_sd_mbq_h: float
    dose_sd_gy: float
    dose_shared_sd_gy: float  # the part shared between the patient's cycles
    dose_independent_sd_gy: float

    def to_json(self) -> dict[str, object]:
        return {
            "tia_combined_sd_mbq_h": self.tia_sd_mbq_h,  # tia_sd_mbq_h: the fit's alone
            "dose_sd_gy": self.dose_sd_gy,
            "dose_shared_sd_gy": self.dose_shared_sd_gy,
            "dose_independent_sd_gy": self.dose_independent_sd_gy,
            "relative_percent": {name: 100.0 * u for name, u in self.relative.items()},
        }


def volume_relative(volume_ml: float, boundary_mm: float) -> float:
    """u(V)/V for a boundary uncertainty on the sphere of equal volume (Gear 2018)."""
    volume_mm3 = require_non_negative("volume_ml", volume_ml, "mL") * 1000.0
    if volume_mm3 == 0:
        raise InvalidInputError("volume_ml", volume_ml, "must be > 0 mL")
    surface_mm2 = (36.0 * math.pi * volume_mm3**2) ** (1.0 / 3.0)
    return float(surface_mm2 * boundary_mm / volume_mm3)


def voi_uncertainty(
    *,
    tia_mbq_h: float,
    fit_tia_sd_mbq_h: float | None,
    dose_gy: float,
    volume_ml: float,
    partial_volume_relative: float,
    budget: UncertaintyBudget,
) -> VoiUncertainty:
    """Propagate the components of `COMPONENTS` to the VOI's TIA and dose; a missing fit SD
    (one time point) is `SINGLE_TIME_POINT_RELATIVE`."""
    if fit_tia_sd_mbq_h is None or tia_mbq_h <= 0:
        fit = SINGLE_TIME_POINT_RELATIVE
    else:
        fit = require_non_negative("tia_sd_mbq_h", fit_tia_sd_mbq_h, "MBq h") / tia_mbq_h
    relative = {
        "calibration": budget.calibration_relative,
        "partial_volume": require_non_negative(
            "partial_volume_relative", partial_volume_relative, ""
        ),
        "time_activity_fit": fit,
        "volume": volume_relative(volume_ml, budget.boundary_mm),
        "dose_factor": budget.dose_factor_relative,
    }

    def combined(*, in_tia: bool = False, shared: bool | None = None) -> float:
        return math.sqrt(
            sum(
                relative[name] ** 2
                for name, kind in COMPONENTS.items()
                if (kind.in_tia if in_tia else kind.in_dose)
                and (shared is None or kind.shared_between_cycles == shared)
            )
        )

    return VoiUncertainty(
        relative=relative,
        tia_sd_mbq_h=tia_mbq_h * combined(in_tia=True),
        dose_sd_gy=dose_gy * combined(),
        dose_shared_sd_gy=dose_gy * combined(shared=True),
        dose_independent_sd_gy=dose_gy * combined(shared=False),
    )
