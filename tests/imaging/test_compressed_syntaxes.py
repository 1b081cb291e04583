"""Every standard lossless transfer syntax reads exactly: SPECT, CT and a whole study.

Encoders used to write the compressed files: RLE Lossless by pydicom's own encoder, JPEG-LS
Lossless by pyjpegls, JPEG 2000 Lossless by pylibjpeg-openjpeg (all through
`Dataset.compress`). JPEG Lossless has no encoder in pydicom; its first-order prediction (SV1)
stream is made by the GDCM inside SimpleITK (`GDCMImageIO` with the "JPEG" compressor writes
1.2.840.10008.1.2.4.70), one frame at a time, and its fragments are put into the dataset. A
Selection Value 1 stream is also a valid Process 14 stream, so the same fragments serve for
1.2.840.10008.1.2.4.57 (process 14, any predictor). The readers decode them with pylibjpeg
(libjpeg, openjpeg, rle plugins) and pyjpegls.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from startrt.dosimetry.cycle_dosimetry import compute_dosimetry
from startrt.dosimetry.study import load_study
from startrt.imaging import dicom_common as dc
from startrt.imaging.ct import read_ct, write_ct_series
from startrt.imaging.dicom_scan import scan_dicom_folder
from startrt.imaging.phantom_study import make_phantom_study
from startrt.imaging.spect import read_spect, write_spect_nm
from startrt.imaging.volume import Grid, Volume

LOSSLESS = (
    RLELossless,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEG2000Lossless,
    DeflatedExplicitVRLittleEndian,
)
INJECTION = datetime(2024, 3, 10, 22, 30)
GRID = Grid((64, 66, 5), (4.8, 4.8, 4.8), (-100.0, 50.5, -20.25), (1, 0, 0, 0, 1, 0, 0, 0, 1))
CT_GRID = Grid((64, 70, 4), (2.4, 2.4, 3.0), (-100.0, 50.5, -20.25), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def _gdcm_jpeg_lossless_frames(ds: Dataset) -> list[bytes]:
    """Each frame of `ds` as a JPEG Lossless SV1 codestream, encoded by SimpleITK's GDCM."""
    frames = np.asarray(ds.pixel_array).reshape(-1, int(ds.Rows), int(ds.Columns))
    encoded: list[bytes] = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, frame in enumerate(frames):
            target = Path(tmp) / f"frame{index}.dcm"
            writer = sitk.ImageFileWriter()
            writer.SetImageIO("GDCMImageIO")
            writer.SetFileName(str(target))
            writer.UseCompressionOn()
            writer.SetCompressor("JPEG")
            writer.Execute(sitk.GetImageFromArray(np.ascontiguousarray(frame)))
            written = pydicom.dcmread(target)
            assert written.file_meta.TransferSyntaxUID == JPEGLosslessSV1
            encoded.extend(generate_frames(written.PixelData, number_of_frames=1))
    return encoded


def compress_file(path: Path, syntax: UID) -> None:
    """Rewrite the DICOM file at `path` in the transfer syntax `syntax` (lossless)."""
    ds = pydicom.dcmread(path)
    if syntax in (JPEGLossless, JPEGLosslessSV1):
        fragments = _gdcm_jpeg_lossless_frames(ds)
        ds.PixelData = encapsulate(fragments)
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = syntax
    elif syntax == DeflatedExplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = syntax
    else:
        ds.compress(syntax)
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID == syntax


def _spect(folder: Path) -> Path:
    rng = np.random.default_rng(3)
    values = rng.uniform(0.0, 2.0, GRID.shape)
    values[0, 0, :3] = 0.0
    return write_spect_nm(
        Volume(GRID, values),
        folder,
        acquisition_datetime=INJECTION + timedelta(hours=24),
        injection_datetime=INJECTION,
        injected_activity_mbq=7400.0,
        patient_id="P1",
        study_uid=pydicom.uid.generate_uid(),
        frame_of_reference_uid=pydicom.uid.generate_uid(),
    )


