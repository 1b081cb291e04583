"""Dosimetry accuracy on a phantom with known truth, end-to-end speed and peak memory.

The study (128^3, 4.8 mm SPECT voxels, 2.4 mm CT, four time points 4/24/96/168 h) is written
twice: in place, and with the patient moved between time points (SHIFTS_MM) for the run with
registration. Each measurement then runs in a fresh Python process so its time and peak memory
are its own (imports included, as a physicist running `startrt dosimetry run` would see them);
registration is reported as a ratio to the `--aligned` run measured beside it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from startrt.imaging.phantom_study import make_phantom_study
from startrt.physics.nuclides import LU177
from startrt.physics.voxel_kernels import available_kernel_sizes_mm, load_kernel

ORGANS = ("left_kidney", "right_kidney", "liver", "spleen")
SHIFTS_MM = ((0.0, 0.0, 0.0), (9.0, -6.0, 4.0), (-7.0, 5.0, 3.0), (6.0, 6.0, -5.0))
SOFT_TISSUE_G_ML = 1.04
REPEATS = 3  # voxel runs, aligned and registered: the median of each (a shared machine varies)

RUN = """
import json, resource, sys, time
from pathlib import Path
from typing import Any
start = time.perf_counter()
from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.outputs import write_outputs
from startrt.dosimetry.study import load_study
study = load_study(Path(sys.argv[1]), declared_aligned=sys.argv[2] == "aligned")
result = compute_dosimetry(study, method=sys.argv[3])
write_outputs(result, study, Path(sys.argv[4]))
seconds = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
translations = [list(point.alignment.translation_mm) for point in study.time_points]
print(json.dumps({"seconds": seconds, "cpu_seconds": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024, "result": result.to_json(),
                  "translations_mm": translations}))
"""


def run_isolated(study: Path, alignment: str, method: str, out: Path) -> dict[str, Any]:
    """Load, compute and write in a fresh interpreter; its seconds, peak RSS and result."""
    command = [sys.executable, "-c", RUN, str(study), alignment, method, str(out)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return report


def median_run(study: Path, alignment: str, method: str, out: Path) -> dict[str, Any]:
    """The run of median wall time among REPEATS (the last run's result; runs are alike)."""
    reports = [run_isolated(study, alignment, method, out / str(n)) for n in range(REPEATS)]
    return sorted(reports, key=lambda report: float(report["seconds"]))[REPEATS // 2]


def interpreter_baseline() -> float:
    """Seconds of a fresh interpreter that only imports NumPy (the floor of any run)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import numpy"], check=True)
    return time.perf_counter() - start


def kernel_sums() -> list[tuple[float, float]]:
    """(voxel mm, kernel sum / local deposition of 147.9 keV in a soft-tissue voxel)."""
    rows = []
    for size in available_kernel_sizes_mm():
        mass_g = SOFT_TISSUE_G_ML * (size / 10.0) ** 3
        local = LU177.local_deposition_gy_g_per_mbq_h / 3600.0 * 1000.0 / mass_g
        rows.append((size, load_kernel(size).sum_mgy_per_mbq_s / local))
    return rows


def percent(value: float, reference: float) -> float:
    return 100.0 * (value / reference - 1.0)


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder, moved = Path(scratch) / "study", Path(scratch) / "moved"
        print("writing a 128^3 phantom study (4.8 mm, 4 time points), in place and moved ...")
        make_phantom_study(folder, seed=11, ct_subdivision=2)
        make_phantom_study(moved, seed=11, ct_subdivision=2, shifts_mm=SHIFTS_MM)
        truth = json.loads((folder / "truth.json").read_text())["vois"]
        floor = interpreter_baseline()
        runs = {
            ("aligned", "voxel"): median_run(folder, "aligned", "voxel", Path(scratch) / "a"),
            ("registered", "voxel"): median_run(moved, "registered", "voxel", Path(scratch) / "r"),
            ("aligned", "organ"): run_isolated(folder, "aligned", "organ", Path(scratch) / "o"),
            ("aligned", "stp"): run_isolated(folder, "aligned", "stp", Path(scratch) / "s"),
        }
    print("\naccuracy against the phantom's analytic truth (% error)")
    header = ("VOI", "TIA 4 tp", "TIA STP 96h", "kernel", "local dep.", "kernel vs local")
    widths = (-14, 10, 13, 9, 12, 17)
    print(
        "".join(
            f"{text:{'<' if w < 0 else '>'}{abs(w)}}"
            for text, w in zip(header, widths, strict=True)
        )
    )
    for organ in ORGANS:
        voxel = runs[("aligned", "voxel")]["result"]["vois"][organ]
        stp = runs[("aligned", "stp")]["result"]["vois"][organ]
        true = truth[organ]
        errors = (
            percent(voxel["tia_mbq_h"], true["tia_mbq_h"]),
            percent(stp["tia_mbq_h"], true["tia_mbq_h"]),
            percent(voxel["dose_gy"], true["dose_gy"]),
            percent(voxel["local_deposition_dose_gy"], true["dose_gy"]),
            percent(voxel["dose_gy"], voxel["local_deposition_dose_gy"]),
        )
        print(
            f"{organ:<14}"
            + "".join(f"{e:>+{w}.2f}" for e, w in zip(errors, widths[1:], strict=True))
        )
    print("  targets: TIA within 2 %, STP within 10 %, kernel / local / analytic within 3 %")
    print("\nshipped kernel sum / local deposition (target within 5 %)")
    sums = ", ".join(f"{size:g} mm {100 * (ratio - 1):+.1f} %" for size, ratio in kernel_sums())
    print(f"  {sums}")
    print(f"\nend to end (fresh process: import, read, fit, dose, write); floor {floor:.2f} s")
    for (alignment, method), report in runs.items():
        seconds, peak = float(report["seconds"]), float(report["peak_mb"])
        print(
            f"  {method:<6} {alignment:<11} {seconds:6.2f} s = {seconds / floor:5.1f} x floor, "
            f"{seconds / 10.0:4.2f} of the 10 s target, peak {peak:6.0f} MB "
            f"({peak / 2048:.2f} of 2 GB)"
        )
    registration_report(runs[("registered", "voxel")], runs[("aligned", "voxel")], truth)


def registration_report(
    registered: dict[str, Any], aligned: dict[str, Any], truth: dict[str, Any]
) -> None:
    """The registered run (moved patient) against the aligned one (same patient in place)."""
    ratio = float(registered["seconds"]) / float(aligned["seconds"])
    cpu_ratio = float(registered["cpu_seconds"]) / float(aligned["cpu_seconds"])
    misses = [
        max(abs(found - applied) for found, applied in zip(point, shift, strict=True))
        for point, shift in zip(registered["translations_mm"], SHIFTS_MM, strict=True)
    ]
    print(
        f"\nregistration (3 moved time points, shifts up to 9 mm): voxel run {ratio:.2f} x the "
        f"--aligned run in wall time ({registered['seconds']:.2f} s vs {aligned['seconds']:.2f} s"
        f", medians of {REPEATS}), {cpu_ratio:.2f} x in CPU time ({registered['cpu_seconds']:.2f}"
        f" s vs {aligned['cpu_seconds']:.2f} s); translation within {max(misses):.2f} mm of "
        "the applied shifts"
    )
    for organ in ORGANS:
        voi = registered["result"]["vois"][organ]
        print(
            f"  {organ:<14} TIA {percent(voi['tia_mbq_h'], truth[organ]['tia_mbq_h']):+.2f} %, "
            f"dose {percent(voi['dose_gy'], truth[organ]['dose_gy']):+.2f} % (moved, registered)"
        )
