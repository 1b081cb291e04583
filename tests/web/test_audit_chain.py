"""The audit trail and the signatures are hash-chained (trial/chain.py): `startrt audit verify`
finds every row edited, deleted, inserted or reordered by raw SQL after the append-only
triggers were lifted as a table owner can (DROP TRIGGER on SQLite, ALTER TABLE ... DISABLE
TRIGGER on PostgreSQL), and every unlock the audit trail does not record; it names the row and
the kind. Backwards migrations of trial apps are refused. SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections
from django.db.migrations.recorder import MigrationRecorder
from django.test import RequestFactory
from typer.testing import CliRunner

from startrt.cli import app
from startrt.web.signing import services as signing
from startrt.web.signing.models import Signature
from startrt.web.trial import chain, services
from startrt.web.trial.models import AuditEntry, Site
from support.records import eligible_screening

PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
AUDIT = "trial_auditentry"
APPEND_ONLY = [
    importlib.import_module("startrt.web.trial.migrations.0002_audit_append_only"),
    importlib.import_module("startrt.web.signing.migrations.0002_signature_append_only"),
]
SIGNATURES = "signing_signature"


def verify(*arguments: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(app, ["audit", "verify", "--json", *arguments])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def problems(report: dict[str, Any]) -> set[tuple[str, int, str]]:
    return {(p["table"], p["row_id"], p["kind"]) for p in report["problems"]}


@pytest.fixture
def trail(staff: dict[str, User], sites: dict[str, Site]) -> list[int]:
    """Three patients registered, screened and their screenings signed: audit ids in order."""
    request = RequestFactory().post("/sign/", REMOTE_ADDR="10.0.0.7")
    request.user = staff["nurse"]
    for number in (1, 2, 3):
        patient = services.register_patient(
            staff["nurse"], sites["Lund"], f"S01-LUN-{number:03d}", "male"
        )
        screening = services.record_screening(staff["nurse"], patient, eligible_screening())
        signing.sign(request, PASSWORD, "trial.screening", screening.pk, "authorship")
    return list(AuditEntry.objects.order_by("pk").values_list("pk", flat=True))


def signatures() -> list[int]:
    return list(Signature.objects.order_by("pk").values_list("pk", flat=True))


def owner_sql(table: str, *statements: str) -> None:
    """Run `statements` on `table` with its append-only triggers lifted, as its owner can."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(f"DROP TRIGGER {table}_no_update")
            cursor.execute(f"DROP TRIGGER {table}_no_delete")
        else:  # (the deferred foreign-key checks of the test's writes run first)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        for statement in statements:
            cursor.execute(statement)
    # the test's transaction is rolled back after it, the triggers with it


def test_an_untouched_trail_verifies_and_prints_its_heads(trail: list[int]) -> None:
    code, report = verify()
    assert code == 0
    assert report["intact"] is True
    assert report["problems"] == []
    assert report["rows"] == {AUDIT: len(trail), SIGNATURES: 3}
    last = AuditEntry.objects.get(pk=trail[-1])
    assert report["heads"][AUDIT] == f"{AUDIT}:{last.pk}:{last.row_hash}"
    text = CliRunner().invoke(app, ["audit", "verify"])
    assert text.exit_code == 0
    assert "audit verify: OK" in text.stdout


def test_each_row_chains_to_the_one_before_with_an_hmac_of_its_content(trail: list[int]) -> None:
    entries = list(AuditEntry.objects.order_by("pk"))
    assert entries[0].prev_hash == chain.GENESIS
    for before, entry in itertools.pairwise(entries):
        assert entry.prev_hash == before.row_hash
    first = entries[0]
    content = {name: getattr(first, name) for name in chain.AUDIT.fields}
    assert first.row_hash == chain.row_hash(chain.AUDIT, chain.GENESIS, content, chain.key())
    # keyed: without the server's secret key the hash cannot be recomputed
    assert first.row_hash != chain.row_hash(chain.AUDIT, chain.GENESIS, content, b"no key")


def test_an_edited_audit_entry_is_named(trail: list[int]) -> None:
    edited = trail[2]
    owner_sql(AUDIT, f"UPDATE {AUDIT} SET reason = 'rewritten' WHERE id = {edited}")
    code, report = verify()
    assert code == 1
    assert report["intact"] is False
    assert problems(report) == {(AUDIT, edited, "edited")}


