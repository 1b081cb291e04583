"""The audit trail is append-only in the database itself: UPDATE and DELETE on
trial_auditentry are refused by triggers (SQLite and PostgreSQL), whatever the client."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

MESSAGE = "the audit trail is append-only"

SQLITE = [
    f"""CREATE TRIGGER trial_auditentry_no_update BEFORE UPDATE ON trial_auditentry
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER trial_auditentry_no_delete BEFORE DELETE ON trial_auditentry
        BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER trial_auditentry_no_update",
    "DROP TRIGGER trial_auditentry_no_delete",
]
POSTGRESQL = [
    f"""CREATE FUNCTION trial_auditentry_append_only() RETURNS trigger AS $$
        BEGIN RAISE EXCEPTION '{MESSAGE}'; END; $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER trial_auditentry_no_change BEFORE UPDATE OR DELETE ON trial_auditentry
        FOR EACH ROW EXECUTE FUNCTION trial_auditentry_append_only()""",
]
POSTGRESQL_REVERSE = [
    "DROP TRIGGER trial_auditentry_no_change ON trial_auditentry",
    "DROP FUNCTION trial_auditentry_append_only()",
]
STATEMENTS = {"sqlite": (SQLITE, SQLITE_REVERSE), "postgresql": (POSTGRESQL, POSTGRESQL_REVERSE)}


def _run(schema_editor: BaseDatabaseSchemaEditor, reverse: bool) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in STATEMENTS:
        raise RuntimeError(f"no append-only triggers for the {vendor} database")
    for statement in STATEMENTS[vendor][1 if reverse else 0]:
        schema_editor.execute(statement)


def create(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run(schema_editor, reverse=False)


def drop(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run(schema_editor, reverse=True)


class Migration(migrations.Migration):
    dependencies = [("trial", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
