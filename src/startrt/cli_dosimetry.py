"""`startrt dosimetry run` and `startrt phantom make`: a cycle's dosimetry from its SPECT/CT
study, and synthetic studies with known truth."""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import typer

from startrt.cli_support import (
    JsonFlag,
    ProtocolPath,
    emit,
    protocol_from,
    read_json,
    refuses_bad_input,
)
from startrt.clinical.sex import Sex
from startrt.output import print_tables, rows_table, to_json
from startrt.validation import InvalidInputError

# The dosimetry, imaging and protocol layers (SciPy, SimpleITK, pydicom, matplotlib) are
# imported inside the commands, so that `startrt` starts fast for every other command.
if TYPE_CHECKING:
    from startrt.dosimetry.cycle_dosimetry import BloodSamples, CycleDosimetryResult
    from startrt.dosimetry.study import Progress as ProgressCallback
    from startrt.dosimetry.uncertainty import UncertaintyBudget
    from startrt.imaging.calibration import SiteCalibration
    from startrt.imaging.recovery import RecoveryCurve

dosimetry_app = typer.Typer(help="Dosimetry of a cycle from its post-therapy SPECT/CT.")
phantom_app = typer.Typer(help="Synthetic SPECT/CT studies with known truth.")

Method = Literal["voxel", "organ", "stp"]


@contextmanager
def progress_bar(description: str) -> Iterator[ProgressCallback]:
    """A progress bar on stderr; the callback names the step under way."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda step: progress.update(task, description=step)


def _update_ledger(
    path: Path, result: CycleDosimetryResult, arm: str, protocol_path: Path | None
) -> dict[str, Any]:
    """Append this cycle to the patient's ledger file and plan the next cycle."""
    from startrt.protocol.course import Course, course_from_records, course_records
    from startrt.protocol.course_dosimetry import cycle_dose
    from startrt.protocol.cycle_planning import plan_next_cycle

    stored = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"cycles": []}
    course = course_from_records(stored.get("cycles", []))
    course = Course((*course.cycles, cycle_dose(result)))
    path.write_text(
        json.dumps({"arm": arm, "cycles": course_records(course)}, indent=2), encoding="utf-8"
    )
    protocol = protocol_from(protocol_path)
    plan = plan_next_cycle(arm, course.cycles, protocol)
    return {"file": str(path), "cycles": course.rows(protocol.renal_limit), "plan": plan}


def _blood_samples(path: Path, sex: Sex | None, weight_kg: float | None) -> BloodSamples:
    """Blood samples from a CSV with the columns time_h and mbq_per_ml."""
    from startrt.dosimetry.cycle_dosimetry import BloodSamples

    try:
        with path.open(encoding="utf-8", newline="") as stream:
            rows = list(csv.DictReader(stream))
        times = tuple(float(row["time_h"]) for row in rows)
        concentrations = tuple(float(row["mbq_per_ml"]) for row in rows)
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise InvalidInputError(
            "--blood-samples",
            str(path),
            f"needs the columns time_h and mbq_per_ml ({type(error).__name__})",
        ) from None
    return BloodSamples(times, concentrations, weight_kg=weight_kg, sex=sex)


def _recovery_curve(path: Path) -> RecoveryCurve:
    from startrt.imaging.recovery import RecoveryCurve

    data = read_json(path)
    try:
        return RecoveryCurve(tuple(data["volumes_ml"]), tuple(data["coefficients"]))
    except (KeyError, TypeError) as error:
        raise InvalidInputError(
            "--recovery-curve",
            str(path),
            f"needs volumes_ml and coefficients lists ({type(error).__name__})",
        ) from None


# the site file's uncertainty keys: the budget's field and the factor to its unit
_BUDGET_FIELDS = {
    "calibration_uncertainty_percent": ("calibration_relative", 0.01),
    "dose_factor_uncertainty_percent": ("dose_factor_relative", 0.01),
    "voi_boundary_mm": ("boundary_mm", 1.0),
}


def _uncertainty_budget(site: SiteCalibration) -> UncertaintyBudget | None:
    """The site's stated uncertainties over the defaults (None: the site states none)."""
    from startrt.dosimetry.uncertainty import UncertaintyBudget

    if not site.uncertainties:
        return None
    stated = {
        _BUDGET_FIELDS[key][0]: value * _BUDGET_FIELDS[key][1]
        for key, value in site.uncertainties.items()
    }
    return dataclasses.replace(UncertaintyBudget(), **stated)


