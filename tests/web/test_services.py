"""Trial services on the configured database (SQLite by default; PostgreSQL with
STARTRT_DATABASE_URL): roles and sites, screening with eligibility, randomization, audit."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection, transaction

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.validation import InvalidInputError
from startrt.web.trial import services
from startrt.web.trial.models import AuditEntry, Decision, Screening, Site, Slot
from startrt.web.trial.permissions import visible_patients
from support.records import eligible_screening

Staff = dict[str, User]
Sites = dict[str, Site]


def load_list(staff: Staff, sites: Sites, n_per_stratum: int = 8) -> None:
    listing = generate_block_list(
        seed=4242, n_per_stratum=n_per_stratum, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)


def test_registration_is_audited_and_site_bound(staff: Staff, sites: Sites) -> None:
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "female")
    entry = AuditEntry.objects.get(table="trial_patient", row_id=str(patient.pk))
    assert (entry.action, entry.username, entry.old) == ("insert", "nurse.lund", None)
    assert entry.new["trial_id"] == "S01-LUN-001"
    with pytest.raises(PermissionDenied):
        services.register_patient(staff["uppsala"], sites["Lund"], "S01-LUN-002", "male")
    with pytest.raises(PermissionDenied):  # monitors read, never write
        services.register_patient(staff["monitor"], sites["Lund"], "S01-LUN-002", "male")
    with pytest.raises(InvalidInputError, match="site code LUN"):
        services.register_patient(staff["nurse"], sites["Lund"], "S01-UPP-002", "male")
    with pytest.raises(InvalidInputError, match="already registered"):
        services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    assert list(visible_patients(staff["uppsala"])) == []
    assert list(visible_patients(staff["monitor"])) == [patient]


def test_screening_stores_eligibility_and_changes_need_reason_and_version(
    staff: Staff, sites: Sites
) -> None:
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    screening = services.record_screening(
        staff["nurse"], patient, eligible_screening(hemoglobin_g_l=90)
    )
    assert screening.eligible is False  # Hb must be > 90 g/L
    assert Decision.objects.get(patient=patient, kind="eligibility").protocol == "START-01 v1.0"
    with pytest.raises(InvalidInputError, match="reason"):
        services.record_screening(staff["nurse"], patient, eligible_screening(), expected_version=1)
    with pytest.raises(InvalidInputError, match="version 1"):
        services.record_screening(
            staff["nurse"],
            patient,
            eligible_screening(),
            reason="lab re-entered",
            expected_version=0,
        )
    changed = services.record_screening(
        staff["nurse"],
        patient,
        eligible_screening(),
        reason="Hb typo: 90 -> 128",
        expected_version=1,
    )
    assert (changed.eligible, changed.version) == (True, 2)
    update = AuditEntry.objects.get(table="trial_screening", action="update")
    assert update.reason == "Hb typo: 90 -> 128"
    assert update.old["record"]["hemoglobin_g_l"] == 90
    assert update.new["record"]["hemoglobin_g_l"] == 128
    with pytest.raises(InvalidInputError, match="hemoglobin_g_l"):
        services.record_screening(
            staff["nurse"],
            patient,
            eligible_screening(hemoglobin_g_l=900),
            reason="x",
            expected_version=2,
        )
    # the refused edit left nothing behind
    assert Screening.objects.get(patient=patient).version == 2


def test_randomization_takes_the_next_slot_of_the_stratum(staff: Staff, sites: Sites) -> None:
    load_list(staff, sites)
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    services.record_screening(staff["nurse"], patient, eligible_screening(fdg_pet_positive=True))
    with pytest.raises(PermissionDenied):  # nurses do not randomize
        services.randomize(staff["nurse"], patient)
    slot = services.randomize(staff["investigator"], patient)
    assert (slot.stratum, slot.sequence) == ("site=Lund;fdg=positive", 1)
    assert slot.treatment_arm == ("standard" if slot.arm == "standard" else "CAP-dTOC")
    with pytest.raises(InvalidInputError, match="already randomized"):
        services.randomize(staff["investigator"], patient)
    with pytest.raises(InvalidInputError, match="screening is closed"):
        services.record_screening(
            staff["nurse"], patient, eligible_screening(), reason="late", expected_version=1
        )
    assert Decision.objects.filter(patient=patient, kind="arm_assignment").count() == 1


def test_ineligible_patients_are_not_randomized(staff: Staff, sites: Sites) -> None:
    load_list(staff, sites)
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    services.record_screening(staff["nurse"], patient, eligible_screening(consent_signed=None))
    with pytest.raises(InvalidInputError, match="not \\(yet\\) eligible"):
        services.randomize(staff["investigator"], patient)
    assert not Slot.objects.filter(patient__isnull=False).exists()


@pytest.mark.parametrize(
    "statement", ["UPDATE trial_auditentry SET reason = 'edited'", "DELETE FROM trial_auditentry"]
)
def test_the_database_refuses_changes_to_the_audit_trail(
    staff: Staff, sites: Sites, statement: str
) -> None:
    services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "female")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEntry.objects.filter(reason="edited").count() == 0
    assert AuditEntry.objects.count() >= 1
