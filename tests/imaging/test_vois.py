"""VOI masks: names, fractional masks on a coarser grid, VoiSet, label images, RTSTRUCT, SEG."""

from __future__ import annotations

import math
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    RTStructureSetStorage,
    SegmentationStorage,
    generate_uid,
)

from startrt.imaging.rtstruct import read_rtstruct, write_rtstruct
from startrt.imaging.seg import read_seg, write_seg
from startrt.imaging.vois import (
    VoiSet,
    fractional_mask,
    read_label_image,
    voi_name,
    vois_on_grid,
)
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

# rotated 90 degrees about z: index x runs along patient +y, index y along patient -x
ROTATED = (0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0)
SPECT_GRID = Grid((25, 25, 20), (4.8, 4.8, 4.8), (-60.1, -50.3, -40.7))


def ellipsoid(grid: Grid, centre_mm: tuple[float, ...], semi_axes_mm: tuple[float, ...]) -> Volume:
    """Binary mask: 1 where the voxel centre lies inside the axis-aligned (patient) ellipsoid."""
    nz, ny, nx = grid.shape
    steps = grid.direction_matrix() * np.asarray(grid.spacing_mm)  # columns: mm per index step
    radius2 = np.zeros(grid.shape)
    for axis in range(3):  # patient axis: origin + x * step_x + y * step_y + z * step_z
        coordinate = (
            grid.origin_mm[axis]
            + np.arange(nx)[None, None, :] * steps[axis, 0]
            + np.arange(ny)[None, :, None] * steps[axis, 1]
            + np.arange(nz)[:, None, None] * steps[axis, 2]
        )
        radius2 += ((coordinate - centre_mm[axis]) / semi_axes_mm[axis]) ** 2
    return Volume(grid, (radius2 <= 1.0).astype(np.float32))


def centroid_mm(fractions: np.ndarray, grid: Grid) -> np.ndarray:
    z, y, x = np.nonzero(fractions)
    weights = fractions[z, y, x]
    return (grid.index_to_physical(np.column_stack([x, y, z])) * weights[:, None]).sum(
        axis=0
    ) / weights.sum()


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("Left Kidney", "left_kidney"),
        ("Kidney-L", "kidney_l"),
        ("LeftKidney", "left_kidney"),
        ("  GTV 1 ", "gtv_1"),
        ("Tumour_1", "tumour_1"),
        ("CTVHigh", "ctv_high"),
        ("bone_marrow", "bone_marrow"),
    ],
)
def test_voi_names_are_snake_case(label: str, name: str) -> None:
    assert voi_name(label) == name


def test_a_label_without_letters_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="label"):
        voi_name(" -- ")


