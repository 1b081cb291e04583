"""A site's SPECT calibration file (TOML): the camera, its calibration factor and resolution.

    camera = "Siemens Symbia Intevo, MEGP, 208 keV +-10 %"
    calibration_cps_per_mbq = 9.6   # counts/s per MBq of 177Lu in the site's energy windows
    psf_fwhm_mm = 12.0              # FWHM of the Gaussian PSF of the reconstructed images
    measured = 2025-01-14           # optional: date of the measurement
    calibration_uncertainty_percent = 3.0   # optional: standard uncertainties of the
    dose_factor_uncertainty_percent = 5.0   # factor, of the S values / kernel, and of the
    voi_boundary_mm = 2.0                   # VOI boundary (`dosimetry.uncertainty`)

The calibration factor converts count images to activity (MIRD Pamphlet No. 26, Ljungberg et
al., J Nucl Med 2016;57:151); the PSF FWHM is that of the reconstructed images with the site's
reconstruction settings (e.g. a line or sphere source fitted with a Gaussian), which the
partial-volume correction (`dosimetry.partial_volume`) needs. Unknown keys are refused (a typo
would silently drop a value); errors name the field, the value and the rule, and the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from startrt.validation import InvalidInputError, PlausibleRange, require_positive

PSF_FWHM_MM = PlausibleRange(1.0, 50.0, "mm")  # SPECT resolution: ~5-25 mm in practice
UNCERTAINTY_PERCENT = PlausibleRange(0.0, 50.0, "%")
VOI_BOUNDARY_MM = PlausibleRange(0.0, 20.0, "mm")
_UNCERTAINTIES = {
    "calibration_uncertainty_percent": UNCERTAINTY_PERCENT,
    "dose_factor_uncertainty_percent": UNCERTAINTY_PERCENT,
    "voi_boundary_mm": VOI_BOUNDARY_MM,
}
_FIELDS = ("camera", "calibration_cps_per_mbq", "psf_fwhm_mm", "measured", *_UNCERTAINTIES)


@dataclass(frozen=True)
class SiteCalibration:
    """A camera's calibration factor (cps/MBq) and reconstructed resolution (FWHM, mm)."""

    camera: str
    calibration_cps_per_mbq: float
    psf_fwhm_mm: float
    measured: date | None = None
    uncertainties: dict[str, float] = field(default_factory=dict)  # stated keys only

    def to_json(self) -> dict[str, object]:
        return {
            "camera": self.camera,
            "calibration_cps_per_mbq": self.calibration_cps_per_mbq,
            "psf_fwhm_mm": self.psf_fwhm_mm,
            "measured": None if self.measured is None else self.measured.isoformat(),
            **self.uncertainties,
        }


def read_site_calibration(path: Path) -> SiteCalibration:
    """The calibration in the TOML file `path` (see the module docstring)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise InvalidInputError(
            "--calibration", str(path), f"is not a readable TOML file ({error})"
        ) from None
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise InvalidInputError(
            unknown[0], data[unknown[0]], f"unknown key in {path}; known: {', '.join(_FIELDS)}"
        )
    missing = [field for field in _FIELDS[:3] if field not in data]
    if missing:
        raise InvalidInputError(missing[0], None, f"is required in {path}")
    try:
        camera = data["camera"]
        if not isinstance(camera, str) or not camera.strip():
            raise InvalidInputError("camera", camera, "must be the camera's name (text)")
        measured = data.get("measured")
        if measured is not None and (
            not isinstance(measured, date) or isinstance(measured, datetime)
        ):
            raise InvalidInputError("measured", measured, "must be a date, e.g. 2025-01-14")
        return SiteCalibration(
            camera=camera.strip(),
            calibration_cps_per_mbq=require_positive(
                "calibration_cps_per_mbq", data["calibration_cps_per_mbq"], "cps/MBq"
            ),
            psf_fwhm_mm=PSF_FWHM_MM.check("psf_fwhm_mm", data["psf_fwhm_mm"]),
            measured=measured,
            uncertainties={
                name: plausible.check(name, data[name])
                for name, plausible in _UNCERTAINTIES.items()
                if name in data
            },
        )
    except InvalidInputError as error:
        raise InvalidInputError(error.field, error.value, f"{error.rule} (in {path})") from None
