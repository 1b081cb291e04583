"""Exports for the statistician on the configured database: CSV per table with the audit
trail, CDISC ODM 1.3.2 XML; roles, site restriction and allocation concealment."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from datetime import date, datetime
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import models
from django.test.utils import isolate_apps
from odmlib.odm_parser import ODMSchemaValidator

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.validation import InvalidInputError
from startrt.web.exports.csv_export import export_csv
from startrt.web.exports.odm_export import export_odm
from startrt.web.exports.services import ODM_FILE, run_export
from startrt.web.exports.tables import patient_path
from startrt.web.trial import services
from startrt.web.trial.models import (
    AuditEntry,
    Consent,
    Membership,
    Patient,
    Role,
    Screening,
    Site,
    Slot,
)
from support.records import eligible_screening

Staff = dict[str, User]
Sites = dict[str, Site]
NS = {"odm": "http://www.cdisc.org/ns/odm/v1.3"}
LUND = ["S01-LUN-001", "S01-LUN-002"]
ALL_PATIENTS = [*LUND, "S01-UPP-001"]
SLOTS_PER_STRATUM = 8


def member(username: str, role: Role, site: Site | None) -> User:
    user = User.objects.create_user(username, password="correct horse battery")
    Membership.objects.create(user=user, site=site, role=role)
    return user


@pytest.fixture
def trial(staff: Staff, sites: Sites) -> None:
    """Lund: 001 randomized (with a consent), 002 ineligible and re-entered with a reason;
    Uppsala: 001 registered only."""
    listing = generate_block_list(
        seed=4242,
        n_per_stratum=SLOTS_PER_STRATUM,
        strata=protocol_strata(default_protocol()),
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)
    first = services.register_patient(staff["nurse"], sites["Lund"], LUND[0], "male")
    Consent.objects.create(patient=first, form_version="2.1", signed_on=date(2025, 2, 20))
    services.record_screening(staff["nurse"], first, eligible_screening())
    services.randomize(staff["investigator"], first)
    second = services.register_patient(staff["nurse"], sites["Lund"], LUND[1], "female")
    services.record_screening(staff["nurse"], second, eligible_screening(hemoglobin_g_l=90))
    services.record_screening(
        staff["nurse"],
        second,
        eligible_screening(hemoglobin_g_l=88),
        reason="Hb re-measured",
        expected_version=1,
    )
    services.register_patient(staff["uppsala"], sites["Uppsala"], "S01-UPP-001", "female")


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def exported(user: User, out_dir: Path) -> dict[str, Path]:
    return {path.name: path for path in export_csv(user, out_dir)}


# --- who may export -------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["nurse", "investigator", "uppsala"])
def test_only_statisticians_monitors_and_administrators_export(
    staff: Staff, who: str, tmp_path: Path
) -> None:
    with pytest.raises(PermissionDenied):
        export_csv(staff[who], tmp_path)
    with pytest.raises(PermissionDenied):
        export_odm(staff[who])
    assert list(tmp_path.iterdir()) == []


def test_an_inactive_statistician_does_not_export(staff: Staff, tmp_path: Path) -> None:
    staff["statistician"].is_active = False
    staff["statistician"].save()
    with pytest.raises(PermissionDenied):
        export_csv(staff["statistician"], tmp_path)


@pytest.mark.usefixtures("trial")
def test_monitors_and_administrators_export_too(staff: Staff, tmp_path: Path) -> None:
    administrator = member("admin", Role.ADMINISTRATOR, None)
    for user in (staff["monitor"], administrator):
        _, patients = read_csv(exported(user, tmp_path / user.username)["trial_patient.csv"])
        assert [row["trial_id"] for row in patients] == ALL_PATIENTS


# --- CSV --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("trial")
def test_one_csv_per_table_of_the_trial_apps_and_the_audit_trail(
    staff: Staff, tmp_path: Path
) -> None:
    files = exported(staff["statistician"], tmp_path)
    # every model of the installed trial apps, whichever helper added it, but access control
    # (memberships) and the raw audit table (exported as audit_trail.csv)
    expected = {
        f"{model._meta.db_table}.csv"
        for model in apps.get_models()
        if model._meta.app_label in {"trial", "treatment", "events", "medications", "safety"}
    } - {"trial_membership.csv", "trial_auditentry.csv"}
    assert set(files) == expected | {"audit_trail.csv"}
    assert {
        "trial_site.csv",
        "trial_patient.csv",
        "trial_consent.csv",
        "trial_screening.csv",
        "trial_decision.csv",
        "trial_randomizationlist.csv",
        "trial_slot.csv",
    } <= set(files)
    assert not any(name.startswith("auth") for name in files)
    for path in files.values():
        header, _ = read_csv(path)
        assert not [column for column in header if "password" in column]


@pytest.mark.usefixtures("trial")
def test_patient_linked_tables_carry_the_trial_id_and_foreign_keys_as_ids(
    staff: Staff, tmp_path: Path
) -> None:
    files = exported(staff["statistician"], tmp_path)
    header, patients = read_csv(files["trial_patient.csv"])
    assert header == ["id", "trial_id", "site_id", "sex", "registered_at", "version"]
    lund = Site.objects.get(name="Lund")
    first = Patient.objects.get(trial_id=LUND[0])
    assert patients[0] == {
        "id": str(first.pk),
        "trial_id": "S01-LUN-001",
        "site_id": str(lund.pk),
        "sex": "male",
        "registered_at": first.registered_at.isoformat(),
        "version": "1",
    }
    assert datetime.fromisoformat(patients[0]["registered_at"]).utcoffset() is not None
    header, consents = read_csv(files["trial_consent.csv"])
    assert header == [
        "trial_id",
        "id",
        "patient_id",
        "form_version",
        "signed_on",
        "version",
        "updated_at",
    ]
    assert [(c["trial_id"], c["patient_id"], c["signed_on"]) for c in consents] == [
        ("S01-LUN-001", str(first.pk), "2025-02-20")
    ]


@pytest.mark.usefixtures("trial")
def test_the_screening_record_is_json_text(staff: Staff, tmp_path: Path) -> None:
    files = exported(staff["statistician"], tmp_path)
    header, screenings = read_csv(files["trial_screening.csv"])
    assert header[:3] == ["trial_id", "id", "patient_id"]
    by_patient = {row["trial_id"]: row for row in screenings}
    assert set(by_patient) == set(LUND)
    second = by_patient["S01-LUN-002"]
    record = json.loads(second["record"])
    assert record == Screening.objects.get(patient__trial_id="S01-LUN-002").record
    assert (record["hemoglobin_g_l"], record["age_years"], record["sex"]) == (88, 64, "female")
    # Hb 88 g/L is not > 90 g/L: ineligible; the change made it version 2
    assert (second["eligible"], second["version"], second["protocol"]) == (
        "false",
        "2",
        "START-01 v1.0",
    )
    assert by_patient["S01-LUN-001"]["eligible"] == "true"


@pytest.mark.usefixtures("trial")
def test_only_slots_already_taken_are_exported_never_the_list(staff: Staff, tmp_path: Path) -> None:
    files = exported(staff["statistician"], tmp_path)
    assert Slot.objects.filter(patient__isnull=True).count() > 0  # future slots exist
    _, slots = read_csv(files["trial_slot.csv"])
    taken = Slot.objects.get(patient__trial_id="S01-LUN-001")
    assert [(s["trial_id"], s["id"], s["arm"], s["treatment_arm"]) for s in slots] == [
        ("S01-LUN-001", str(taken.pk), taken.arm, taken.treatment_arm)
    ]
    header, lists = read_csv(files["trial_randomizationlist.csv"])
    assert "csv" not in header  # the stored list holds every future slot
    assert "sha256" in header
    assert len(lists) == 1


@pytest.mark.usefixtures("trial")
def test_the_audit_trail_is_exported_with_old_new_and_reason(staff: Staff, tmp_path: Path) -> None:
    files = exported(staff["statistician"], tmp_path)
    header, entries = read_csv(files["audit_trail.csv"])
    assert {"at", "username", "action", "table", "row_id", "old", "new", "reason"} <= set(header)
    assert len(entries) == AuditEntry.objects.count()
    (change,) = [e for e in entries if e["table"] == "trial_screening" and e["action"] == "update"]
    assert (change["patient_trial_id"], change["reason"]) == ("S01-LUN-002", "Hb re-measured")
    assert json.loads(change["old"])["record"]["hemoglobin_g_l"] == 90
    assert json.loads(change["new"])["record"]["hemoglobin_g_l"] == 88


@pytest.mark.usefixtures("trial")
def test_a_statistician_of_one_site_exports_only_that_sites_patients(
    sites: Sites, tmp_path: Path
) -> None:
    lund_statistician = member("statistician.lund", Role.STATISTICIAN, sites["Lund"])
    files = exported(lund_statistician, tmp_path)
    _, patients = read_csv(files["trial_patient.csv"])
    assert [row["trial_id"] for row in patients] == LUND
    _, decisions = read_csv(files["trial_decision.csv"])
    assert decisions
    assert {row["trial_id"] for row in decisions} <= set(LUND)
    _, entries = read_csv(files["audit_trail.csv"])
    assert "S01-UPP-001" not in {row["patient_trial_id"] for row in entries}
    assert "S01-LUN-001" in {row["patient_trial_id"] for row in entries}
    root = ET.fromstring(export_odm(lund_statistician))
    keys = [s.get("SubjectKey") for s in root.iterfind(".//odm:SubjectData", NS)]
    assert keys == LUND


@isolate_apps("startrt.web.trial")
def test_the_patient_is_found_through_a_chain_of_foreign_keys() -> None:
    class Course(models.Model):
        patient = models.ForeignKey(Patient, on_delete=models.PROTECT)

        class Meta:
            app_label = "trial"

    class Cycle(models.Model):
        course = models.ForeignKey(Course, on_delete=models.PROTECT)

        class Meta:
            app_label = "trial"

    assert patient_path(Cycle) == "course__patient"
    assert patient_path(Course) == "patient"
    assert patient_path(Patient) == ""
    assert patient_path(Site) is None


# --- ODM 1.3.2 --------------------------------------------------------------------------------


def subject(root: ET.Element, trial_id: str) -> ET.Element:
    found = root.find(f".//odm:SubjectData[@SubjectKey='{trial_id}']", NS)
    assert found is not None
    return found


def items(group: ET.Element) -> dict[str, str]:
    return {
        str(item.get("ItemOID")): str(item.get("Value"))
        for item in group.iterfind("odm:ItemData", NS)
    }


@pytest.mark.usefixtures("trial")
def test_the_odm_file_is_a_1_3_2_snapshot_with_a_subject_per_patient(staff: Staff) -> None:
    document = export_odm(staff["statistician"])
    assert document.startswith(b"<?xml")
    root = ET.fromstring(document)
    assert root.tag == "{http://www.cdisc.org/ns/odm/v1.3}ODM"
    assert (root.get("ODMVersion"), root.get("FileType")) == ("1.3.2", "Snapshot")
    assert root.get("FileOID")
    created = datetime.fromisoformat(str(root.get("CreationDateTime")))
    assert created.utcoffset() is not None
    study = root.find("odm:Study", NS)
    assert study is not None
    assert study.findtext("odm:GlobalVariables/odm:ProtocolName", namespaces=NS) == (
        "START-01 v1.0"
    )
    keys = [s.get("SubjectKey") for s in root.iterfind("odm:ClinicalData/odm:SubjectData", NS)]
    assert keys == ALL_PATIENTS
    # registered only: the subject holds its registration and nothing else
    events = subject(root, "S01-UPP-001").findall("odm:StudyEventData", NS)
    assert [event.get("StudyEventOID") for event in events] == ["SE.TRIAL.PATIENT"]


@pytest.mark.usefixtures("trial")
def test_the_odm_item_data_of_a_screening_record(staff: Staff) -> None:
    root = ET.fromstring(export_odm(staff["statistician"]))
    patient = subject(root, "S01-LUN-001")
    (group,) = patient.findall(".//odm:ItemGroupData[@ItemGroupOID='IG.TRIAL.SCREENING']", NS)
    values = items(group)
    stored = Screening.objects.get(patient__trial_id="S01-LUN-001")
    assert values["IT.TRIAL.SCREENING.PATIENT_ID"] == str(stored.patient_id)
    assert values["IT.TRIAL.SCREENING.ELIGIBLE"] == "true"
    assert values["IT.TRIAL.SCREENING.PROTOCOL"] == "START-01 v1.0"
    assert values["IT.TRIAL.SCREENING.VERSION"] == "1"
    record = json.loads(values["IT.TRIAL.SCREENING.RECORD"])
    assert record == stored.record
    assert (record["creatinine_umol_l"], record["krenning_score"]) == (85, 3)
    (consent,) = patient.findall(".//odm:ItemGroupData[@ItemGroupOID='IG.TRIAL.CONSENT']", NS)
    assert items(consent)["IT.TRIAL.CONSENT.SIGNED_ON"] == "2025-02-20"
    # concealment holds in ODM too: the one taken slot, no free one
    slots = root.findall(".//odm:ItemGroupData[@ItemGroupOID='IG.TRIAL.SLOT']", NS)
    assert len(slots) == 1


@pytest.mark.usefixtures("trial")
def test_odm_data_types_follow_the_django_fields(staff: Staff) -> None:
    root = ET.fromstring(export_odm(staff["statistician"]))
    definitions = {str(item.get("OID")): item for item in root.iterfind(".//odm:ItemDef", NS)}
    expected = {
        "IT.TRIAL.SCREENING.ELIGIBLE": "boolean",
        "IT.TRIAL.SCREENING.RECORD": "text",
        "IT.TRIAL.SCREENING.VERSION": "integer",
        "IT.TRIAL.SCREENING.PATIENT_ID": "integer",
        "IT.TRIAL.PATIENT.REGISTERED_AT": "datetime",
        "IT.TRIAL.CONSENT.SIGNED_ON": "date",
    }
    assert {oid: definitions[oid].get("DataType") for oid in expected} == expected
    assert definitions["IT.TRIAL.PATIENT.TRIAL_ID"].get("Length") == "32"
    groups = {str(group.get("OID")) for group in root.iterfind(".//odm:ItemGroupDef", NS)}
    # only tables of patients are clinical data
    assert {"IG.TRIAL.PATIENT", "IG.TRIAL.SCREENING", "IG.TRIAL.SLOT"} <= groups
    assert not {"IG.TRIAL.SITE", "IG.TRIAL.RANDOMIZATIONLIST"} & groups


@pytest.mark.usefixtures("trial")
def test_every_oid_the_odm_file_references_is_defined(staff: Staff) -> None:
    """A structural check: what ClinicalData and the definitions refer to is defined."""
    root = ET.fromstring(export_odm(staff["statistician"]))
    study = root.find("odm:Study", NS)
    assert study is not None
    version = study.find("odm:MetaDataVersion", NS)
    assert version is not None
    data = root.find("odm:ClinicalData", NS)
    assert data is not None
    assert (data.get("StudyOID"), data.get("MetaDataVersionOID")) == (
        study.get("OID"),
        version.get("OID"),
    )
    for kind, attribute in [
        ("StudyEvent", "StudyEventOID"),
        ("Form", "FormOID"),
        ("ItemGroup", "ItemGroupOID"),
        ("Item", "ItemOID"),
    ]:
        defined = [d.get("OID") for d in version.iterfind(f"odm:{kind}Def", NS)]
        assert len(defined) == len(set(defined)), f"duplicate {kind}Def OIDs"
        used = {e.get(attribute) for e in data.iter() if e.get(attribute) is not None}
        referenced = {r.get(attribute) for r in version.iterfind(f".//odm:{kind}Ref", NS)}
        assert used
        assert used <= set(defined), kind
        assert referenced <= set(defined), kind


@pytest.mark.usefixtures("trial")
def test_the_odm_file_is_valid_against_the_odm_1_3_2_schema(staff: Staff) -> None:
    """The CDISC XSD bundled with odmlib (no network needed), checked by xmlschema."""
    validator = ODMSchemaValidator(standard="odm", version="1.3.2")
    validator.xsd.validate(ET.fromstring(export_odm(staff["statistician"])))


# --- the CLI hook -----------------------------------------------------------------------------


@pytest.mark.usefixtures("trial")
def test_run_export_writes_csv_or_odm_as_the_named_user(tmp_path: Path) -> None:
    written = run_export("statistician", tmp_path / "csv", "csv")
    assert tmp_path / "csv" / "audit_trail.csv" in written
    (odm_file,) = run_export("monitor", tmp_path / "odm", "odm")
    assert odm_file == tmp_path / "odm" / ODM_FILE
    assert ET.parse(odm_file).getroot().get("ODMVersion") == "1.3.2"
    with pytest.raises(PermissionDenied):
        run_export("nurse.lund", tmp_path / "refused", "csv")
    with pytest.raises(InvalidInputError, match="user"):
        run_export("nobody", tmp_path, "csv")
    with pytest.raises(InvalidInputError, match="format"):
        run_export("statistician", tmp_path, "xlsx")


@pytest.mark.django_db(transaction=True)
def test_an_export_outside_a_transaction_reads_one_snapshot(
    flushable_audit_trail: None, staff: Staff, sites: Sites, tmp_path: Path
) -> None:
    services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    run_export("statistician", tmp_path, "csv")
    (document,) = run_export("statistician", tmp_path, "odm")
    keys = [s.get("SubjectKey") for s in ET.parse(document).iterfind(".//odm:SubjectData", NS)]
    assert keys == ["S01-LUN-001"]