def test_an_entry_edited_with_a_recomputed_unkeyed_hash_is_named(trail: list[int]) -> None:
    edited = trail[1]
    forged = hashlib.sha256(b"what an attacker without the key can compute").hexdigest()
    owner_sql(
        AUDIT,
        f"UPDATE {AUDIT} SET username = 'someone.else', row_hash = '{forged}' WHERE id = {edited}",
    )
    code, report = verify()
    assert code == 1
    # its successor still chains to the old hash: the edited row is out of the chain
    assert (AUDIT, edited) in {(table, row) for table, row, _ in problems(report)}


def test_a_deleted_audit_entry_is_named_by_the_row_after_the_gap(trail: list[int]) -> None:
    owner_sql(AUDIT, f"DELETE FROM {AUDIT} WHERE id = {trail[3]}")
    code, report = verify()
    assert code == 1
    assert problems(report) == {(AUDIT, trail[4], "deleted")}


def test_a_deleted_first_entry_is_named(trail: list[int]) -> None:
    owner_sql(AUDIT, f"DELETE FROM {AUDIT} WHERE id = {trail[0]}")
    assert problems(verify()[1]) == {(AUDIT, trail[1], "deleted")}


def forged_entry(row_id: int, prev_hash: str) -> str:
    forged = hashlib.sha256(b"forged").hexdigest()
    return (
        f'INSERT INTO {AUDIT} (id, at, user_id_at_time, username, action, "table", row_id, '
        f"patient_trial_id, old, new, reason, prev_hash, row_hash) VALUES ({row_id}, "
        "'2026-01-01 00:00:00', NULL, 'intruder', 'insert', 'trial_patient', '999', "
        f"'S01-LUN-999', NULL, '{{}}', '', '{prev_hash}', '{forged}')"
    )


def test_an_entry_inserted_before_the_first_is_named_inserted(trail: list[int]) -> None:
    owner_sql(AUDIT, forged_entry(trail[0] - 1, chain.GENESIS))  # ids start above 0
    code, report = verify()
    assert code == 1
    assert problems(report) == {(AUDIT, trail[0] - 1, "inserted")}


def test_an_entry_forged_at_the_head_and_chained_to_is_named(
    trail: list[int], staff: dict[str, User], sites: dict[str, Site]
) -> None:
    head = AuditEntry.objects.get(pk=trail[-1])
    forged_id = trail[-1] + 1
    statements = [forged_entry(forged_id, head.row_hash)]  # the last link copied
    if connection.vendor == "postgresql":  # the id sequence moved past it, as a forger would
        statements.append(f"SELECT setval(pg_get_serial_sequence('{AUDIT}', 'id'), {forged_id})")
    owner_sql(AUDIT, *statements)
    # the application chains its next entry to the forged one
    services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-004", "male")
    code, report = verify()
    assert code == 1
    # without the key its hash is wrong: it shows, as a row that does not match its hash
    assert problems(report) == {(AUDIT, forged_id, "edited")}
    assert "without the key" in report["problems"][0]["detail"]


def test_a_copied_entry_is_named_inserted(trail: list[int]) -> None:
    columns = (
        'at, user_id_at_time, username, action, "table", row_id, patient_trial_id, old, new, '
        "reason, prev_hash, row_hash"
    )
    copy = f"INSERT INTO {AUDIT} ({columns}) SELECT {columns} FROM {AUDIT} WHERE id = {trail[2]}"
    owner_sql(AUDIT, copy)
    copied = AuditEntry.objects.order_by("pk").last()
    assert copied is not None
    assert problems(verify()[1]) == {(AUDIT, copied.pk, "inserted")}


def swap_ids(table: str, first: int, second: int) -> list[str]:
    return [
        f"UPDATE {table} SET id = -1 WHERE id = {first}",
        f"UPDATE {table} SET id = {first} WHERE id = {second}",
        f"UPDATE {table} SET id = {second} WHERE id = -1",
    ]


