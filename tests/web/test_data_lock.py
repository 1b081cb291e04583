"""Data freeze and database lock (issue 15 item 8): a locked database and a frozen patient's
records refuse a change through the service, the page, the API and raw SQL (SQLite here, and
PostgreSQL with STARTRT_DATABASE_URL set); unlocking needs a reason; only data managers and
administrators freeze and lock; every step is audited; the lock keeps the SHA-256 of the data."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.utils import timezone

from startrt.validation import InvalidInputError
from startrt.web.monitoring import data_lock, lock_guard
from startrt.web.monitoring import services as monitoring
from startrt.web.monitoring.lock_guard import DataLockedError
from startrt.web.monitoring.models import DatabaseLock, PatientFreeze
from startrt.web.trial import services
from startrt.web.trial.models import AuditEntry, Consent, Patient, Role, Screening, Site
from support.records import eligible_screening
from web.conftest import make_user
from web.test_postgres_roles import as_app_role  # noqa: F401 (a fixture)

Staff = dict[str, User]
CONSENT = {"form_version": "1.0", "signed_on": "2025-02-20"}
CUTOFF = date(2025, 6, 30)
PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def manager(staff: Staff) -> User:
    return make_user("datamanager", Role.DATA_MANAGER, None)


def _patient(staff: Staff, site: Site, trial_id: str) -> Patient:
    patient = services.register_patient(staff["nurse"], site, trial_id, "male")
    services.record_screening(staff["nurse"], patient, eligible_screening())
    services.record_consent(staff["nurse"], patient, CONSENT)
    return patient


@pytest.fixture
def lund(staff: Staff, sites: dict[str, Site]) -> Patient:
    return _patient(staff, sites["Lund"], "S01-LUN-001")


@pytest.fixture
def other(staff: Staff, sites: dict[str, Site]) -> Patient:
    return _patient(staff, sites["Lund"], "S01-LUN-002")


def correct_consent(user: User, patient: Patient, signed_on: str = "2025-02-19") -> Consent:
    consent = Consent.objects.get(patient=patient)
    return services.change_consent(
        user,
        consent,
        {**CONSENT, "signed_on": signed_on},
        reason="date per the signed form",
        expected_version=consent.version,
    )


def raw(sql: str, params: list[Any]) -> None:
    """Run `sql` in its own savepoint (a refused statement leaves the test's transaction usable
    on PostgreSQL)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def lock_message(lock: DatabaseLock) -> str:
    at = lock.locked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    return (
        f"the database is locked since {at} UTC (data cut-off 2025-06-30) by datamanager; "
        "changes are refused"
    )


# --- the triggers are there ----------------------------------------------------------------


def test_every_clinical_table_carries_the_triggers(db: None) -> None:
    tables = {model._meta.db_table for model in lock_guard.locked_models()}
    assert {
        "trial_patient",
        "trial_consent",
        "trial_screening",
        "trial_slot",
        "treatment_cycle",
        "treatment_dispensing",
        "events_adverseevent",
        "signing_signature",
        "monitoring_query",
        "monitoring_verification",
    } <= tables
    assert not tables & {
        "trial_auditentry",
        "trial_membership",
        "monitoring_databaselock",
        "monitoring_patientfreeze",
    }
    assert lock_guard.tables_without_triggers() == []


def test_a_missing_trigger_is_found(db: None) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"DROP TRIGGER {quote('events_death_data_lock_update')}")
        else:
            cursor.execute(f"DROP TRIGGER {quote('events_death_data_lock')} ON events_death")
    assert lock_guard.tables_without_triggers() == ["events_death"]
    lock_guard.install()
    assert lock_guard.tables_without_triggers() == []


def test_a_dispensing_finds_its_patient_through_its_prescription(db: None) -> None:
    from startrt.web.treatment.models import Dispensing

    assert lock_guard.patient_link(Dispensing) == (
        "prescription_id",
        "treatment_capecitabineprescription",
        "id",
        "patient_id",
    )
    assert lock_guard.patient_link(Patient) == ("id",)
    assert lock_guard.patient_link(Site) is None


# --- a locked database refuses every change ------------------------------------------------


