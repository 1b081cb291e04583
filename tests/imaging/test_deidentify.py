"""De-identification (DICOM PS3.15 basic profile, dates and patient characteristics kept) of a
phantom study that carries a patient's name, ID, birth date, institution and physicians: none
of them is left in any file, the UIDs are new but still refer to each other, and the study
still loads with all its time points and VOIs."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileDataset

from startrt.dosimetry.study import load_study
from startrt.imaging.deidentify import Deidentified, UidMap, deidentify_folder
from startrt.imaging.phantom_study import make_phantom_study

IDENTIFYING = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN-778899",
    "PatientBirthDate": "19600102",
    "PatientAddress": "1 Main Street, Lund",
    "OtherPatientIDs": "PNR-196001021234",
    "InstitutionName": "St Elsewhere Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "OperatorsName": "Operator^Olga",
    "AccessionNumber": "ACC-424242",
    "DeviceSerialNumber": "SN-90210",
}
PSEUDONYM = "S01-LUN-001"
Loaded = tuple[Path, dict[str, FileDataset], Deidentified]


def identified_phantom(folder: Path) -> Path:
    """A 32^3 phantom study whose DICOM files carry `IDENTIFYING` and a private element."""
    make_phantom_study(folder, seed=3, grid_size=32)
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        for keyword, value in IDENTIFYING.items():
            setattr(ds, keyword, value)
        block = ds.private_block(0x0011, "ACME HIS", create=True)
        block.add_new(0x01, "LO", "Doe^Jane MRN-778899")
        ds.save_as(path)
    return folder


def texts(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in folder.rglob("*") if path.is_file())


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    folder = identified_phantom(tmp_path_factory.mktemp("deid") / "study")
    before = {
        str(path.relative_to(folder)): pydicom.dcmread(path, stop_before_pixels=True)
        for path in folder.rglob("*.dcm")
    }
    done = deidentify_folder(folder, PSEUDONYM)
    return folder, before, done


def test_no_identifying_value_is_left_in_any_file(study: Loaded) -> None:
    folder, _, done = study
    content = texts(folder)
    for value in IDENTIFYING.values():
        assert value.encode() not in content, value
    assert b"Doe" not in content
    assert b"ACME HIS" not in content
    assert done.original_patient_ids == {"MRN-778899"}
    assert not (folder / "truth.json").exists()  # a non-DICOM file is not kept
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert (ds.PatientID, str(ds.PatientName)) == (PSEUDONYM, PSEUDONYM)
        assert ds.PatientBirthDate == ""
        assert ds.AccessionNumber == ""
        assert ds.OperatorsName == ""  # type 2 (RT Series): emptied, not removed
        assert ds.DeviceSerialNumber == "REMOVED"  # type 1 (SEG equipment): a dummy
        assert "InstitutionName" not in ds
        assert "OtherPatientIDs" not in ds
        assert ds.PatientIdentityRemoved == "YES"
        codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
        assert codes == {"113100", "113106", "113108"}


def test_uids_are_replaced_consistently_and_dates_kept(study: Loaded) -> None:
    folder, before, _ = study
    old_uids, new_uids = set(), set()
    for relative, old in before.items():
        new = pydicom.dcmread(folder / relative, stop_before_pixels=True)
        assert new.SOPInstanceUID != old.SOPInstanceUID
        assert new.StudyInstanceUID != old.StudyInstanceUID
        assert new.SOPClassUID == old.SOPClassUID  # a class, not an instance
        assert new.file_meta.MediaStorageSOPInstanceUID == new.SOPInstanceUID
        for keyword in ("StudyDate", "StudyTime", "AcquisitionDate", "AcquisitionTime"):
            assert new.get(keyword) == old.get(keyword)  # full dates retained (E.3.6)
        old_uids.add(old.SOPInstanceUID)
        new_uids.add(new.SOPInstanceUID)
    assert not old_uids & new_uids
    assert len(new_uids) == len(old_uids)


def test_the_deidentified_study_still_loads(study: Loaded) -> None:
    folder, _, _ = study
    loaded = load_study(folder, declared_aligned=True)
    assert loaded.patient_id == PSEUDONYM
    assert len(loaded.time_points) == 4
    assert loaded.voi_source.endswith("rtstruct.dcm")  # its CT references still resolve
    assert {"left_kidney", "right_kidney"} <= set(loaded.vois.names)


def test_the_uid_map_is_consistent_and_keeps_standard_uids() -> None:
    uids = UidMap("secret")
    assert uids("1.2.3.4") == uids("1.2.3.4") != "1.2.3.4"
    assert uids("1.2.3.4") != UidMap("another")("1.2.3.4")
    ct_image_storage = "1.2.840.10008.5.1.4.1.1.2"
    assert uids(ct_image_storage) == ct_image_storage