def _site_calibration(path: Path) -> SiteCalibration:
    from startrt.imaging.calibration import read_site_calibration

    if not path.is_file():
        raise InvalidInputError("--calibration", str(path), "is not an existing file")
    return read_site_calibration(path)


@dosimetry_app.command("run")
@refuses_bad_input
def run(
    study_dir: Annotated[Path, typer.Argument(help="Folder with the DICOM of one cycle.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the results.")],
    method: Annotated[str, typer.Option(help="voxel, organ or stp.")] = "voxel",
    aligned: Annotated[
        bool, typer.Option("--aligned", help="Declare the time points aligned (no registration).")
    ] = False,
    calibration_cps_per_mbq: Annotated[
        float | None, typer.Option(help="SPECT calibration (counts/s per MBq) for count images.")
    ] = None,
    stp_time_h: Annotated[float, typer.Option(help="Time point used by --method stp.")] = 96.0,
    ledger: Annotated[
        Path | None, typer.Option(help="Patient ledger JSON: append this cycle, plan the next.")
    ] = None,
    arm: Annotated[str, typer.Option(help="Treatment arm, for --ledger.")] = "dTOC",
    blood_samples: Annotated[
        Path | None,
        typer.Option(
            help="CSV time_h,mbq_per_ml of blood samples: red-marrow dose (blood method)."
        ),
    ] = None,
    sex: Annotated[Sex | None, typer.Option(help="Patient sex if the DICOM lacks it.")] = None,
    weight_kg: Annotated[float | None, typer.Option(help="Body weight (red-marrow mass).")] = None,
    recovery_curve: Annotated[
        Path | None,
        typer.Option(
            help='JSON {"volumes_ml": [...], "coefficients": [...]}: PVC of VOIs <= 100 mL.'
        ),
    ] = None,
    psf_fwhm_mm: Annotated[
        float | None,
        typer.Option(help="SPECT resolution (Gaussian FWHM, mm): PVC by GTM and RBV."),
    ] = None,
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="Site calibration TOML (camera, calibration_cps_per_mbq, psf_fwhm_mm); "
            "options given on the command line override it."
        ),
    ] = None,
    protocol_path: ProtocolPath = None,
    as_json: JsonFlag = False,
) -> None:
    """Absorbed doses of one cycle: fits, TIA, organ or voxel dose, maps, table and summary."""
    from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
    from startrt.dosimetry.outputs import write_outputs
    from startrt.dosimetry.study import load_study
    from startrt.protocol.course_dosimetry import kidney_radiobiology

    if method not in ("voxel", "organ", "stp"):
        raise InvalidInputError("--method", method, "must be voxel, organ or stp")
    samples = None if blood_samples is None else _blood_samples(blood_samples, sex, weight_kg)
    curve = None if recovery_curve is None else _recovery_curve(recovery_curve)
    site = None if calibration is None else _site_calibration(calibration)
    if site is not None:  # the command line overrides the site's file
        if calibration_cps_per_mbq is None:
            calibration_cps_per_mbq = site.calibration_cps_per_mbq
        if psf_fwhm_mm is None:
            psf_fwhm_mm = site.psf_fwhm_mm
    if psf_fwhm_mm is not None:
        from startrt.imaging.calibration import PSF_FWHM_MM

        PSF_FWHM_MM.check("--psf-fwhm-mm", psf_fwhm_mm)
        if curve is not None:
            raise InvalidInputError(
                "--psf-fwhm-mm", psf_fwhm_mm, "give the PSF or --recovery-curve, not both"
            )
    with progress_bar("loading the study") as progress:
        study = load_study(
            study_dir,
            calibration_cps_per_mbq=calibration_cps_per_mbq,
            declared_aligned=aligned,
            progress=progress,
        )
        result = compute_dosimetry(
            study,
            method=cast(Method, method),
            stp_time_h=stp_time_h,
            recovery_curve=curve,
            blood_samples=samples,
            kidney_radiobiology=kidney_radiobiology(protocol_from(protocol_path).renal_limit),
            psf_fwhm_mm=psf_fwhm_mm,
            uncertainty_budget=None if site is None else _uncertainty_budget(site),
            progress=progress,
        )
        progress("writing results")
        files = write_outputs(result, study, out)
    data: dict[str, Any] = {**result.to_json(), "files": {k: str(v) for k, v in files.items()}}
    if site is not None:
        data["site_calibration"] = {"file": str(calibration), **site.to_json()}
    if ledger is not None:
        data["ledger"] = _update_ledger(ledger, result, arm, protocol_path)
    if as_json:
        typer.echo(to_json(data))
        return
    rows = [{"voi": name, **values} for name, values in data["vois"].items()]
    columns = ["voi", "mass_g", "fit_model", "tia_mbq_h", "effective_half_life_h", "dose_gy"]
    columns += ["dose_gy_per_gbq", "bed_gy"]
    print_tables(rows_table(f"Cycle dosimetry ({method})", rows, columns))
    if ledger is not None:
        emit(False, data["ledger"]["plan"], "Next cycle")
    typer.echo(f"results in {out} (summary.html, vois.csv, results.json)")