def test_a_locked_record_refuses_an_update_through_the_service(
    staff: Staff, manager: User, lund: Patient
) -> None:
    lock = data_lock.lock_database(manager, CUTOFF, "interim analysis cut-off")
    with pytest.raises(DataLockedError) as refused:
        correct_consent(staff["nurse"], lund)
    assert refused.value.rule == lock_message(lock)
    with pytest.raises(DataLockedError):
        services.record_consent(staff["nurse"], lund, {**CONSENT, "form_version": "2.0"})
    assert Consent.objects.get(patient=lund).signed_on == date(2025, 2, 20)
    assert Consent.objects.filter(patient=lund).count() == 1


def test_a_locked_record_refuses_an_update_through_the_page(
    staff: Staff, manager: User, lund: Patient
) -> None:
    lock = data_lock.lock_database(manager, CUTOFF, "interim analysis cut-off")
    consent = Consent.objects.get(patient=lund)
    nurse = signed_in(staff["nurse"])
    url = f"/patients/{lund.trial_id}/events/consent/{consent.pk}/"
    page = nurse.get(url).content.decode()
    assert lock_message(lock)[:1].upper() + lock_message(lock)[1:] + "." in page  # the banner
    change = {"form_version": "1.0", "signed_on": "2025-02-19", "expected_version": "1"}
    refused = nurse.post(url, {**change, "correction_reason": "date per the signed form"})
    assert refused.status_code == 409
    assert lock_message(lock) in refused.content.decode()
    assert Consent.objects.get(pk=consent.pk).signed_on == date(2025, 2, 20)


def test_a_locked_record_refuses_an_update_through_the_api(
    staff: Staff, manager: User, lund: Patient
) -> None:
    lock = data_lock.lock_database(manager, CUTOFF, "interim analysis cut-off")
    nurse = signed_in(staff["nurse"])
    refused = nurse.put(
        f"/api/patients/{lund.trial_id}/screening",
        {
            "record": eligible_screening(ecog=0),
            "reason": "ECOG per the notes",
            "expected_version": 1,
        },
        content_type="application/json",
    )
    assert refused.status_code == 409
    assert (refused.json()["field"], refused.json()["rule"]) == ("record", lock_message(lock))
    assert Screening.objects.get(patient=lund).version == 1


def test_a_locked_record_refuses_raw_sql(manager: User, lund: Patient) -> None:
    data_lock.lock_database(manager, CUTOFF, "final analysis")
    consent = Consent.objects.get(patient=lund)
    with pytest.raises(DatabaseError, match="the database is locked"):
        raw("UPDATE trial_consent SET form_version = %s WHERE id = %s", ["9.9", consent.pk])
    with pytest.raises(DatabaseError, match="the database is locked"):
        raw("DELETE FROM trial_consent WHERE id = %s", [consent.pk])
    with pytest.raises(DatabaseError, match="the database is locked"):
        raw(
            "INSERT INTO trial_consent (patient_id, form_version, signed_on, version, updated_at)"
            " VALUES (%s, %s, %s, 1, %s)",
            [lund.pk, "2.0", "2025-03-01", timezone.now()],
        )
    with pytest.raises(DatabaseError, match="the database is locked"):
        raw("UPDATE trial_site SET name = %s WHERE id = %s", ["Malmö", lund.site_id])
    assert Consent.objects.get(pk=consent.pk).form_version == "1.0"
    assert Consent.objects.count() == 1


