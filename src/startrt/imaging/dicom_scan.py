"""Index a folder of DICOM files by series.

Every file under the folder (any name, any depth) is checked for the PS3.10 7.1 preamble ("DICM"
at byte 128); its header is read without pixel data and grouped by SeriesInstanceUID (PS3.3
C.7.3.1 General Series). DICOMDIR files (PS3.10 8, Media Storage Directory) are skipped. A
dataset stored without the PS3.10 preamble and header (a raw stream, as some older exporters
write) is refused naming it rather than skipped: skipping a time point's SPECT would change the
dosimetry silently.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.uid import MediaStorageDirectoryStorage

from startrt.imaging.dicom_common import read_dataset, require
from startrt.validation import InvalidInputError

INDEX_TAGS = ("SeriesInstanceUID", "Modality", "SeriesDescription", "FrameOfReferenceUID")
PREAMBLE_BYTES = 128
DICOM_PREFIX = b"DICM"
RAW_DATASET_GROUPS = (0x0002, 0x0008)  # the first group of a dataset stored without preamble
RAW_FIRST_ELEMENT_MAX = 0x0100  # its first element: (0002,0000-0010) or (0008,0005-0018)


@dataclass(frozen=True)
class SeriesInfo:
    """One series: its files (sorted by path) and the header fields used to choose it."""

    uid: str
    modality: str
    files: tuple[Path, ...]
    description: str
    frame_of_reference_uid: str


@dataclass(frozen=True)
class DicomIndex:
    """The series found in a folder."""

    folder: Path
    all_series: tuple[SeriesInfo, ...]

    def series(self, modality: str) -> list[SeriesInfo]:
        """The series of one modality ("NM", "PT", "CT", "RTSTRUCT", "SEG", "RTDOSE")."""
        return [info for info in self.all_series if info.modality == modality]


def scan_dicom_folder(folder: Path, *, skip_non_dicom: bool = True) -> DicomIndex:
    """Index every DICOM file under `folder` by series.

    Files without the DICM preamble are skipped (`skip_non_dicom`) or refused; a file with the
    preamble whose header cannot be parsed, or without SeriesInstanceUID or Modality, raises
    InvalidInputError naming the file."""
    if not folder.is_dir():
        raise InvalidInputError("folder", str(folder), "is not an existing folder")
    headers: dict[str, list[tuple[Path, Dataset]]] = defaultdict(list)
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        head = _head(path)
        if head[PREAMBLE_BYTES:] != DICOM_PREFIX:
            if _is_raw_dataset(head):
                raise InvalidInputError(
                    str(path),
                    "no DICM preamble",
                    "a DICOM dataset without the PS3.10 file header (preamble, DICM, file meta "
                    "information) is not read: export it as a DICOM file",
                )
            if skip_non_dicom:
                continue
            raise InvalidInputError(str(path), "file", "is not a DICOM file (no DICM preamble)")
        ds = read_dataset(path, stop_before_pixels=True, specific_tags=INDEX_TAGS)
        if ds.file_meta.get("MediaStorageSOPClassUID") == MediaStorageDirectoryStorage:
            continue
        headers[str(require(ds, "SeriesInstanceUID", path))].append((path, ds))
    return DicomIndex(folder, tuple(_series_info(uid, files) for uid, files in headers.items()))


def _head(path: Path) -> bytes:
    with path.open("rb") as stream:
        return stream.read(PREAMBLE_BYTES + len(DICOM_PREFIX))


def _is_raw_dataset(head: bytes) -> bool:
    """Whether the file starts with a data element (PS3.5 7.1) of group 0002 or 0008 in little
    endian: explicit VR (two upper-case letters after the tag) or implicit VR (a 4-byte value
    length below 2^16)."""
    if len(head) < 8:
        return False
    group = int.from_bytes(head[0:2], "little")
    element = int.from_bytes(head[2:4], "little")
    if group not in RAW_DATASET_GROUPS or element >= RAW_FIRST_ELEMENT_MAX:
        return False
    explicit_vr = head[4:6].isalpha() and head[4:6].isupper()
    return explicit_vr or int.from_bytes(head[4:8], "little") < 1 << 16


def _series_info(uid: str, files: list[tuple[Path, Dataset]]) -> SeriesInfo:
    first_path, first = files[0]
    modality = str(require(first, "Modality", first_path))
    for path, ds in files[1:]:
        if ds.get("Modality") != modality:
            raise InvalidInputError(
                str(path), ds.get("Modality"), f"modality differs from {modality} in series {uid}"
            )
    return SeriesInfo(
        uid=uid,
        modality=modality,
        files=tuple(path for path, _ in files),
        description=str(first.get("SeriesDescription", "")),
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
    )
