"""Database locks and patient freezes are kept for good: triggers (SQLite and PostgreSQL,
`trial.append_only`) refuse DELETE and every UPDATE but the one ending them, which sets
unlocked_at (unfrozen_at) once, from NULL, with who and why, and changes nothing else.
It installs the clinical tables' data-lock triggers (`lock_guard`; installed again after each
migrate) and, unapplied, drops them: they read these tables."""

from __future__ import annotations

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from startrt.web.monitoring import lock_guard
from startrt.web.trial import append_only

ENDINGS = {
    "DatabaseLock": ("unlocked_at", ("unlocked_by_id", "unlock_reason")),
    "PatientFreeze": ("unfrozen_at", ("unfrozen_by_id", "unfreeze_reason")),
}
MESSAGE = "database locks and patient freezes are kept: never changed or deleted, ended once"


def create(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for name, (marker, along) in ENDINGS.items():
        model = apps.get_model("monitoring", name)
        columns = tuple(field.column for field in model._meta.concrete_fields)
        ending = append_only.SetOnce(marker=marker, along=along, columns=columns)
        append_only.create(schema_editor, model._meta.db_table, MESSAGE, ending)
    lock_guard.install(apps, schema_editor.connection.alias)  # again after each migrate


def drop(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    lock_guard.uninstall(schema_editor.connection)  # the clinical tables' triggers read these
    for name in ENDINGS:
        append_only.drop(schema_editor, apps.get_model("monitoring", name)._meta.db_table)


class Migration(migrations.Migration):
    dependencies = [("monitoring", "0002_databaselock_patientfreeze")]
    operations = [migrations.RunPython(create, drop)]