def test_the_trigger_refusal_reaches_page_and_api_as_a_refusal(
    staff: Staff, manager: User, lund: Patient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the services' own check (a write it did not see coming), the trigger refuses and
    the page and the API answer 409 with the lock, not 500."""
    lock = data_lock.lock_database(manager, CUTOFF, "interim analysis cut-off")
    monkeypatch.setattr("startrt.web.trial.changes.refuse_change", lambda *_: None)
    nurse = signed_in(staff["nurse"])
    api = nurse.put(
        f"/api/patients/{lund.trial_id}/screening",
        {
            "record": eligible_screening(ecog=0),
            "reason": "ECOG per the notes",
            "expected_version": 1,
        },
        content_type="application/json",
    )
    assert (api.status_code, api.json()["rule"]) == (409, lock_message(lock))
    consent = Consent.objects.get(patient=lund)
    page = nurse.post(
        f"/patients/{lund.trial_id}/events/consent/{consent.pk}/",
        {**CONSENT, "signed_on": "2025-02-19", "expected_version": "1", "correction_reason": "x"},
    )
    assert page.status_code == 409
    assert "Change refused" in page.content.decode()
    assert f"<p>T{lock_message(lock)[1:]}.</p>" in page.content.decode()
    assert Screening.objects.get(patient=lund).version == 1
    assert Consent.objects.get(pk=consent.pk).signed_on == date(2025, 2, 20)


def test_unlocking_needs_a_reason_and_lets_changes_in_again(
    staff: Staff, manager: User, lund: Patient
) -> None:
    first = data_lock.lock_database(manager, CUTOFF, "interim analysis cut-off")
    with pytest.raises(InvalidInputError) as refused:
        data_lock.unlock_database(manager, "  ")
    assert refused.value.field == "reason"
    with pytest.raises(InvalidInputError, match="locked since"):
        data_lock.lock_database(manager, CUTOFF, "twice")
    data_lock.unlock_database(manager, "query resolution after the interim cut-off")
    assert correct_consent(staff["nurse"], lund).version == 2
    with pytest.raises(InvalidInputError, match="not locked"):
        data_lock.unlock_database(manager, "again")
    second = data_lock.lock_database(manager, CUTOFF + timedelta(days=1), "re-lock after cleaning")
    first.refresh_from_db()
    assert (first.unlocked_by, first.unlock_reason) == (
        manager,
        "query resolution after the interim cut-off",
    )
    assert list(DatabaseLock.objects.order_by("pk")) == [first, second]
    assert lock_guard.active_lock() == second


def test_a_future_cutoff_is_refused(manager: User) -> None:
    with pytest.raises(InvalidInputError) as refused:
        data_lock.lock_database(manager, timezone.localdate() + timedelta(days=5), "early")
    assert refused.value.field == "cutoff_date"
    assert not DatabaseLock.objects.exists()


def test_locks_and_freezes_are_kept(manager: User, lund: Patient) -> None:
    lock = data_lock.lock_database(manager, CUTOFF, "final analysis")
    freeze = data_lock.freeze_patient(manager, lund, "withdrawn: data final")
    with pytest.raises(DatabaseError):
        raw("DELETE FROM monitoring_databaselock WHERE id = %s", [lock.pk])
    with pytest.raises(DatabaseError):
        raw("UPDATE monitoring_databaselock SET snapshot_sha256 = %s", ["0" * 64])
    with pytest.raises(DatabaseError):
        raw("DELETE FROM monitoring_patientfreeze WHERE id = %s", [freeze.pk])
    data_lock.unlock_database(manager, "reopened for a late SAE")
    with pytest.raises(DatabaseError):  # the unlock is set once
        raw("UPDATE monitoring_databaselock SET unlocked_at = NULL WHERE id = %s", [lock.pk])
    assert DatabaseLock.objects.get().snapshot_sha256 == lock.snapshot_sha256


# --- freeze one patient --------------------------------------------------------------------


def test_a_frozen_patient_refuses_changes_and_others_stay_writable(
    staff: Staff, manager: User, lund: Patient, other: Patient
) -> None:
    freeze = data_lock.freeze_patient(manager, lund, "withdrawn: data final")
    at = freeze.frozen_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    with pytest.raises(DataLockedError) as refused:
        correct_consent(staff["nurse"], lund)
    assert refused.value.rule == (
        f"the records of S01-LUN-001 are frozen since {at} UTC by datamanager; changes are refused"
    )
    assert correct_consent(staff["nurse"], other).version == 2
    with pytest.raises(DatabaseError, match="frozen"):
        raw("UPDATE trial_consent SET form_version = %s WHERE patient_id = %s", ["9", lund.pk])
    with pytest.raises(DatabaseError, match="frozen"):
        raw("UPDATE trial_patient SET sex = %s WHERE id = %s", ["female", lund.pk])
    raw("UPDATE trial_consent SET form_version = %s WHERE patient_id = %s", ["1.1", other.pk])
    # data queries go on under a freeze
    query = monitoring.raise_query(
        staff["monitor"], Consent.objects.get(patient=lund), "signed_on", "check the date"
    )
    assert query.status == "open"
    with pytest.raises(InvalidInputError, match="frozen since"):
        data_lock.freeze_patient(manager, lund, "twice")
    with pytest.raises(InvalidInputError) as no_reason:
        data_lock.unfreeze_patient(manager, lund, "")
    assert no_reason.value.field == "reason"
    data_lock.unfreeze_patient(manager, lund, "late correction needed")
    assert correct_consent(staff["nurse"], lund).version == 2


def test_a_freeze_on_the_page(staff: Staff, manager: User, lund: Patient) -> None:
    client = signed_in(manager)
    frozen = client.post(
        "/data-lock/",
        {"action": "freeze", "freeze-trial_id": "S01-LUN-001", "freeze-reason": "data final"},
    )
    assert frozen.status_code == 302
    page = signed_in(staff["nurse"]).get(f"/patients/{lund.trial_id}/").content.decode()
    assert "The records of S01-LUN-001 are frozen since" in page
    no_reason = client.post(
        "/data-lock/", {"action": "unfreeze", "trial_id": "S01-LUN-001", "unfreeze-reason": ""}
    )
    assert no_reason.status_code == 422
    assert PatientFreeze.objects.get().unfrozen_at is None
    unfrozen = client.post(
        "/data-lock/",
        {"action": "unfreeze", "trial_id": "S01-LUN-001", "unfreeze-reason": "late correction"},
    )
    assert unfrozen.status_code == 302
    assert PatientFreeze.objects.get().unfreeze_reason == "late correction"


# --- who may, and the audit trail ----------------------------------------------------------


def test_only_data_managers_and_administrators_lock_and_freeze(
    staff: Staff, manager: User, lund: Patient
) -> None:
    for name in ("nurse", "investigator", "monitor", "statistician"):
        with pytest.raises(PermissionDenied):
            data_lock.lock_database(staff[name], CUTOFF, "not mine")
        with pytest.raises(PermissionDenied):
            data_lock.freeze_patient(staff[name], lund, "not mine")
        assert signed_in(staff[name]).get("/data-lock/").status_code == 403
    assert not DatabaseLock.objects.exists()
    assert not PatientFreeze.objects.exists()
    admin = make_user("admin", Role.ADMINISTRATOR, None)
    data_lock.lock_database(admin, CUTOFF, "administrator locks")
    with pytest.raises(PermissionDenied):
        data_lock.unlock_database(staff["monitor"], "not mine")
    data_lock.unlock_database(manager, "data manager unlocks")
    assert "Data lock" in signed_in(manager).get("/").content.decode()
    assert "Data lock" not in signed_in(staff["nurse"]).get("/").content.decode()


def test_lock_unlock_and_freeze_are_audited(manager: User, lund: Patient) -> None:
    lock = data_lock.lock_database(manager, CUTOFF, "interim analysis cut-off")
    data_lock.unlock_database(manager, "late SAE")
    data_lock.freeze_patient(manager, lund, "withdrawn")
    entries = list(
        AuditEntry.objects.filter(
            table__in=["monitoring_databaselock", "monitoring_patientfreeze"]
        ).order_by("pk")
    )
    assert [(e.table, e.action, e.username, e.reason, e.patient_trial_id) for e in entries] == [
        ("monitoring_databaselock", "insert", "datamanager", "interim analysis cut-off", ""),
        ("monitoring_databaselock", "update", "datamanager", "late SAE", ""),
        ("monitoring_patientfreeze", "insert", "datamanager", "withdrawn", "S01-LUN-001"),
    ]
    assert entries[0].new["snapshot_sha256"] == lock.snapshot_sha256
    assert entries[1].old["unlocked_at"] is None
    assert entries[1].new["unlock_reason"] == "late SAE"


# --- the snapshot checksum -----------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def independent_sha256() -> str:
    """The documented canonical form, built here from each row's dict of column values."""
    document = {}
    for model in lock_guard.locked_models():
        columns = sorted(field.column for field in model._meta.concrete_fields)
        by_column = {field.column: field.attname for field in model._meta.concrete_fields}
        rows = []
        for row in model._default_manager.order_by("pk").values():
            rows.append([_plain(row[by_column[column]]) for column in columns])
        document[model._meta.db_table] = {"columns": columns, "rows": rows}
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_checksum_is_stable_and_changes_with_a_row(
    staff: Staff, manager: User, lund: Patient
) -> None:
    lock = data_lock.lock_database(manager, CUTOFF, "interim analysis cut-off")
    assert lock.snapshot_sha256 == independent_sha256()
    assert data_lock.snapshot_sha256() == lock.snapshot_sha256  # stable
    assert data_lock.report_statement() == (
        f"Database locked at {lock.locked_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC (cut-off "
        f"2025-06-30), snapshot SHA-256 {lock.snapshot_sha256}, verified unchanged."
    )
    data_lock.unlock_database(manager, "late correction")
    assert data_lock.snapshot_sha256() == lock.snapshot_sha256  # an unlock changes no data
    correct_consent(staff["nurse"], lund)
    changed = data_lock.snapshot_sha256()
    assert changed != lock.snapshot_sha256
    assert changed == independent_sha256()
    assert not data_lock.snapshot_unchanged(lock)
    assert data_lock.report_statement() == "Database not locked: the data may still change."


def test_the_page_locks_and_unlocks(staff: Staff, manager: User, lund: Patient) -> None:
    client = signed_in(manager)
    assert "Not locked" in client.get("/data-lock/").content.decode()
    lock_form = {"action": "lock", "lock-cutoff_date": "2025-06-30", "lock-reason": "interim"}
    wrong = client.post("/data-lock/", {**lock_form, "lock-password": "not my password"})
    assert wrong.status_code == 422
    assert "is not the password of datamanager" in wrong.content.decode()
    assert not DatabaseLock.objects.exists()
    locked = client.post("/data-lock/", {**lock_form, "lock-password": PASSWORD})
    assert locked.status_code == 302
    page = client.get("/data-lock/").content.decode()
    lock = DatabaseLock.objects.get()
    assert lock.snapshot_sha256 in page
    assert "the data are unchanged since the lock" in page
    assert "Every clinical table carries the lock" in page
    unlock_form = {"action": "unlock", "unlock-password": PASSWORD}
    no_reason = client.post("/data-lock/", {**unlock_form, "unlock-reason": " "})
    assert no_reason.status_code == 422
    no_password = client.post("/data-lock/", {"action": "unlock", "unlock-reason": "late SAE"})
    assert no_password.status_code == 422
    assert lock_guard.active_lock() == lock
    unlocked = client.post("/data-lock/", {**unlock_form, "unlock-reason": "late SAE"})
    assert unlocked.status_code == 302
    assert lock_guard.active_lock() is None


# --- PostgreSQL: the application's role ----------------------------------------------------


@pytest.mark.skipif(
    not os.environ.get("STARTRT_DATABASE_URL", "").startswith("postgres"),
    reason="roles and grants are PostgreSQL's (run with STARTRT_DATABASE_URL=postgresql://...)",
)
@pytest.mark.usefixtures("as_app_role")
def test_the_app_role_locks_but_cannot_lift_the_triggers(
    staff: Staff, manager: User, lund: Patient
) -> None:
    lock = data_lock.lock_database(manager, CUTOFF, "interim analysis cut-off")
    for statement in (
        'DROP TRIGGER "trial_consent_data_lock" ON trial_consent',
        "ALTER TABLE trial_consent DISABLE TRIGGER ALL",
        "DROP FUNCTION startrt_data_lock() CASCADE",
        "DELETE FROM monitoring_databaselock",
        "TRUNCATE trial_consent",
    ):
        with pytest.raises(DatabaseError):
            raw(statement, [])
    with pytest.raises(DatabaseError, match="the database is locked"):
        raw("UPDATE trial_consent SET form_version = %s", ["9"])
    data_lock.unlock_database(manager, "late SAE")
    data_lock.freeze_patient(manager, lund, "withdrawn")
    data_lock.unfreeze_patient(manager, lund, "late correction")
    assert correct_consent(staff["nurse"], lund).version == 2
    assert DatabaseLock.objects.get(pk=lock.pk).unlock_reason == "late SAE"
