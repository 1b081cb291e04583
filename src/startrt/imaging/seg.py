"""DICOM Segmentation (SEG) objects of VOI masks, written and read with highdicom.

Masks on the CT grid become one segment each (label = VOI name) referencing the CT slices:
BINARY when every mask is 0/1, else FRACTIONAL (OCCUPANCY, 8 bits). DICOM PS3.3 A.51
(Segmentation IOD); Herrmann et al., J Digit Imaging 2018;31:537 (highdicom).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import highdicom as hd
import numpy as np
import numpy.typing as npt
from pydicom import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import SegmentationStorage, generate_uid

import startrt
from startrt.imaging.vois import masks_on_reference, reference_ct_grid, voi_name
from startrt.imaging.volume import Grid, Volume
from startrt.validation import InvalidInputError

SERIES_NUMBER = 902
_ORGAN = codes.SCT.AnatomicalStructure
# VOI name fragment -> (segmented property category, type), SNOMED CT (DICOM PS3.16 CID 7150/7151)
_PROPERTIES: tuple[tuple[str, Code, Code], ...] = (
    ("kidney", _ORGAN, codes.SCT.Kidney),
    ("liver", _ORGAN, codes.SCT.Liver),
    ("spleen", _ORGAN, codes.SCT.Spleen),
    ("marrow", _ORGAN, codes.SCT.BoneMarrow),
    ("tumo", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm),
    ("lesion", codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Lesion),
)


def write_seg(masks: Mapping[str, Volume], reference_ct: Sequence[Dataset], path: Path) -> Path:
    """Write masks drawn on the CT grid as a DICOM SEG referencing the CT slices."""
    grid, slices = reference_ct_grid(reference_ct)
    arrays = masks_on_reference(masks, grid)
    stacked = np.stack(list(arrays.values()), axis=-1)  # (slice, row, column, segment)
    binary = bool(np.all((stacked == 0) | (stacked == 1)))
    descriptions = [_description(number, name) for number, name in enumerate(arrays, start=1)]
    segmentation = hd.seg.Segmentation(
        source_images=list(slices),
        pixel_array=stacked.astype(np.uint8) if binary else stacked.astype(np.float32),
        segmentation_type="BINARY" if binary else "FRACTIONAL",
        fractional_type="OCCUPANCY",
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="startrt",
        manufacturer_model_name="startrt",
        software_versions=startrt.__version__,
        device_serial_number="0",
        series_description="startrt VOIs",
    )
    segmentation.save_as(path)
    return path


def read_seg(path: Path) -> dict[str, Volume]:
    """Masks (float32; fractions for FRACTIONAL SEG) of every segment, keyed by snake_case
    segment label, on the grid spanned by the SEG frames."""
    try:
        segmentation = hd.seg.segread(path)
    except (InvalidDicomError, OSError, ValueError, AttributeError) as error:
        raise InvalidInputError(
            str(path), type(error).__name__, "not a readable DICOM SEG"
        ) from error
    if segmentation.SOPClassUID != SegmentationStorage:
        raise InvalidInputError(str(path), segmentation.SOPClassUID, "not a DICOM SEG")
    try:
        volume = segmentation.get_volume(dtype=np.float32, rescale_fractional=True)
    except (RuntimeError, ValueError) as error:
        raise InvalidInputError(str(path), str(error), "frames do not form a 3-D grid") from error
    grid = _grid_of_affine(volume.affine, volume.spatial_shape)
    masks: dict[str, Volume] = {}
    for channel, number in enumerate(segmentation.segment_numbers):
        name = voi_name(segmentation.get_segment_description(number).segment_label)
        if name in masks:
            raise InvalidInputError(str(path), name, "two segments have the same VOI name")
        masks[name] = Volume(grid, np.ascontiguousarray(volume.array[..., channel]))
    return masks


def _description(number: int, name: str) -> hd.seg.SegmentDescription:
    category, property_type = _property(name)
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=name,
        segmented_property_category=category,
        segmented_property_type=property_type,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="startrt",
            version=startrt.__version__,
            family=codes.cid7162.MorphologicalOperations,
        ),
    )


def _property(name: str) -> tuple[Code, Code]:
    """Segmented property category and type of a VOI name (Tissue when not known)."""
    for fragment, category, property_type in _PROPERTIES:
        if fragment in name:
            return category, property_type
    return codes.SCT.Tissue, codes.SCT.Tissue


def _grid_of_affine(affine: npt.NDArray[np.float64], shape: tuple[int, ...]) -> Grid:
    """Grid of a highdicom volume: its affine maps (slice, row, column) indices to LPS mm."""
    steps = affine[:3, [2, 1, 0]]  # columns: step along x (column), y (row), z (slice)
    spacing = np.linalg.norm(steps, axis=0)
    direction = steps / spacing
    return Grid(
        size=(int(shape[2]), int(shape[1]), int(shape[0])),
        spacing_mm=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        origin_mm=(float(affine[0, 3]), float(affine[1, 3]), float(affine[2, 3])),
        direction=tuple(float(v) for v in direction.ravel()),
    )
