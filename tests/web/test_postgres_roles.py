"""On PostgreSQL the application connects as a role that owns no table, with the privileges of
`startrt manage app_role_grants` (web/trial/append_only.py): it cannot lift the audit trail's
triggers, empty it, or change or delete audit entries and signatures, while every write of the
application works. PostgreSQL only (roles are a PostgreSQL feature)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from typer.testing import CliRunner

from startrt.cli import app
from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.signing import services as signing
from startrt.web.trial import append_only, services
from startrt.web.trial.models import AuditEntry, Site
from support.records import eligible_screening

PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
ROLE = f"startrt_app_test_{os.getpid()}"  # created in the test's transaction, rolled back

pytestmark = pytest.mark.skipif(
    not os.environ.get("STARTRT_DATABASE_URL", "").startswith("postgres"),
    reason="roles and grants are PostgreSQL's (run with STARTRT_DATABASE_URL=postgresql://...)",
)


@pytest.fixture
def as_app_role(db: None) -> Iterator[None]:
    """This connection becomes the application's role, with only the app's grants."""
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE ROLE "{ROLE}" NOLOGIN')
        tables = connection.introspection.table_names()
        for statement in append_only.app_role_grants(ROLE, tables):
            cursor.execute(statement)
        cursor.execute(f'SET ROLE "{ROLE}"')
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def refused(statement: str, message: str) -> None:
    with (
        pytest.raises(DatabaseError, match=message),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("ALTER TABLE trial_auditentry DISABLE TRIGGER USER", "must be owner"),
        ("ALTER TABLE trial_auditentry DISABLE TRIGGER ALL", "must be owner"),
        ("DROP TRIGGER trial_auditentry_no_change ON trial_auditentry", "must be owner"),
        ("ALTER TABLE signing_signature DISABLE TRIGGER USER", "must be owner"),
        ("TRUNCATE trial_auditentry", "permission denied"),
        ("TRUNCATE signing_signature", "permission denied"),
        ("UPDATE trial_auditentry SET reason = 'rewritten'", "permission denied"),
        ("DELETE FROM trial_auditentry", "permission denied"),
        ("UPDATE signing_signature SET meaning = 'approval'", "permission denied"),
        ("DELETE FROM signing_signature", "permission denied"),
        ("SET session_replication_role = replica", "permission denied"),
        ("DROP TABLE trial_auditentry", "must be owner"),
    ],
)
def test_the_app_role_cannot_lift_or_bypass_the_protection(
    staff: dict[str, User], as_app_role: None, statement: str, message: str
) -> None:
    refused(statement, message)


def test_the_applications_writes_work_as_the_app_role(
    staff: dict[str, User], sites: dict[str, Site], as_app_role: None
) -> None:
    listing = generate_block_list(
        seed=7, n_per_stratum=4, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    screening = services.record_screening(staff["nurse"], patient, eligible_screening())
    services.randomize(staff["investigator"], patient)  # a slot row locked and updated
    request = RequestFactory().post("/sign/", REMOTE_ADDR="10.0.0.7")
    request.user = staff["nurse"]
    signature = signing.sign(request, PASSWORD, "trial.screening", screening.pk, "authorship")
    signing.unlock(request, PASSWORD, signature, "typo in ECOG")  # the one UPDATE allowed
    assert AuditEntry.objects.filter(patient_trial_id="S01-LUN-001").count() >= 4
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.stdout
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone() == (ROLE,)


def test_the_grants_are_printed_as_sql(db: None, capsys: pytest.CaptureFixture[str]) -> None:
    call_command("app_role_grants", "startrt_app")
    sql = capsys.readouterr().out
    assert 'GRANT SELECT, INSERT ON TABLE "trial_auditentry" TO "startrt_app";' in sql
    assert (
        'GRANT UPDATE ("unlocked_at", "unlocked_by", "unlock_reason") ON TABLE '
        '"signing_signature" TO "startrt_app";'
    ) in sql
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "trial_patient" TO "startrt_app";' in sql
