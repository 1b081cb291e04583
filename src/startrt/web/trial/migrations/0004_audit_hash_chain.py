"""The audit trail hash-chained (trial.chain): every entry gets prev_hash and row_hash, and the
entries already there are chained in id order, in this migration's one transaction.

The append-only triggers refuse that backfill's UPDATEs: they are dropped first and created
again after it (on SQLite adding the columns rebuilds the table, which drops them anyway). The
hashed fields are pinned here, as this migration hashed them."""

from __future__ import annotations

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from startrt.web.trial import append_only, chain

TABLE = "trial_auditentry"
MESSAGE = "the audit trail is append-only"  # as migration 0002
FIELDS = (
    "at",
    "user_id_at_time",
    "username",
    "action",
    "table",
    "row_id",
    "patient_trial_id",
    "old",
    "new",
    "reason",
)


def lift_triggers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    append_only.drop(schema_editor, TABLE)


def restore_triggers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    append_only.create(schema_editor, TABLE, MESSAGE)


def chain_and_restore(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    model = apps.get_model("trial", "AuditEntry")
    using = schema_editor.connection.alias
    chain.backfill(model, chain.Chain(TABLE, FIELDS), chain.key(), using)
    restore_triggers(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("trial", "0003_consent_version")]
    operations = [
        migrations.RunPython(lift_triggers, restore_triggers),
        migrations.AddField(
            model_name="auditentry",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditentry",
            name="row_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_and_restore, lift_triggers),
    ]
