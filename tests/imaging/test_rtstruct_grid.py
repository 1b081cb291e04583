"""RTSTRUCT contours drawn on a CT of another grid (issue 12, item 3): each contour plane is
filled on its own (holes by containment) and stands for a slab of the contour planes' spacing;
the masks are the fraction of each voxel of any grid of the frame of reference inside the ROI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pydicom.dicomio as pydicom_io
import pytest
from pydicom import Dataset
from pydicom.uid import CTImageStorage, generate_uid

from startrt.imaging.rtstruct import read_rtstruct, write_rtstruct
from startrt.imaging.vois import vois_on_grid
from startrt.imaging.volume import Grid, Volume

# the planning CT the ROIs were drawn on: 512^2 at 0.98 mm, 3 mm slices, 500 mm field of view
DRAWING_CT = Grid((512, 512, 40), (0.977, 0.977, 3.0), (-249.6, -249.6, -58.5))
# the SPECT: 80^2 x 36 at 4.42 mm (354 mm field of view), not aligned with the CT's voxels
SPECT = Grid((80, 80, 36), (4.42, 4.42, 4.42), (-175.3, -176.1, -77.9))
# the CT of the SPECT session: 256^2 at 1.95 mm, 5 mm slices
SESSION_CT = Grid((256, 256, 32), (1.95, 1.95, 5.0), (-248.0, -247.0, -79.0))
ORGANS = {  # centre (mm), semi-axes (mm)
    "liver": ((-20.0, 10.0, 5.0), (70.0, 55.0, 45.0)),
    "left_kidney": ((-80.0, -60.0, 0.3), (25.0, 20.0, 40.0)),
    "tumour_1": ((45.3, -40.2, -10.7), (20.0, 20.0, 20.0)),
}


def ellipsoid_ml(semi_axes_mm: tuple[float, ...]) -> float:
    a, b, c = semi_axes_mm
    return 4.0 / 3.0 * math.pi * a * b * c / 1000.0


def ct_headers(grid: Grid) -> list[Dataset]:
    """The headers (no pixels) of a CT series on an axis-aligned `grid`, as an RTSTRUCT needs."""
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    headers = []
    for z in range(grid.size[2]):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.PatientName, ds.PatientID = "Test^Phantom", "P1"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = "CT"
        ds.ImagePositionPatient = [f"{v:.4f}" for v in grid.index_to_physical([0, 0, z])]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [grid.spacing_mm[1], grid.spacing_mm[0]]
        ds.SliceThickness = grid.spacing_mm[2]
        ds.Rows, ds.Columns = grid.size[1], grid.size[0]
        headers.append(ds)
    return headers


def ellipsoid_mask(grid: Grid, centre: tuple[float, ...], semi: tuple[float, ...]) -> Volume:
    """Binary mask of the voxel centres inside an ellipsoid, on an axis-aligned grid."""
    axes = [
        ((grid.origin_mm[i] + np.arange(grid.size[i]) * grid.spacing_mm[i] - centre[i]) / semi[i])
        ** 2
        for i in range(3)
    ]
    radius2 = axes[2][:, None, None] + axes[1][None, :, None] + axes[0][None, None, :]
    return Volume(grid, (radius2 <= 1.0).astype(np.float32))


@pytest.fixture(scope="module")
def planning_rtstruct(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The organs contoured on the fine planning CT (0.5 iso-lines of voxel-centre masks)."""
    masks = {name: ellipsoid_mask(DRAWING_CT, *shape) for name, shape in ORGANS.items()}
    folder = tmp_path_factory.mktemp("planning")
    return write_rtstruct(masks, ct_headers(DRAWING_CT), folder / "rs.dcm")


@pytest.mark.parametrize("reference", [SPECT, SESSION_CT], ids=["on_spect", "via_session_ct"])
def test_volumes_of_contours_from_a_finer_larger_ct(
    planning_rtstruct: Path, reference: Grid
) -> None:
    masks = read_rtstruct(planning_rtstruct, reference)
    assert sorted(masks) == sorted(ORGANS)
    for name, (_, semi) in ORGANS.items():
        array = masks[name].array
        assert array.min() >= 0.0
        assert array.max() <= 1.0
        volume = float(array.sum(dtype=np.float64)) * reference.voxel_volume_ml
        assert volume == pytest.approx(ellipsoid_ml(semi), rel=0.02), name
    vois = vois_on_grid(masks, SPECT)  # as a study moves them onto each SPECT
    for name, (_, semi) in ORGANS.items():
        assert vois.volume_ml(name) == pytest.approx(ellipsoid_ml(semi), rel=0.02), name
    assert vois.overlaps_ml() == {}


