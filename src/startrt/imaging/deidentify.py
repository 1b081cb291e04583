"""De-identification of a DICOM study before it is stored: DICOM PS3.15 Annex E, the Basic
Application Level Confidentiality Profile (Table E.1-1), with two of its options.

- Retain Longitudinal Temporal Information with Full Dates Option (E.3.6): every date and time
  is kept as acquired. Dosimetry needs them: the injection date-time
  (RadiopharmaceuticalStartDateTime), each time point's acquisition date-time and the study
  date matched against the cycle's infusion. The dates are therefore identifying in
  combination; the stored study is pseudonymised trial data, not anonymous data.
- Retain Patient Characteristics Option (E.3.4): sex, age, size and weight are kept (the organ
  method chooses the female or male phantom by sex; the study is matched to the patient by it).

Actions, as the profile names them, on the attributes of the profile present in NM, PT, CT,
RTSTRUCT and SEG instances (`ACTIONS`, applied at any depth of nested sequences):
X removed; Z emptied (type 2 attributes); D replaced by a dummy: PatientID and PatientName by
the trial pseudonym; U every instance UID (Study, Series, SOP Instance, Frame of Reference and
every reference to them, in sequences and in the file meta information) replaced by a new UID
derived from the old one and a secret drawn once per call, so that references inside the
study stay valid (CT to SPECT by FrameOfReferenceUID, RTSTRUCT/SEG to the CT slices by
ReferencedSOPInstanceUID) while the originals cannot be recomputed. UIDs naming a class, a
transfer syntax or a coding scheme, and any UID of the DICOM standard, are kept.
Private attributes, overlays (60xx) and curves (50xx) are removed (the profile's default; the
Retain Safe Private Option is not used). PatientIdentityRemoved is set to YES with
DeidentificationMethod and its codes (CID 7050: 113100, 113106, 113108).

Not covered (stated): text burned into pixel data (the profile requires the images to carry
none; reconstructed SPECT and CT normally do not); file and folder names, which are the
uploader's; the text of non-DICOM files, which the upload does not keep (only `labels.nii.gz` and
`labels.json`, the label-image VOIs, are kept beside the DICOM files). A DICOMDIR (patient
directory records) is removed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, generate_uid

from startrt.validation import InvalidInputError

PREAMBLE_BYTES = 128
DICOM_PREFIX = b"DICM"
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage
KEPT_OTHER_FILES = frozenset({"labels.nii.gz", "labels.json"})

# PS3.15 Table E.1-1, basic profile, for the attributes of NM, PT, CT, RTSTRUCT and SEG
# (General/Patient/Study/Series/Equipment/SOP Common, NM/PET isotope and RT modules); dates
# and times are retained (option E.3.6) and patient characteristics too (option E.3.4)
REMOVE = "X"
EMPTY = "Z"
PSEUDONYM = "D"
DUMMY = "D0"  # D with a fixed dummy value where the attribute is type 1 and not the patient's
DUMMY_VALUE = "REMOVED"
ACTIONS: dict[str, str] = {
    # patient
    "PatientName": PSEUDONYM,
    "PatientID": PSEUDONYM,
    "PatientBirthDate": EMPTY,
    "PatientBirthTime": REMOVE,
    "PatientBirthName": REMOVE,
    "PatientMotherBirthName": REMOVE,
    "OtherPatientIDs": REMOVE,
    "OtherPatientIDsSequence": REMOVE,
    "OtherPatientNames": REMOVE,
    "IssuerOfPatientID": REMOVE,
    "IssuerOfPatientIDQualifiersSequence": REMOVE,
    "PatientAddress": REMOVE,
    "CountryOfResidence": REMOVE,
    "RegionOfResidence": REMOVE,
    "PatientTelephoneNumbers": REMOVE,
    "PatientTelecomInformation": REMOVE,
    "PatientComments": REMOVE,
    "PatientReligiousPreference": REMOVE,
    "EthnicGroup": REMOVE,
    "Occupation": REMOVE,
    "MilitaryRank": REMOVE,
    "BranchOfService": REMOVE,
    "MedicalRecordLocator": REMOVE,
    "MedicalAlerts": REMOVE,
    "Allergies": REMOVE,
    "AdditionalPatientHistory": REMOVE,
    "PatientState": REMOVE,
    "PatientInsurancePlanCodeSequence": REMOVE,
    "PatientPrimaryLanguageCodeSequence": REMOVE,
    "ResponsiblePerson": REMOVE,
    "ResponsibleOrganization": REMOVE,
    "PatientSpeciesDescription": REMOVE,
    "InsurancePlanIdentification": REMOVE,
    # study, visit, request
    "AccessionNumber": EMPTY,
    "IssuerOfAccessionNumberSequence": REMOVE,
    "StudyID": EMPTY,
    "StudyDescription": REMOVE,
    "ReferringPhysicianName": EMPTY,
    "ReferringPhysicianAddress": REMOVE,
    "ReferringPhysicianTelephoneNumbers": REMOVE,
    "ReferringPhysicianIdentificationSequence": REMOVE,
    "ConsultingPhysicianName": REMOVE,
    "ConsultingPhysicianIdentificationSequence": REMOVE,
    "PhysiciansOfRecord": REMOVE,
    "PhysiciansOfRecordIdentificationSequence": REMOVE,
    "NameOfPhysiciansReadingStudy": REMOVE,
    "PhysiciansReadingStudyIdentificationSequence": REMOVE,
    "RequestingPhysician": REMOVE,
    "RequestingService": REMOVE,
    "RequestAttributesSequence": REMOVE,
    "RequestedProcedureDescription": REMOVE,
    "RequestedProcedureID": REMOVE,
    "ReasonForTheRequestedProcedure": REMOVE,
    "ReasonForStudy": REMOVE,
    "AdmissionID": REMOVE,
    "AdmittingDiagnosesDescription": REMOVE,
    "AdmittingDiagnosesCodeSequence": REMOVE,
    "CurrentPatientLocation": REMOVE,
    "FillerOrderNumberImagingServiceRequest": REMOVE,
    "PlacerOrderNumberImagingServiceRequest": REMOVE,
    "ReferencedPatientSequence": REMOVE,
    "ReferencedStudySequence": REMOVE,
    "ReferencedPerformedProcedureStepSequence": REMOVE,
    "ScheduledProcedureStepDescription": REMOVE,
    "ScheduledProcedureStepID": REMOVE,
    "PerformedProcedureStepDescription": REMOVE,
    "PerformedProcedureStepID": REMOVE,
    "PerformedLocation": REMOVE,
    "PerformedStationName": REMOVE,
    "ScheduledPerformingPhysicianName": REMOVE,
    # series, equipment, acquisition
    "SeriesDescription": REMOVE,
    "ProtocolName": REMOVE,
    "OperatorsName": EMPTY,  # X/Z/D: type 2 in the RT Series module (C.8.8.1)
    "OperatorIdentificationSequence": REMOVE,
    "PerformingPhysicianName": REMOVE,
    "PerformingPhysicianIdentificationSequence": REMOVE,
    "InstitutionName": REMOVE,
    "InstitutionAddress": REMOVE,
    "InstitutionalDepartmentName": REMOVE,
    "InstitutionCodeSequence": REMOVE,
    "InstitutionalDepartmentTypeCodeSequence": REMOVE,
    "StationName": REMOVE,
    "DeviceSerialNumber": DUMMY,  # X/Z/D: type 1 in Enhanced General Equipment (SEG)
    "DetectorID": REMOVE,
    "GantryID": REMOVE,
    "PlateID": REMOVE,
    "CassetteID": REMOVE,
    "AcquisitionComments": REMOVE,
    "AcquisitionDeviceProcessingDescription": REMOVE,
    "DerivationDescription": REMOVE,
    "ImageComments": REMOVE,
    "FrameComments": REMOVE,
    "Arbitrary": REMOVE,
    "TextComments": REMOVE,
    "TextString": REMOVE,
    "AuthorObserverSequence": REMOVE,
    "ParticipantSequence": REMOVE,
    "DataSetTrailingPadding": REMOVE,
    "DigitalSignaturesSequence": REMOVE,
    "OriginalAttributesSequence": REMOVE,
    "ModifiedAttributesSequence": REMOVE,
    # RT structure set, segmentation
    "StructureSetName": REMOVE,
    "StructureSetDescription": REMOVE,
    "ROIInterpreter": EMPTY,
    "ROIGenerationDescription": REMOVE,
    "ContentCreatorName": EMPTY,
    "ContentCreatorIdentificationCodeSequence": REMOVE,
    "ReviewerName": REMOVE,
    "VerifyingObserverName": REMOVE,
    "VerifyingObserverIdentificationCodeSequence": REMOVE,
    "PersonName": REMOVE,
    "PersonAddress": REMOVE,
    "PersonTelephoneNumbers": REMOVE,
}
# UIDs that name a class, a syntax or a coding scheme, not an instance: kept (all other UIDs U)
KEPT_UID_KEYWORDS = frozenset(
    {
        "SOPClassUID",
        "ReferencedSOPClassUID",
        "MediaStorageSOPClassUID",
        "AffectedSOPClassUID",
        "RequestedSOPClassUID",
        "ReferencedSOPClassUIDInFile",
        "TransferSyntaxUID",
        "ReferencedTransferSyntaxUIDInFile",
        "ImplementationClassUID",
        "CodingSchemeUID",
        "ContextUID",
        "MappingResourceUID",
        "RelatedGeneralSOPClassUID",
        "OriginalSpecializedSOPClassUID",
        "PrivateInformationCreatorUID",
    }
)
METHOD = "PS3.15 E basic profile; full dates; patient characteristics"  # LO: 64
METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)


@dataclass
class Deidentified:
    """What `deidentify_folder` did: the PatientIDs the files carried before (to match the
    study to the patient), the DICOM files rewritten and the other files removed."""

    original_patient_ids: set[str] = field(default_factory=set)
    dicom_files: int = 0
    removed: list[Path] = field(default_factory=list)


class UidMap:
    """New UIDs for old ones, the same new UID for the same old one: `2.25.<number>` derived
    (SHA-512, by pydicom's generate_uid) from the old UID and a secret of this map."""

    def __init__(self, secret: str | None = None) -> None:
        self._secret = secret if secret is not None else secrets.token_hex(32)
        self._mapped: dict[str, str] = {}

    def __call__(self, uid: str) -> str:
        if not uid or UID(uid).name != uid:  # a UID of the standard (it has a name): kept
            return uid
        if uid not in self._mapped:
            self._mapped[uid] = str(generate_uid(prefix=None, entropy_srcs=[self._secret, uid]))
        return self._mapped[uid]


def deidentify_dataset(ds: Dataset, pseudonym: str, uids: UidMap) -> str:
    """De-identify `ds` in place (and its file meta information); return the PatientID it had."""
    original = str(ds.get("PatientID", "") or "")
    ds.walk(_element_action(pseudonym, uids))
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta:
        meta.MediaStorageSOPInstanceUID = uids(str(meta.MediaStorageSOPInstanceUID))
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    codes = []
    for value, meaning in METHOD_CODES:
        code = Dataset()
        code.CodeValue = value
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = meaning
        codes.append(code)
    ds.DeidentificationMethodCodeSequence = codes
    ds.LongitudinalTemporalInformationModified = "UNMODIFIED"
    return original


def _element_action(pseudonym: str, uids: UidMap) -> Callable[[Dataset, DataElement], None]:
    def act(ds: Dataset, element: DataElement) -> None:
        tag = element.tag
        group = tag.group
        if tag.is_private or (group & 0xFF01) in (0x6000, 0x5000):  # private, overlay, curve
            del ds[tag]
            return
        action = ACTIONS.get(element.keyword)
        if action == REMOVE:
            del ds[tag]
        elif action == EMPTY:
            element.value = [] if element.VR == "SQ" else ""
        elif action == PSEUDONYM:
            element.value = pseudonym
        elif action == DUMMY:
            element.value = DUMMY_VALUE
        elif element.VR == "UI" and element.keyword not in KEPT_UID_KEYWORDS:
            if element.VM > 1:
                element.value = [uids(str(uid)) for uid in element.value]
            elif element.value:
                element.value = uids(str(element.value))

    return act


def deidentify_folder(
    folder: Path, pseudonym: str, *, uid_secret: str | None = None
) -> Deidentified:
    """De-identify every DICOM file under `folder` in place (one UID map for the whole folder,
    so references between its files stay valid); remove DICOMDIR files and every other
    non-DICOM file but the label-image VOIs (`KEPT_OTHER_FILES`). A file that starts like DICOM
    but cannot be read is refused (it could not be de-identified)."""
    uids = UidMap(uid_secret)
    done = Deidentified()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        if not _has_dicom_preamble(path):
            if path.name not in KEPT_OTHER_FILES:
                path.unlink()
                done.removed.append(path)
            continue
        try:
            ds = pydicom.dcmread(path)
        except (InvalidDicomError, ValueError, EOFError, OSError, KeyError) as error:
            relative = path.relative_to(folder).as_posix()
            raise InvalidInputError(
                "study", relative, f"could not be read to de-identify it ({error})"
            ) from None
        meta = getattr(ds, "file_meta", None)
        if meta is not None and str(meta.get("MediaStorageSOPClassUID", "")) == DICOMDIR_CLASS:
            path.unlink()
            done.removed.append(path)
            continue
        original = deidentify_dataset(ds, pseudonym, uids)
        done.original_patient_ids.add(original)
        ds.save_as(path)
        done.dicom_files += 1
    return done


def _has_dicom_preamble(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(PREAMBLE_BYTES)
        return handle.read(len(DICOM_PREFIX)) == DICOM_PREFIX
