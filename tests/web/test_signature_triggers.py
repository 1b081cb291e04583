"""Signatures are append-only in the database (signing migration 0002): raw SQL cannot change or
delete a signature; the only UPDATE taken is one unlock (unlocked_at set from NULL, with who and
why), which cannot be undone or rewritten. Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import importlib

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory

from startrt.web.signing import services as signing
from startrt.web.signing.models import Signature
from startrt.web.trial import append_only, services
from startrt.web.trial.models import Site
from support.records import eligible_screening

PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
AUDIT_MIGRATION = importlib.import_module("startrt.web.trial.migrations.0002_audit_append_only")
UNLOCK_SQL = (
    "UPDATE signing_signature SET unlocked_at = signed_at, unlocked_by = 'nurse.lund', "
    "unlock_reason = 'typo in ECOG'"
)


@pytest.fixture
def signature(staff: dict[str, User], sites: dict[str, Site]) -> Signature:
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    screening = services.record_screening(staff["nurse"], patient, eligible_screening())
    request = RequestFactory().post("/sign/", REMOTE_ADDR="10.0.0.7")
    request.user = staff["nurse"]
    return signing.sign(request, PASSWORD, "trial.screening", screening.pk, "authorship")


def refused(statement: str) -> None:
    with (
        pytest.raises(DatabaseError, match="signatures are append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE signing_signature SET content_sha256 = 'forged'",
        "UPDATE signing_signature SET signer_username = 'someone.else'",
        "UPDATE signing_signature SET meaning = 'approval'",
        f"{UNLOCK_SQL}, record_id = '999'",  # an unlock that changes another column too
        "DELETE FROM signing_signature",
    ],
)
def test_the_database_refuses_changing_or_deleting_a_signature(
    signature: Signature, statement: str
) -> None:
    refused(statement)
    stored = Signature.objects.get()
    assert (stored.content_sha256, stored.signer_username) == (
        signature.content_sha256,
        "nurse.lund",
    )
    assert (stored.meaning, stored.record_id, stored.active) == (
        "authorship",
        signature.record_id,
        True,
    )


def test_an_unlock_is_taken_once_and_never_undone(
    staff: dict[str, User], signature: Signature
) -> None:
    request = RequestFactory().post("/unlock/", REMOTE_ADDR="10.0.0.7")
    request.user = staff["nurse"]
    unlocked = signing.unlock(request, PASSWORD, signature, "ECOG re-assessed")
    assert not Signature.objects.get(pk=unlocked.pk).active
    refused("UPDATE signing_signature SET unlocked_at = NULL")  # locked again
    refused("UPDATE signing_signature SET unlock_reason = 'another reason'")
    refused(UNLOCK_SQL)  # unlocked a second time
    assert Signature.objects.get().unlock_reason == "ECOG re-assessed"


def test_raw_sql_may_unlock_but_only_the_unlock_columns(signature: Signature) -> None:
    with connection.cursor() as cursor:
        cursor.execute(UNLOCK_SQL)
    stored = Signature.objects.get()
    assert (stored.active, stored.unlocked_by, stored.unlock_reason) == (
        False,
        "nurse.lund",
        "typo in ECOG",
    )
    assert stored.content_sha256 == signature.content_sha256


def test_the_audit_trail_migration_runs_the_shared_sql_it_always_ran() -> None:
    """trial 0002 now calls the shared helper: same statements as before, by name and text."""
    sqlite, _ = append_only.statements("sqlite", "trial_auditentry", AUDIT_MIGRATION.MESSAGE)
    assert sqlite == [
        "CREATE TRIGGER trial_auditentry_no_update BEFORE UPDATE ON trial_auditentry "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
        "CREATE TRIGGER trial_auditentry_no_delete BEFORE DELETE ON trial_auditentry "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END",
    ]
    postgresql, reverse = append_only.statements(
        "postgresql", "trial_auditentry", AUDIT_MIGRATION.MESSAGE
    )
    assert postgresql == [
        "CREATE FUNCTION trial_auditentry_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END; $$ LANGUAGE plpgsql",
        "CREATE TRIGGER trial_auditentry_no_change BEFORE UPDATE OR DELETE ON trial_auditentry "
        "FOR EACH ROW EXECUTE FUNCTION trial_auditentry_append_only()",
    ]
    assert reverse == [
        "DROP TRIGGER trial_auditentry_no_change ON trial_auditentry",
        "DROP FUNCTION trial_auditentry_append_only()",
    ]


def test_a_message_with_a_quote_is_refused() -> None:
    with pytest.raises(ValueError, match="no quotes"):
        append_only.statements("sqlite", "t", "it's")
    with pytest.raises(RuntimeError, match="mysql"):
        append_only.statements("mysql", "t", "x")
