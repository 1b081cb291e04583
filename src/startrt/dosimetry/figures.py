"""Figures of a cycle's dosimetry, shared by `startrt dosimetry run`'s summary page
(`summary_html`) and the web's dosimetry summary (written as PNG files into the study folder):
time-activity points with their fitted curves, cumulative dose-volume histograms, and an axial
and a coronal slice through the kidneys with the absorbed dose as a colour overlay."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: figures are rendered to files
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.figure import Figure

from startrt.dosimetry.cycle_dosimetry import KIDNEYS, CycleDosimetryResult
from startrt.dosimetry.study import AIR_HU, Study
from startrt.imaging.volume import FloatArray, Volume, resample_linear

OVERLAY_THRESHOLD = 0.05  # dose below 5 % of the map's maximum is not coloured
FIT_GRID_POINTS = 200
FIT_TIME_MARGIN = 1.15  # the fitted curve drawn to 15 % past the last time point
FIGURE_DPI = 110
TAC_FILE, DVH_FILE, SLICES_FILE = "time_activity.png", "dvh.png", "dose_slices.png"


@dataclass(frozen=True)
class CurvePlot:
    """Measured activities of a VOI and its fitted curve (hours, MBq)."""

    name: str
    times_h: npt.ArrayLike
    activity_mbq: npt.ArrayLike
    fit_times_h: npt.ArrayLike
    fit_activity_mbq: npt.ArrayLike
    label: str


@dataclass(frozen=True)
class DvhPlot:
    """Cumulative DVH: volume fraction receiving at least each dose (Gy)."""

    name: str
    dose_gy: npt.ArrayLike
    volume_fraction: npt.ArrayLike


def curve_plots(result: CycleDosimetryResult) -> list[CurvePlot]:
    """Each VOI's measured activities and fitted curve (none for a VOI without a fit)."""
    grid_h = np.linspace(0.0, max(result.times_h) * FIT_TIME_MARGIN, FIT_GRID_POINTS)
    return [
        CurvePlot(
            name=voi.name,
            times_h=voi.times_h,
            activity_mbq=voi.activity_mbq,
            fit_times_h=grid_h if voi.fit is not None else (),
            fit_activity_mbq=voi.fit.predict(grid_h) if voi.fit is not None else (),
            label=voi.fit_model,
        )
        for voi in result.vois.values()
    ]


def dvh_plots(result: CycleDosimetryResult) -> list[DvhPlot]:
    """The DVH of each VOI with voxel dose statistics (voxel method only)."""
    return [
        DvhPlot(voi.name, voi.statistics.dvh.dose_gy, voi.statistics.dvh.volume_fraction)
        for voi in result.vois.values()
        if voi.statistics is not None
    ]