def test_fraction_by_hand() -> None:
    source = Grid((4, 4, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    target = Grid((2, 2, 2), (2.0, 2.0, 2.0), (0.5, 0.5, 0.5))
    array = np.zeros(source.shape, np.float32)
    array[0:2, 0:2, 0] = 1.0  # source voxels x = 0, y and z in {0, 1}
    # target voxel (0, 0, 0) spans [-0.5, 1.5] mm on each axis = source voxels 0 and 1;
    # samples at x = 0.5 + 2 * (-0.375, -0.125, 0.125, 0.375) = -0.25, 0.25, 0.75, 1.25 fall on
    # source voxels 0, 0, 1, 1: half of them inside, all y and z samples inside -> 0.5
    fractions = fractional_mask(Volume(source, array), target)
    expected = np.zeros(target.shape)
    expected[0, 0, 0] = 0.5
    assert np.array_equal(fractions, expected)
    assert fractions.dtype == np.float32


def test_fraction_of_a_fractional_source_is_its_mean() -> None:
    source = Grid((2, 2, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    target = Grid((1, 1, 1), (2.0, 2.0, 2.0), (0.5, 0.5, 0.5))
    array = np.array([0.0, 0.25, 0.5, 1.0, 1.0, 1.0, 0.0, 0.25], np.float32).reshape(2, 2, 2)
    # each source voxel holds 1/8 of the target voxel's samples: mean = 4 / 8 = 0.5
    assert fractional_mask(Volume(source, array), target)[0, 0, 0] == pytest.approx(0.5)


@pytest.mark.parametrize("direction", [None, ROTATED])
def test_ellipsoid_volume_and_position_on_a_coarser_grid(
    direction: tuple[float, ...] | None,
) -> None:
    ct = Grid((90, 70, 50), (1.0, 1.0, 1.0), (-40.0, -30.0, -20.0))
    if direction is not None:  # the same box of patient space, indexed along rotated axes
        ct = Grid((70, 90, 50), (1.0, 1.0, 1.0), (49.0, -30.0, -20.0), direction)
    centre, semi_axes = (-5.3, 2.7, 1.1), (30.0, 20.0, 15.0)
    vois = vois_on_grid({"liver": ellipsoid(ct, centre, semi_axes)}, SPECT_GRID)
    fractions = vois.masks["liver"]
    analytic_ml = 4.0 / 3.0 * math.pi * 30.0 * 20.0 * 15.0 / 1000.0  # 37.699 mL
    assert vois.volume_ml("liver") == pytest.approx(analytic_ml, rel=0.02)
    assert fractions.min() >= 0.0
    assert fractions.max() <= 1.0
    assert np.any((fractions > 0) & (fractions < 1))  # partial voxels at the surface
    assert np.allclose(centroid_mm(fractions, SPECT_GRID), centre, atol=0.5)


def test_a_mask_outside_the_target_grid_is_refused_naming_the_voi() -> None:
    far = Grid((10, 10, 10), (1.0, 1.0, 1.0), (500.0, 500.0, 500.0))
    with pytest.raises(InvalidInputError, match="tumour_2") as error:
        vois_on_grid({"tumour_2": Volume(far, np.ones(far.shape, np.float32))}, SPECT_GRID)
    assert error.value.field == "tumour_2"
    # voxel centres x = -65 ... -56 mm; the SPECT grid starts at -60.1 - 2.4 = -62.5 mm, so
    # the columns at -65, -64 and -63 mm (30 % of the mask) are outside
    edge = Grid((10, 10, 10), (1.0, 1.0, 1.0), (-65.0, -50.0, -40.0))
    with pytest.raises(InvalidInputError, match="spleen") as error:
        vois_on_grid({"spleen": Volume(edge, np.ones(edge.shape, np.float32))}, SPECT_GRID)
    assert error.value.value == "30 % of the mask"
    with pytest.raises(InvalidInputError, match="kidney"):
        vois_on_grid({"kidney": Volume(edge, np.zeros(edge.shape, np.float32))}, SPECT_GRID)


def test_mask_values_outside_zero_one_are_refused() -> None:
    grid = Grid((2, 2, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(InvalidInputError, match="binary"):
        fractional_mask(Volume(grid, np.full(grid.shape, 2.0)), SPECT_GRID)
    with pytest.raises(InvalidInputError, match="supersampling"):
        fractional_mask(Volume(grid, np.ones(grid.shape)), SPECT_GRID, supersampling=0)
    with pytest.raises(InvalidInputError, match="liver") as error:
        vois_on_grid({"liver": Volume(grid, np.full(grid.shape, -0.1))}, SPECT_GRID)
    assert error.value.field == "liver"


def test_four_organs_on_a_128_cube_in_well_under_a_second() -> None:
    spect = Grid((128, 128, 128), (4.8, 4.8, 4.8), (-304.8, -304.8, -304.8))
    ct = Grid((200, 160, 120), (2.0, 2.0, 2.5), (-200.0, -160.0, -150.0))
    organs = {
        "left_kidney": ellipsoid(ct, (70.0, 30.0, 0.0), (30.0, 25.0, 55.0)),
        "right_kidney": ellipsoid(ct, (-70.0, 30.0, 0.0), (30.0, 25.0, 55.0)),
        "liver": ellipsoid(ct, (-60.0, -20.0, 60.0), (90.0, 70.0, 75.0)),
        "spleen": ellipsoid(ct, (80.0, 10.0, 70.0), (35.0, 30.0, 55.0)),
    }
    start = time.perf_counter()
    vois = vois_on_grid(organs, spect)
    assert time.perf_counter() - start < 1.0  # about 0.2 s on one idle core
    liver_ml = 4.0 / 3.0 * math.pi * 90.0 * 70.0 * 75.0 / 1000.0  # 1979.2 mL
    assert vois.volume_ml("liver") == pytest.approx(liver_ml, rel=0.02)


def test_voi_set_volume_and_overlap_by_hand() -> None:
    grid = Grid((3, 1, 1), (2.0, 5.0, 10.0), (0.0, 0.0, 0.0))  # voxels of 0.1 mL
    first = np.array([1.0, 0.5, 0.25], np.float32).reshape(grid.shape)
    second = np.array([1.0, 0.75, 0.5], np.float32).reshape(grid.shape)
    vois = VoiSet({"liver": first, "tumour_1": second, "spleen": np.zeros(grid.shape)}, grid)
    assert vois.names == ("liver", "tumour_1", "spleen")
    assert vois.volume_ml("liver") == pytest.approx(0.175)  # (1 + 0.5 + 0.25) x 0.1 mL
    # surely shared: max(0, f1 + f2 - 1) = 1, 0.25, 0 -> 1.25 voxels x 0.1 mL
    assert vois.overlap_ml("liver", "tumour_1") == pytest.approx(0.125)
    assert vois.overlaps_ml() == {("liver", "tumour_1"): pytest.approx(0.125)}
    with pytest.raises(ValueError, match="read-only"):
        vois.masks["liver"][0, 0, 0] = 0.0
    with pytest.raises(InvalidInputError, match="kidney"):
        vois.volume_ml("kidney")


@pytest.mark.parametrize(
    ("masks", "field"),
    [
        ({"Liver": np.zeros((1, 1, 3))}, "Liver"),
        ({"liver": np.zeros((1, 3, 1))}, "liver"),
        ({"liver": np.full((1, 1, 3), 1.5)}, "liver"),
        ({"liver": np.full((1, 1, 3), np.nan)}, "liver"),
        ({}, "masks"),
    ],
)
def test_bad_voi_sets_are_refused(masks: dict[str, np.ndarray], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        VoiSet(masks, Grid((3, 1, 1), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)))


def test_label_image_nifti_in_patient_coordinates(tmp_path: Path) -> None:
    labels = np.zeros((6, 5, 4), np.int16)  # nibabel order (i, j, k)
    labels[1, 2, 3] = 1
    labels[4, 0:2, 0] = 2
    # NIfTI is RAS: voxel (i, j, k) at (10 + 2i, 20 + 3j, 30 + 4k) mm RAS
    affine = np.array([[2.0, 0, 0, 10.0], [0, 3.0, 0, 20.0], [0, 0, 4.0, 30.0], [0, 0, 0, 1]])
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), path)
    masks = read_label_image(path, {1: "Left Kidney", 2: "Liver"})
    assert list(masks) == ["left_kidney", "liver"]
    kidney = masks["left_kidney"]
    z, y, x = (int(v[0]) for v in np.nonzero(kidney.array))
    # (i, j, k) = (1, 2, 3) -> RAS (12, 26, 42) mm -> LPS (-12, -26, 42) mm
    assert np.allclose(kidney.grid.index_to_physical([x, y, z]), [-12.0, -26.0, 42.0])
    assert kidney.array.sum() == 1.0
    assert masks["liver"].array.sum() == 2.0


def test_label_image_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.nii"
    nib.save(nib.Nifti1Image(np.ones((3, 3, 3), np.int16), np.eye(4)), path)
    with pytest.raises(InvalidInputError, match=r"labels\.nii") as error:
        read_label_image(path, {1: "liver", 7: "spleen"})
    assert error.value.field == str(path)
    two = tmp_path / "two.nii"
    nib.save(nib.Nifti1Image(np.arange(27, dtype=np.int16).reshape(3, 3, 3), np.eye(4)), two)
    with pytest.raises(InvalidInputError, match="same VOI name"):
        read_label_image(two, {1: "Liver", 2: "liver"})
    fractional = tmp_path / "fractional.nii"
    nib.save(nib.Nifti1Image(np.full((3, 3, 3), 0.5, np.float32), np.eye(4)), fractional)
    with pytest.raises(InvalidInputError, match=r"fractional\.nii"):
        read_label_image(fractional, {1: "liver"})
    with pytest.raises(InvalidInputError, match=r"missing\.nii"):
        read_label_image(tmp_path / "missing.nii", {1: "liver"})


# --- RTSTRUCT and SEG on a CT series (written here until imaging.ct.write_ct_series lands) ---

CT_GRID = Grid((90, 70, 50), (1.0, 1.0, 1.0), (-40.0, -30.0, -20.0))
LIVER = ((-5.3, 2.7, 1.1), (30.0, 20.0, 15.0))  # centre, semi-axes (mm)
TUMOUR = ((32.3, -18.0, 14.8), (10.0, 10.0, 10.0))


def write_ct(grid: Grid, folder: Path) -> list[Dataset]:
    """A CT series (CT Image Storage, one file per slice) on `grid`, read back in shuffled order."""
    folder.mkdir()
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    matrix = grid.direction_matrix()
    for z in range(grid.size[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
            "Test^Phantom",
            "P1",
            "",
            "O",
        )
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study, "20250101", "0900", "1"
        ds.AccessionNumber, ds.ReferringPhysicianName, ds.Manufacturer = "", "", "test"
        ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "CT", series, 1
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame, ""
        ds.InstanceNumber, ds.ImageType = z + 1, ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in grid.index_to_physical([0, 0, z])]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*matrix[:, 0], *matrix[:, 1])]
        ds.PixelSpacing = [grid.spacing_mm[1], grid.spacing_mm[0]]  # row spacing (y), column (x)
        ds.SliceThickness = grid.spacing_mm[2]
        ds.Rows, ds.Columns = grid.size[1], grid.size[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.KVP = -1024, 1, 120
        ds.PixelData = np.zeros(grid.shape[1:], np.int16).tobytes()
        ds.save_as(folder / f"{generate_uid()}.dcm", enforce_file_format=True)
    return [pydicom.dcmread(path) for path in sorted(folder.iterdir())]


def organ_masks(grid: Grid = CT_GRID) -> dict[str, Volume]:
    return {"liver": ellipsoid(grid, *LIVER), "tumour_1": ellipsoid(grid, *TUMOUR)}


def ellipsoid_ml(semi_axes_mm: tuple[float, ...]) -> float:
    a, b, c = semi_axes_mm
    return 4.0 / 3.0 * math.pi * a * b * c / 1000.0  # liver 37.699 mL, tumour 4.1888 mL


@pytest.mark.parametrize("file_format", ["rtstruct", "seg"])
@pytest.mark.parametrize("direction", [None, ROTATED])
def test_organs_through_dicom_onto_the_spect_grid(
    tmp_path: Path, file_format: str, direction: tuple[float, ...] | None
) -> None:
    ct = (
        CT_GRID
        if direction is None
        else Grid((70, 90, 50), (1.0,) * 3, (49.0, -30.0, -20.0), direction)
    )
    reference = write_ct(ct, tmp_path / "ct")
    path = tmp_path / f"{file_format}.dcm"
    if file_format == "rtstruct":
        masks = read_rtstruct(write_rtstruct(organ_masks(ct), reference, path), ct)
    else:
        masks = read_seg(write_seg(organ_masks(ct), reference, path))
    assert list(masks) == ["liver", "tumour_1"]
    vois = vois_on_grid(masks, SPECT_GRID)
    for name, (centre, semi_axes) in (("liver", LIVER), ("tumour_1", TUMOUR)):
        assert vois.volume_ml(name) == pytest.approx(ellipsoid_ml(semi_axes), rel=0.02)
        assert np.allclose(centroid_mm(vois.masks[name], SPECT_GRID), centre, atol=0.5)
        assert vois.masks[name].min() >= 0.0
        assert vois.masks[name].max() <= 1.0
    assert vois.overlaps_ml() == {}


def test_rtstruct_is_a_structure_set_on_the_ct_slices(tmp_path: Path) -> None:
    reference = write_ct(CT_GRID, tmp_path / "ct")
    path = write_rtstruct(organ_masks(), reference, tmp_path / "rs.dcm")
    ds = pydicom.dcmread(path)
    ct = reference[0]
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == RTStructureSetStorage
    assert (ds.Modality, ds.PatientID, ds.StudyInstanceUID) == (
        "RTSTRUCT",
        "P1",
        ct.StudyInstanceUID,
    )
    frame = ds.ReferencedFrameOfReferenceSequence[0]
    assert frame.FrameOfReferenceUID == ct.FrameOfReferenceUID
    series = frame.RTReferencedStudySequence[0].RTReferencedSeriesSequence[0]
    assert series.SeriesInstanceUID == ct.SeriesInstanceUID
    assert len(series.ContourImageSequence) == CT_GRID.size[2]
    assert [(r.ROINumber, r.ROIName) for r in ds.StructureSetROISequence] == [
        (1, "liver"),
        (2, "tumour_1"),
    ]
    assert [
        (o.ReferencedROINumber, o.RTROIInterpretedType) for o in ds.RTROIObservationsSequence
    ] == [
        (1, "ORGAN"),
        (2, "GTV"),
    ]
    slice_of = {d.SOPInstanceUID: float(d.ImagePositionPatient[2]) for d in reference}
    tumour = ds.ROIContourSequence[1]
    assert tumour.ReferencedROINumber == 2
    for contour in tumour.ContourSequence:
        points = np.array(contour.ContourData, dtype=float).reshape(-1, 3)
        assert contour.ContourGeometricType == "CLOSED_PLANAR"
        assert contour.NumberOfContourPoints == len(points)
        # each contour lies on the plane of the CT slice it references
        assert np.all(
            points[:, 2] == slice_of[contour.ContourImageSequence[0].ReferencedSOPInstanceUID]
        )
    # the tumour spans z = 4.8 ... 24.8 mm: slices at z = 5 ... 24 mm (integers from -20)
    assert len({float(c.ContourData[2]) for c in tumour.ContourSequence}) == 20


def test_contours_with_holes_and_islands(tmp_path: Path) -> None:
    grid = Grid((40, 40, 3), (1.0, 1.0, 2.0), (-20.0, -20.0, 0.0))
    reference = write_ct(grid, tmp_path / "ct")
    y, x = np.mgrid[-20:20, -20:20] + 0.25
    radius = np.hypot(x, y)
    ring = ((radius <= 15) & (radius > 8)) | (radius <= 3)  # annulus with an island in its hole
    array = np.zeros(grid.shape, np.float32)
    array[1] = ring
    path = write_rtstruct({"tumour_1": Volume(grid, array)}, reference, tmp_path / "rs.dcm")
    assert len(pydicom.dcmread(path).ROIContourSequence[0].ContourSequence) == 3
    # filled at voxel centres only, the 0.5 iso-lines give back exactly the voxels
    exact = read_rtstruct(path, grid, supersampling=1)["tumour_1"]
    assert np.array_equal(exact.array, array)
    fractions = read_rtstruct(path, grid)["tumour_1"].array
    assert fractions.sum() == pytest.approx(array.sum(), rel=0.01)
    assert fractions[1, 20, 20] == 1.0  # island
    assert fractions[1, 20, 26] == 0.0  # hole
    assert fractions[1, 20, 31] == 1.0  # ring


def hand_contour(corners_xy: list[tuple[float, float]], z_mm: float, ct: Dataset) -> Dataset:
    contour = Dataset()
    contour.ContourImageSequence = [Dataset()]
    contour.ContourImageSequence[0].ReferencedSOPClassUID = ct.SOPClassUID
    contour.ContourImageSequence[0].ReferencedSOPInstanceUID = ct.SOPInstanceUID
    contour.ContourGeometricType = "CLOSED_PLANAR"
    contour.NumberOfContourPoints = len(corners_xy)
    contour.ContourData = [v for x, y in corners_xy for v in (x, y, z_mm)]
    return contour


def square(low: float, high: float) -> list[tuple[float, float]]:
    return [(low, low), (high, low), (high, high), (low, high)]


def test_hand_drawn_square_with_a_hole_off_the_slice_plane(tmp_path: Path) -> None:
    grid = Grid((12, 12, 3), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0))
    reference = write_ct(grid, tmp_path / "ct")
    template = write_rtstruct(
        {"liver": Volume(grid, np.ones(grid.shape, np.float32))}, reference, tmp_path / "rs.dcm"
    )
    ds = pydicom.dcmread(template)
    # outer square -0.5 ... 9.5 mm: voxels 0-9 (100); hole 2.5 ... 6.5 mm: voxels 3-6 (16);
    # drawn at z = 2.6 mm (index 1.3), the file's only plane: a slab one reference slice thick,
    # 1.6 ... 3.6 mm, covers 0.7 of slice 1 (1 ... 3 mm) and 0.3 of slice 2 (3 ... 5 mm)
    ds.ROIContourSequence[0].ContourSequence = [
        hand_contour(square(-0.5, 9.5), 2.6, reference[0]),
        hand_contour(square(2.5, 6.5), 2.6, reference[0]),
    ]
    ds.save_as(template)
    array = read_rtstruct(template, grid)["liver"].array
    in_plane = np.zeros(grid.shape[1:])
    in_plane[0:10, 0:10] = 1.0
    in_plane[3:7, 3:7] = 0.0
    assert np.allclose(array, [0.0 * in_plane, 0.7 * in_plane, 0.3 * in_plane], atol=1e-6)
    ds.ROIContourSequence[0].ContourSequence[0] = hand_contour(square(-0.5, 9.5), 5.2, reference[0])
    ds.save_as(template)
    with pytest.raises(InvalidInputError, match="liver") as error:  # slice 2.6 > 2.5: outside
        read_rtstruct(template, grid)
    assert error.value.field == str(template)
    ds.ROIContourSequence[0].ContourSequence[0] = hand_contour(
        [(0.0, 0.0), (5.0, 5.0)], 2.0, reference[0]
    )
    ds.save_as(template)
    with pytest.raises(InvalidInputError, match="3 points"):
        read_rtstruct(template, grid)


def test_fractional_seg_keeps_fractions_and_references_the_ct(tmp_path: Path) -> None:
    reference = write_ct(CT_GRID, tmp_path / "ct")
    blurred = organ_masks()["tumour_1"].array * np.float32(0.5)
    blurred[35:, :, :] *= 1.5  # values 0, 0.5, 0.75 (tumour on slices 25 ... 44)
    path = write_seg({"tumour_1": Volume(CT_GRID, blurred)}, reference, tmp_path / "seg.dcm")
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == SegmentationStorage
    assert (ds.SegmentationType, ds.SegmentationFractionalType) == ("FRACTIONAL", "OCCUPANCY")
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == reference[0].SeriesInstanceUID
    assert ds.FrameOfReferenceUID == reference[0].FrameOfReferenceUID
    assert ds.SegmentSequence[0].SegmentLabel == "tumour_1"
    mask = read_seg(path)["tumour_1"]
    # 8-bit occupancy: 0.5 -> 128/255 = 0.50196, 0.75 -> 191/255 = 0.74902
    assert sorted(np.unique(mask.array).round(5)) == [0.0, 0.50196, 0.74902]
    assert mask.array.sum() * mask.grid.voxel_volume_ml == pytest.approx(
        blurred.sum() * CT_GRID.voxel_volume_ml, rel=0.005
    )
    assert pydicom.dcmread(write_seg(organ_masks(), reference, path)).SegmentationType == "BINARY"


@pytest.mark.parametrize("writer", [write_rtstruct, write_seg])
def test_writers_refuse_masks_off_the_ct_grid_naming_the_voi(
    tmp_path: Path, writer: object
) -> None:
    reference = write_ct(Grid((8, 8, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), tmp_path / "ct")
    shifted = Grid((8, 8, 4), (1.0, 1.0, 1.0), (0.5, 0.0, 0.0))
    ones = np.ones(shifted.shape, np.float32)
    assert callable(writer)
    with pytest.raises(InvalidInputError, match="spleen"):
        writer({"spleen": Volume(shifted, ones)}, reference, tmp_path / "out.dcm")
    on_ct = Grid((8, 8, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    with pytest.raises(InvalidInputError, match="Spleen"):
        writer({"Spleen": Volume(on_ct, ones)}, reference, tmp_path / "out.dcm")
    with pytest.raises(InvalidInputError, match="spleen"):
        writer({"spleen": Volume(on_ct, ones * 0)}, reference, tmp_path / "out.dcm")
    gap = [ds for ds in reference if float(ds.ImagePositionPatient[2]) != 1.0]  # no slice 1
    with pytest.raises(InvalidInputError, match="reference_ct"):
        writer({"spleen": Volume(on_ct, ones)}, gap, tmp_path / "out.dcm")


def test_readers_refuse_other_files_naming_them(tmp_path: Path) -> None:
    grid = Grid((8, 8, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    write_ct(grid, tmp_path / "ct")
    ct_file = next((tmp_path / "ct").iterdir())
    with pytest.raises(InvalidInputError, match="RT Structure Set") as error:
        read_rtstruct(ct_file, grid)
    assert error.value.field == str(ct_file)
    with pytest.raises(InvalidInputError) as error:
        read_seg(ct_file)
    assert error.value.field == str(ct_file)