@phantom_app.command("make")
@refuses_bad_input
def make(
    out_dir: Annotated[Path, typer.Argument(help="New (or empty) folder for the study.")],
    seed: Annotated[int, typer.Option(help="Seed of the phantom's kinetics and positions.")] = 0,
    time_points_h: Annotated[
        str, typer.Option(help="Hours after injection, comma-separated.")
    ] = "4,24,96,168",
    grid_size: Annotated[int, typer.Option(help="SPECT voxels per side (128: 4.8 mm).")] = 128,
    ct_subdivision: Annotated[int, typer.Option(help="CT voxels per SPECT voxel side.")] = 2,
    blur_fwhm_mm: Annotated[float, typer.Option(help="SPECT resolution (Gaussian FWHM).")] = 0.0,
    noise: Annotated[
        bool, typer.Option(help="Clinical-level SPECT noise (see --noise-gain).")
    ] = False,
    calibration_cps_per_mbq: Annotated[
        float | None, typer.Option(help="Camera sensitivity, counts/s per MBq [default: 10].")
    ] = None,
    acquisition_duration_s: Annotated[
        float | None, typer.Option(help="SPECT acquisition time, s [default: 1800].")
    ] = None,
    noise_gain: Annotated[
        float | None,
        typer.Option(help="Image noise variance / Poisson on the counts [default: 160]."),
    ] = None,
    depth_dependent_resolution: Annotated[
        bool,
        typer.Option(
            "--depth-dependent-resolution",
            help="Medium-energy collimator on a circular orbit instead of --blur-fwhm-mm.",
        ),
    ] = False,
    orbit_radius_mm: Annotated[
        float | None,
        typer.Option(
            help="Camera orbit radius for --depth-dependent-resolution or --osem [default: 250]."
        ),
    ] = None,
    osem: Annotated[
        bool,
        typer.Option(
            "--osem", help="Project on the orbit (120 views) and reconstruct by OSEM (10 subsets)."
        ),
    ] = False,
    osem_iterations: Annotated[int, typer.Option(help="OSEM iterations for --osem.")] = 4,
    as_json: JsonFlag = False,
) -> None:
    """Write a synthetic 177Lu SPECT/CT study (DICOM, RTSTRUCT, SEG) and its truth.json."""
    from startrt.imaging.osem import Orbit, OsemReconstruction
    from startrt.imaging.phantom_study import make_phantom_study

    try:
        times = tuple(float(part) for part in time_points_h.split(","))
    except ValueError:
        raise InvalidInputError(
            "--time-points-h", time_points_h, "must read e.g. 4,24,96,168"
        ) from None
    given = {
        "calibration_cps_per_mbq": calibration_cps_per_mbq,
        "acquisition_duration_s": acquisition_duration_s,
        "noise_gain": noise_gain,
    }
    camera: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    if orbit_radius_mm is not None and not (depth_dependent_resolution or osem):
        raise InvalidInputError(
            "--orbit-radius-mm", orbit_radius_mm, "needs --depth-dependent-resolution or --osem"
        )
    orbit = Orbit() if orbit_radius_mm is None else Orbit(orbit_radius_mm)
    with progress_bar("writing the phantom study"):
        study = make_phantom_study(
            out_dir,
            seed=seed,
            time_points_h=times,
            grid_size=grid_size,
            ct_subdivision=ct_subdivision,
            blur_fwhm_mm=blur_fwhm_mm,
            noise=noise,
            orbit_radius_mm=orbit.radius_mm if depth_dependent_resolution else None,
            osem=OsemReconstruction(orbit, osem_iterations) if osem else None,
            **camera,
        )
    truth = json.loads(study.truth_file.read_text(encoding="utf-8"))
    if as_json:
        typer.echo(to_json(truth))
        return
    rows = [{"voi": name, **values} for name, values in truth["vois"].items()]
    print_tables(
        rows_table("Phantom truth", rows, ["voi", "volume_ml", "mass_g", "tia_mbq_h", "dose_gy"])
    )
    typer.echo(f"study in {out_dir}")