def curves_figure(curves: Sequence[CurvePlot]) -> Figure:
    """One panel per VOI: measured activity (points) and the fitted curve (line)."""
    columns = min(3, max(1, len(curves)))
    rows = int(np.ceil(len(curves) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for axis, curve in zip(axes.flat, curves, strict=False):
        axis.plot(
            curve.fit_times_h, curve.fit_activity_mbq, "-", color="tab:blue", label=curve.label
        )
        axis.plot(curve.times_h, curve.activity_mbq, "o", color="tab:red", label="measured")
        axis.set_title(curve.name.replace("_", " "))
        axis.set_xlabel("time after injection (h)")
        axis.set_ylabel("activity (MBq)")
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(curves) :]:
        axis.axis("off")
    figure.tight_layout()
    return figure


def dvh_figure(dvhs: Sequence[DvhPlot]) -> Figure:
    """The cumulative DVHs on one set of axes (volume in %)."""
    figure, axis = plt.subplots(figsize=(7.0, 4.2))
    for dvh in dvhs:
        axis.plot(
            dvh.dose_gy, 100.0 * np.asarray(dvh.volume_fraction), label=dvh.name.replace("_", " ")
        )
    axis.set_xlabel("absorbed dose (Gy)")
    axis.set_ylabel("volume receiving at least the dose (%)")
    axis.set_ylim(0, 102)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def kidney_centre_index(masks: Mapping[str, FloatArray]) -> tuple[int, int, int]:
    """The (z, y, x) voxel index of the fraction-weighted centre of the kidneys' VOIs (of all
    VOIs when the study has no kidney)."""
    chosen = [masks[name] for name in KIDNEYS if name in masks] or list(masks.values())
    weight = np.sum(chosen, axis=0)
    total = float(weight.sum())
    if total <= 0:
        z, y, x = (n // 2 for n in weight.shape)
    else:
        z, y, x = (round(float((grid * weight).sum()) / total) for grid in np.indices(weight.shape))
    return z, y, x


def dose_slices_figure(
    dose: Volume, background_hu: Volume | None, masks: Mapping[str, FloatArray]
) -> Figure:
    """An axial and a coronal slice through the kidneys' centre: the CT (HU, grey; none when
    the study has no CT) with the absorbed dose in colour where it exceeds OVERLAY_THRESHOLD of
    its maximum, the kidney outlines, and one colour bar (Gy). Voxels are drawn to scale."""
    z, y, _ = kidney_centre_index(masks)
    dz, dy, dx = (float(s) for s in reversed(dose.grid.spacing_mm))
    maximum = float(np.max(dose.array)) or 1.0
    figure, axes = plt.subplots(1, 2, figsize=(9.6, 4.4))
    views: tuple[tuple[str, tuple[int | slice, ...], float, str], ...] = (
        ("axial", (z, slice(None), slice(None)), dy / dx, "upper"),
        ("coronal", (slice(None), y, slice(None)), dz / dx, "lower"),  # head up: z grows headward
    )
    image = None
    for axis, (title, cut, aspect, origin) in zip(axes, views, strict=True):
        if background_hu is not None:
            grey = background_hu.array[cut]
            axis.imshow(grey, cmap="gray", vmin=-400, vmax=400, aspect=aspect, origin=origin)
        shown = np.ma.masked_less(dose.array[cut], OVERLAY_THRESHOLD * maximum)
        image = axis.imshow(
            shown, cmap="turbo", vmin=0.0, vmax=maximum, alpha=0.75, aspect=aspect, origin=origin
        )
        for name in KIDNEYS:
            if name in masks:
                axis.contour(masks[name][cut], levels=[0.5], colors="white", linewidths=0.8)
        axis.set_title(f"{title} slice through the kidneys")
        axis.set_xticks([])
        axis.set_yticks([])
    assert image is not None
    figure.colorbar(image, ax=list(axes), label="absorbed dose (Gy)", shrink=0.85)
    return figure


def write_figures(result: CycleDosimetryResult, study: Study, folder: Path) -> dict[str, Path]:
    """The cycle's figures as PNG files in `folder` (created): time-activity fits, and with a
    dose map (voxel method) the DVHs and the dose slices; returns them by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"time_activity": save_png(curves_figure(curve_plots(result)), folder / TAC_FILE)}
    dvhs = dvh_plots(result)
    if dvhs:
        files["dvh"] = save_png(dvh_figure(dvhs), folder / DVH_FILE)
    if result.dose_map is not None and result.dose_reference is not None:
        point = next(
            tp for tp in study.time_points if tp.spect is result.dose_reference
        )  # the time point whose SPECT grid the dose map is on
        background = (
            None
            if point.ct is None
            else resample_linear(point.ct.volume, result.dose_map.grid, outside=AIR_HU)
        )
        figure = dose_slices_figure(result.dose_map, background, point.vois.masks)
        files["dose_slices"] = save_png(figure, folder / SLICES_FILE)
    return files


def save_png(figure: Figure, path: Path) -> Path:
    """Write `figure` as PNG to `path`, close it, return `path`."""
    path.write_bytes(png_bytes(figure))
    return path


def png_bytes(figure: Figure) -> bytes:
    """`figure` as PNG, closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