@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda uid: uid.name)
def test_spect_reads_exactly_in_every_lossless_syntax(tmp_path: Path, syntax: UID) -> None:
    original = _spect(tmp_path / "plain")
    compressed = tmp_path / "compressed" / original.name
    compressed.parent.mkdir()
    shutil.copy(original, compressed)
    compress_file(compressed, syntax)

    stored_plain = dc.pixel_array(pydicom.dcmread(original), original)
    stored = dc.pixel_array(pydicom.dcmread(compressed), compressed)
    assert stored.dtype == stored_plain.dtype
    assert np.array_equal(stored, stored_plain)
    [plain_series] = scan_dicom_folder(original.parent).series("NM")
    [series] = scan_dicom_folder(compressed.parent).series("NM")
    plain, read = read_spect(plain_series), read_spect(series)
    assert read.volume.grid == plain.volume.grid
    assert np.array_equal(read.volume.array, plain.volume.array)


@pytest.mark.parametrize("syntax", LOSSLESS, ids=lambda uid: uid.name)
def test_ct_reads_exactly_in_every_lossless_syntax(tmp_path: Path, syntax: UID) -> None:
    rng = np.random.default_rng(4)
    hu = rng.integers(-1024, 2000, CT_GRID.shape).astype(np.float64)
    hu[0, 0, :4] = (-1024.0, -1000.0, 0.0, 3071.0)
    ct_folder = write_ct_series(
        Volume(CT_GRID, hu),
        tmp_path,
        patient_id="P1",
        study_uid=pydicom.uid.generate_uid(),
        frame_of_reference_uid=pydicom.uid.generate_uid(),
        acquisition_datetime=INJECTION + timedelta(hours=24),
    )
    slices = sorted(ct_folder.iterdir())
    plain_slice = dc.pixel_array(pydicom.dcmread(slices[0]), slices[0])
    for path in slices:
        compress_file(path, syntax)

    # one slice by pydicom's decoders
    assert np.array_equal(dc.pixel_array(pydicom.dcmread(slices[0]), slices[0]), plain_slice)
    # the series by SimpleITK's GDCM (read_ct) and by pydicom (dicom_common.stack_slices)
    [series] = scan_dicom_folder(tmp_path).series("CT")
    assert np.array_equal(read_ct(series).volume.array, hu.astype(np.float32))
    _, values, _ = dc.stack_slices(series.files)
    assert np.array_equal(values, hu)


def test_a_shipped_jpeg_lossless_sv1_file_decodes() -> None:
    """pydicom's wheel ships SC_rgb_jpeg_gdcm.dcm (SV1, RGB, written by GDCM): it decodes to
    the same pixels as its RLE Lossless twin SC_rgb_rle.dcm."""
    files = Path(pydicom.__file__).parent / "data" / "test_files"
    jpeg, rle = files / "SC_rgb_jpeg_gdcm.dcm", files / "SC_rgb_rle.dcm"
    if not (jpeg.is_file() and rle.is_file()):
        pytest.skip("pydicom's test files are not installed")
    ds = pydicom.dcmread(jpeg)
    assert ds.file_meta.TransferSyntaxUID == JPEGLosslessSV1
    assert np.array_equal(dc.pixel_array(ds, jpeg), dc.pixel_array(pydicom.dcmread(rle), rle))


def test_a_study_with_compressed_spects_gives_the_same_doses(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    make_phantom_study(plain, seed=2, grid_size=64, ct_subdivision=2)
    compressed = tmp_path / "compressed"
    shutil.copytree(plain, compressed)
    # one syntax per time point; the SV1 at the first
    spect_files = sorted(compressed.glob("tp*/spect/*.dcm"))
    syntaxes = (JPEGLosslessSV1, RLELossless, JPEGLSLossless, JPEG2000Lossless)
    assert len(spect_files) == len(syntaxes)
    for path, syntax in zip(spect_files, syntaxes, strict=True):
        compress_file(path, syntax)

    expected = compute_dosimetry(load_study(plain, declared_aligned=True), method="organ")
    result = compute_dosimetry(load_study(compressed, declared_aligned=True), method="organ")
    assert set(result.vois) == set(expected.vois)
    for name, voi in expected.vois.items():
        assert result.vois[name].tia_mbq_h == voi.tia_mbq_h, name
        assert result.vois[name].dose_gy == voi.dose_gy, name