def test_two_planes_on_one_spect_slice_add_up(planning_rtstruct: Path) -> None:
    heights = {
        float(c.ContourData[2])
        for item in pydicom.dcmread(planning_rtstruct).ROIContourSequence
        for c in item.ContourSequence
    }
    slices = np.floor(SPECT.physical_to_index([[0.0, 0.0, h] for h in heights])[:, 2] + 0.5)
    assert len(set(slices)) < len(heights)  # 3 mm planes on 4.42 mm slices share some
    liver = read_rtstruct(planning_rtstruct, SPECT)["liver"].array
    centre = np.floor(SPECT.physical_to_index(ORGANS["liver"][0]) + 0.5).astype(int)
    # every slice through the liver's middle is full: no plane cancels another
    middle = liver[centre[2] - 5 : centre[2] + 6, centre[1], centre[0]]
    assert middle == pytest.approx(np.ones(11), abs=1e-6)


def rtstruct_with(
    tmp_path: Path, grid: Grid, contours: list[tuple[list[tuple[float, float]], float]]
) -> Path:
    """An RTSTRUCT with one ROI "tumour_1" made of the given (x, y) polygons at z (mm)."""
    headers = ct_headers(grid)
    ones = Volume(grid, np.ones(grid.shape, np.float32))
    path = write_rtstruct({"tumour_1": ones}, headers, tmp_path / "rs.dcm")
    ds = pydicom.dcmread(path)
    items = []
    for number, (points, z_mm) in enumerate(contours, start=1):
        contour = Dataset()
        contour.ContourGeometricType = "CLOSED_PLANAR"
        contour.NumberOfContourPoints = len(points)
        contour.ContourNumber = number
        contour.ContourData = [f"{v:.4f}" for x, y in points for v in (x, y, z_mm)]
        items.append(contour)
    ds.ROIContourSequence[0].ContourSequence = items
    ds.save_as(path)
    return path


def rectangle(x0: float, x1: float, y0: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def test_planes_on_one_slice_and_overlapping_outlines(tmp_path: Path) -> None:
    # 1 mm pixels, 6 mm slices: slice 0 spans z -3 ... 3 mm, slice 1 3 ... 9 mm
    grid = Grid((20, 20, 2), (1.0, 1.0, 6.0), (0.0, 0.0, 0.0))
    square = rectangle(1.5, 9.5, 1.5, 9.5)  # voxels 2-9 in x and y
    path = rtstruct_with(
        tmp_path,
        grid,
        [
            (square, -1.5),  # slab -3 ... 0
            (square, 1.5),  # slab 0 ... 3: same slice, must not cancel the plane at -1.5
            (square, 4.5),  # slab 3 ... 6
            (rectangle(1.5, 5.5, 1.5, 9.5), 7.5),  # two overlapping outlines: their union
            (rectangle(3.5, 9.5, 1.5, 9.5), 7.5),
        ],
    )
    array = read_rtstruct(path, grid)["tumour_1"].array
    expected = np.zeros(grid.shape)
    expected[:, 2:10, 2:10] = 1.0
    assert np.allclose(array, expected, atol=1e-6)


def circle(radius: float, centre: tuple[float, float], n: int = 240) -> list[tuple[float, float]]:
    angles = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    return [(centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a)) for a in angles]


def polygon_area(radius: float, n: int = 240) -> float:
    return n / 2.0 * radius**2 * math.sin(2.0 * math.pi / n)


def test_ring_with_a_hole_and_an_island(tmp_path: Path) -> None:
    grid = Grid((40, 40, 12), (2.0, 2.0, 4.0), (-39.3, -40.6, -7.1))
    centre = (1.1, -0.7)
    heights = [3.0 * k for k in range(10)]  # slabs -1.5 ... 28.5 mm
    contours = []
    for z in heights:  # the hole listed first: holes are found by containment, not by order
        contours += [(circle(15.0, centre), z), (circle(30.0, centre), z)]
    contours.append((circle(5.0, centre), 12.0))  # an island in the hole on one plane
    path = rtstruct_with(tmp_path, grid, contours)
    array = read_rtstruct(path, grid)["tumour_1"].array
    expected_mm3 = (polygon_area(30.0) - polygon_area(15.0)) * 30.0 + polygon_area(5.0) * 3.0
    volume_mm3 = float(array.sum(dtype=np.float64)) * 2.0 * 2.0 * 4.0
    assert volume_mm3 == pytest.approx(expected_mm3, rel=0.01)
    x, y, z = np.floor(grid.physical_to_index([centre[0], centre[1], 20.0]) + 0.5).astype(int)
    assert array[z, y, x] == 0.0  # hole (no island at 20 mm)
    assert array[z, y, x + 11] == 1.0  # ring, 22 mm from the centre
    assert array[z, y, x + 17] == 0.0  # outside, 34 mm
    x, y, z = np.floor(grid.physical_to_index([centre[0], centre[1], 12.0]) + 0.5).astype(int)
    assert 0.0 < array[z, y, x] < 1.0  # the island's 3 mm slab in a 4 mm slice


