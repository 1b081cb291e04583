"""The audit trail is append-only in the database itself: UPDATE and DELETE on
trial_auditentry are refused by triggers (SQLite and PostgreSQL), whatever the client.

The SQL comes from `trial.append_only` (shared with the signatures' triggers); it is the SQL this
migration always ran: the same triggers, functions and names."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from startrt.web.trial import append_only

TABLE = "trial_auditentry"
MESSAGE = "the audit trail is append-only"


def create(apps: StateApps | None, schema_editor: BaseDatabaseSchemaEditor) -> None:
    append_only.create(schema_editor, TABLE, MESSAGE)


def drop(apps: StateApps | None, schema_editor: BaseDatabaseSchemaEditor) -> None:
    append_only.drop(schema_editor, TABLE)


class Migration(migrations.Migration):
    dependencies = [("trial", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
