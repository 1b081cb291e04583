"""Signatures hash-chained (trial.chain): every signature gets prev_hash and row_hash, and those
already there are chained in id order, in this migration's one transaction.

The append-only triggers refuse that backfill's UPDATEs: they are dropped first and created
again after it, the SQLite trigger with the new columns among those an unlock must keep
(adding the columns rebuilds the table on SQLite, which drops them anyway). The hashed fields
are pinned here, as this migration hashed them."""

from __future__ import annotations

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from startrt.web.trial import append_only, chain

TABLE = "signing_signature"
MESSAGE = "signatures are append-only: a signature is never changed or deleted"  # as 0002
UNLOCK = ("unlocked_at", ("unlocked_by", "unlock_reason"))
FIELDS = (
    "patient_id",
    "kind",
    "record_id",
    "meaning",
    "content_sha256",
    "signer_id",
    "signer_username",
    "signer_full_name",
    "signed_at",
)


def lift_triggers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    append_only.drop(schema_editor, TABLE)


def restore_triggers(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    model = apps.get_model("signing", "Signature")
    columns = tuple(field.column for field in model._meta.concrete_fields)
    marker, along = UNLOCK
    unlock = append_only.SetOnce(marker=marker, along=along, columns=columns)
    append_only.create(schema_editor, TABLE, MESSAGE, unlock)


def chain_and_restore(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    model = apps.get_model("signing", "Signature")
    using = schema_editor.connection.alias
    chain.backfill(model, chain.Chain(TABLE, FIELDS), chain.key(), using)
    restore_triggers(apps, schema_editor)


class Migration(migrations.Migration):
    dependencies = [("signing", "0003_signingfailure")]
    operations = [
        migrations.RunPython(lift_triggers, restore_triggers),
        migrations.AddField(
            model_name="signature",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="signature",
            name="row_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(chain_and_restore, lift_triggers),
    ]