def test_reordered_audit_entries_are_named(trail: list[int]) -> None:
    owner_sql(AUDIT, *swap_ids(AUDIT, trail[2], trail[3]))
    code, report = verify()
    assert code == 1
    assert (AUDIT, trail[2], "reordered") in problems(report)
    assert {kind for _, _, kind in problems(report)} == {"reordered"}


def test_a_row_moved_later_is_named_with_the_row_that_lost_its_link(trail: list[int]) -> None:
    moved_to = trail[-1] + 10
    owner_sql(AUDIT, f"UPDATE {AUDIT} SET id = {moved_to} WHERE id = {trail[1]}")
    assert problems(verify()[1]) == {
        (AUDIT, trail[2], "reordered"),
        (AUDIT, moved_to, "reordered"),
    }


def test_tampered_signatures_are_named(trail: list[int]) -> None:
    ids = signatures()
    owner_sql(
        SIGNATURES,
        f"UPDATE {SIGNATURES} SET meaning = 'approval' WHERE id = {ids[0]}",
        f"DELETE FROM {SIGNATURES} WHERE id = {ids[1]}",
    )
    code, report = verify()
    assert code == 1
    assert problems(report) == {
        (SIGNATURES, ids[0], "edited"),
        (SIGNATURES, ids[2], "deleted"),
    }


def test_reordered_signatures_are_named(trail: list[int]) -> None:
    ids = signatures()
    owner_sql(SIGNATURES, *swap_ids(SIGNATURES, ids[0], ids[1]))
    assert (SIGNATURES, ids[0], "reordered") in problems(verify()[1])


def test_an_unlock_by_raw_sql_is_named(trail: list[int]) -> None:
    """The triggers let anyone with the app's access set an unlock once; the audit trail, which
    records every unlock the application makes, does not have it."""
    signature = Signature.objects.order_by("pk").first()
    assert signature is not None
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {SIGNATURES} SET unlocked_at = signed_at, unlocked_by = 'intruder', "
            f"unlock_reason = 'none' WHERE id = {signature.pk}"
        )
    code, report = verify()
    assert code == 1
    assert problems(report) == {(SIGNATURES, signature.pk, "unlock")}


def test_an_unlock_through_the_application_verifies(
    trail: list[int], staff: dict[str, User]
) -> None:
    signature = Signature.objects.order_by("pk").first()
    assert signature is not None
    request = RequestFactory().post("/unlock/", REMOTE_ADDR="10.0.0.7")
    request.user = staff["nurse"]
    signing.unlock(request, PASSWORD, signature, "typo in ECOG")
    code, report = verify()
    assert (code, report["problems"]) == (0, [])


def test_rows_removed_from_the_head_show_against_a_recorded_head(trail: list[int]) -> None:
    code, report = verify()
    recorded = report["heads"][AUDIT]
    owner_sql(AUDIT, f"DELETE FROM {AUDIT} WHERE id >= {trail[-2]}")
    assert verify()[0] == 0  # the shortened chain is consistent in itself
    code, report = verify("--expect-head", recorded)
    assert code == 1
    assert problems(report) == {(AUDIT, trail[-1], "deleted")}


def test_a_bad_recorded_head_is_bad_input(db: None) -> None:
    result = CliRunner().invoke(app, ["audit", "verify", "--expect-head", "audit:1:abc"])
    assert result.exit_code == 2
    assert "--expect-head" in result.stderr


def test_the_migrations_hash_the_fields_the_application_hashes() -> None:
    audit = importlib.import_module("startrt.web.trial.migrations.0004_audit_hash_chain")
    signature = importlib.import_module("startrt.web.signing.migrations.0004_signature_hash_chain")
    assert chain.AUDIT.fields == audit.FIELDS
    assert chain.SIGNATURES.fields == signature.FIELDS


def test_whole_floats_hash_alike_as_written_and_as_read_back() -> None:
    """PostgreSQL's jsonb reads 1e16 back as an integer: the canonical form makes them one."""
    assert chain.canonical({"a": [1e16, 1.0, 0.5]}) == chain.canonical({"a": [10**16, 1, 0.5]})


