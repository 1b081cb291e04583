"""What `startrt dosimetry run` writes: dose map (DICOM RTDOSE and NIfTI), TIA map (NIfTI), the
per-VOI table (CSV), the results (JSON) and the one-page HTML summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from startrt.dosimetry.cycle_dosimetry import CycleDosimetryResult
from startrt.dosimetry.figures import curve_plots, dvh_plots
from startrt.dosimetry.study import Study
from startrt.dosimetry.summary_html import write_summary_html
from startrt.imaging.image_files import write_image
from startrt.imaging.rtdose import write_rtdose
from startrt.imaging.volume import Volume

CSV_COLUMNS = (
    "voi",
    "volume_ml",
    "mass_g",
    "fit_model",
    "tia_mbq_h",
    "tia_sd_mbq_h",
    "effective_half_life_h",
    "dose_gy",
    "dose_sd_gy",
    "dose_gy_per_gbq",
    "local_deposition_dose_gy",
    "bed_gy",
    "recovery_coefficient",
    "pvc_uncertainty_percent",
)


def write_outputs(result: CycleDosimetryResult, study: Study, out_dir: Path) -> dict[str, Path]:
    """Write every output file into `out_dir` (created if needed); returns them by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    if result.dose_map is not None and result.dose_reference is not None:
        files["dose_rtdose"] = write_rtdose(
            result.dose_map,
            out_dir / "dose_rtdose.dcm",
            reference=result.dose_reference,
            description=f"177Lu cycle dose ({result.method})",
        )
        files["dose_nifti"] = write_image(_float32(result.dose_map), out_dir / "dose_gy.nii.gz")
    if result.tia_map is not None:
        files["tia_nifti"] = write_image(_float32(result.tia_map), out_dir / "tia_mbq_h.nii.gz")
    data = result.to_json()
    files["csv"] = _write_csv(data, out_dir / "vois.csv")
    files["json"] = out_dir / "results.json"
    files["json"].write_text(json.dumps(data, indent=2), encoding="utf-8")
    files["html"] = _write_html(result, study, out_dir / "summary.html")
    return files


def _float32(volume: Volume) -> Volume:
    """Maps are stored as float32 (7 significant digits: far below any dose uncertainty)."""
    return volume.with_array(volume.array.astype(np.float32))


def _write_csv(data: dict[str, object], path: Path) -> Path:
    vois = data["vois"]
    assert isinstance(vois, dict)
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for name, values in vois.items():
            writer.writerow({"voi": name, **{k: values.get(k) for k in CSV_COLUMNS[1:]}})
    return path


def _write_html(result: CycleDosimetryResult, study: Study, path: Path) -> Path:
    pvc = result.partial_volume_correction
    rows = [
        {
            "VOI": voi.name,
            "volume (mL)": voi.volume_ml,
            "mass (g)": voi.mass_g,
            "fit": voi.fit_model,
            "TIA (MBq h)": voi.tia_mbq_h,
            "TIA SD, fit (MBq h)": voi.tia_sd_mbq_h,
            "T_eff (h)": voi.effective_half_life_h,
            "dose (Gy)": voi.dose_gy,
            "dose SD (Gy)": None if voi.uncertainty is None else voi.uncertainty.dose_sd_gy,
            "Gy/GBq": voi.dose_gy_per_gbq,
            "local dep. (Gy)": voi.local_deposition_dose_gy,
            "BED (Gy)": voi.bed_gy,
            **({} if pvc is None else {"PVC uncertainty (%)": voi.pvc_uncertainty_percent}),
        }
        for voi in result.vois.values()
    ]
    header = {
        "patient": study.patient_id or "-",
        "injection": f"{study.injection_datetime:%Y-%m-%d %H:%M}",
        "injected activity": f"{study.injected_activity_mbq:.0f} MBq",
        "time points": ", ".join(f"{t:.1f} h" for t in result.times_h),
        "method": result.method,
    }
    if pvc is not None:
        header["partial-volume correction"] = (
            f"{pvc['method']}, PSF FWHM {pvc['psf_fwhm_mm']:g} mm, body outline "
            f"{pvc['body_outline']}; uncertainty: {pvc['uncertainty']}"
        )
    return write_summary_html(
        path,
        title=f"177Lu cycle dosimetry: {study.patient_id or study.folder.name}",
        header=header,
        rows=rows,
        curves=curve_plots(result),
        dvhs=dvh_plots(result),
        notes=result.notes,
    )