def test_volume_agrees_with_dicompyler_core(
    planning_rtstruct: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("shapely")
    # dicompyler-core 0.5.6 (the latest) imports pydicom's `read_file`, removed in pydicom 3
    monkeypatch.setattr(pydicom_io, "read_file", pydicom.dcmread, raising=False)
    dicomparser = pytest.importorskip("dicompylercore.dicomparser")
    parser = dicomparser.DicomParser(str(planning_rtstruct))
    structures = parser.GetStructures()
    masks = read_rtstruct(planning_rtstruct, SESSION_CT)
    for number, structure in structures.items():
        planes = parser.GetStructureCoordinates(number)
        thickness = parser.CalculatePlaneThickness(planes)
        # dicompyler-core: sum of plane areas (holes by containment) x thickness, but half the
        # area on the first and last plane in the order of its keys, strings ("-1.50", ...)
        theirs = parser.CalculateStructureVolume(planes, thickness)
        end_planes_ml = 0.0
        for z in (min(planes), max(planes)):
            end_planes_ml += _area_mm2(planes[z]) / 2.0 * thickness / 1000.0
        ours = float(masks[structure["name"]].array.sum(dtype=np.float64))
        ours *= SESSION_CT.voxel_volume_ml
        assert ours == pytest.approx(theirs + end_planes_ml, rel=0.01), structure["name"]


def _area_mm2(contours: list[dict[str, object]]) -> float:
    """Summed shoelace areas of the (convex, single) contours of one plane."""
    area = 0.0
    for contour in contours:
        points = np.asarray(contour["data"], dtype=float)[:, :2]
        x, y = points[:, 0], points[:, 1]
        area += abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0
    return area


def test_study_with_contours_from_a_planning_ct(tmp_path: Path) -> None:
    """The issue's case end to end: a 128^3 (4.8 mm) SPECT whose CT is on the SPECT grid, VOIs
    drawn on a 0.98 mm / 3 mm planning CT with a larger field of view in its frame of reference
    (before: VOI volumes -18.6 %, doses +15.5 to +17.2 %)."""
    from startrt.dosimetry.study import load_study  # the pipeline's reading of the VOIs
    from startrt.imaging.phantom import default_phantom
    from startrt.imaging.phantom_study import make_phantom_study

    folder = tmp_path / "study"
    study = make_phantom_study(folder, seed=3, time_points_h=(24.0,))
    session_ct = pydicom.dcmread(next(study.time_points[0].ct_folder.iterdir()))
    planning = Grid((512, 512, 56), (0.977, 0.977, 3.0), (-249.6, -249.6, -64.5))
    headers = ct_headers(planning)
    for header in headers:  # same patient, study and frame of reference as the session CT
        header.StudyInstanceUID = session_ct.StudyInstanceUID
        header.FrameOfReferenceUID = session_ct.FrameOfReferenceUID
        header.PatientID = session_ct.PatientID
    spec = default_phantom(3)
    shapes = {name: spec.organ(name).shape for name in ("left_kidney", "right_kidney", "tumour_1")}
    masks = {}
    for name, shape in shapes.items():
        low, high = (shape.centre_mm[2] + sign * shape.semi_axes_mm[2] for sign in (-1, 1))
        assert low > -64.5  # wholly on the planning CT
        assert high < -64.5 + 55 * 3.0
        masks[name] = ellipsoid_mask(planning, shape.centre_mm, shape.semi_axes_mm)
    write_rtstruct(masks, headers, study.rtstruct_file)
    study.seg_file.unlink()
    vois = load_study(folder, declared_aligned=True).time_points[0].vois
    assert sorted(vois.names) == sorted(shapes)
    for name, shape in shapes.items():
        assert vois.volume_ml(name) == pytest.approx(shape.volume_ml, rel=0.02), name