@pytest.mark.skipif(
    not os.environ.get("STARTRT_DATABASE_URL", "").startswith("postgres"),
    reason="concurrent writers run on PostgreSQL (SQLite serialises every writer)",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_do_not_fork_the_chain(
    staff: dict[str, User], sites: dict[str, Site]
) -> None:

    def register(number: int) -> None:
        try:
            services.register_patient(
                staff["nurse"], sites["Lund"], f"S01-LUN-{number:03d}", "male"
            )
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(register, range(1, 25)))
    code, report = verify()
    assert (code, report["problems"]) == (0, [])
    assert report["rows"][AUDIT] == 24


def test_migrating_a_trial_app_backwards_is_refused(db: None) -> None:
    applied = set(MigrationRecorder(connection).applied_migrations())
    with pytest.raises(CommandError, match="refused: migrating backwards"):
        call_command("migrate", "trial", "0001", interactive=False, verbosity=0)
    assert set(MigrationRecorder(connection).applied_migrations()) == applied
    assert connection.introspection.table_names().count(AUDIT) == 1


@pytest.mark.slow
def test_startrt_manage_migrate_backwards_is_refused_without_the_override(tmp_path: Path) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the command-line run uses a fresh SQLite data folder")
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("STARTRT_")
    }
    environment["STARTRT_DATA_DIR"] = str(tmp_path)

    def startrt(*arguments: str, **extra: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "startrt", "manage", *arguments]
        env = environment | extra
        return subprocess.run(command, env=env, capture_output=True, text=True, check=False)

    assert startrt("migrate", "-v", "0").returncode == 0
    refused = startrt("migrate", "trial", "0001")
    assert refused.returncode != 0
    assert "STARTRT_ALLOW_DESTRUCTIVE_MIGRATION=1" in refused.stderr
    shown = startrt("showmigrations", "trial").stdout
    assert "[X] 0004_audit_hash_chain" in shown
    allowed = startrt("migrate", "trial", "0003", STARTRT_ALLOW_DESTRUCTIVE_MIGRATION="1")
    assert allowed.returncode == 0, allowed.stderr
    assert "[ ] 0004_audit_hash_chain" in startrt("showmigrations", "trial").stdout


def _append_only_triggers(create: bool) -> None:
    if connection.vendor == "sqlite":
        with connection.schema_editor() as editor:
            for migration in APPEND_ONLY:
                (migration.create if create else migration.drop)(apps, editor)


@pytest.fixture
def emptied_with_triggers_kept(transactional_db: None) -> Iterator[None]:
    """SQLite's flush after a transactional test DELETEs rows, which the triggers refuse: empty
    the tables here with the triggers lifted, then restore them (the flush finds no rows)."""
    yield
    if connection.vendor == "sqlite":
        _append_only_triggers(create=False)
        call_command("flush", interactive=False, verbosity=0)
        _append_only_triggers(create=True)


@pytest.mark.django_db(transaction=True)
def test_the_migration_chains_the_rows_already_stored(
    trail: list[int],
    emptied_with_triggers_kept: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """trial 0004 and signing 0004 compute the chains of the rows written before them (the
    triggers lifted and restored around the backfill, in the migration's transaction)."""
    from django.db.migrations.executor import MigrationExecutor

    before = {
        table: list(model.objects.order_by("pk").values_list("pk", "row_hash"))
        for table, model in ((AUDIT, AuditEntry), (SIGNATURES, Signature))
    }
    monkeypatch.setenv("STARTRT_ALLOW_DESTRUCTIVE_MIGRATION", "1")
    chained = [("trial", "0004_audit_hash_chain"), ("signing", "0004_signature_hash_chain")]
    unchained = [("trial", "0003_consent_version"), ("signing", "0003_signingfailure")]
    MigrationExecutor(connection).migrate(unchained)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {AUDIT}")
        assert cursor.fetchone() == (len(trail),)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    try:
        executor.migrate(chained)
    finally:  # the later migrations back, for the tests that follow
        latest = MigrationExecutor(connection)
        latest.migrate(latest.loader.graph.leaf_nodes())
    after = {
        table: list(model.objects.order_by("pk").values_list("pk", "row_hash"))
        for table, model in ((AUDIT, AuditEntry), (SIGNATURES, Signature))
    }
    assert after == before  # the same chain as the write path computed
    assert verify()[0] == 0
    # the triggers are back
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {AUDIT} SET reason = 'x'")
