"""Signatures are append-only in the database itself: triggers (SQLite and PostgreSQL) refuse
DELETE on signing_signature and every UPDATE but one: the unlock, which sets unlocked_at once
(from NULL) with unlocked_by and unlock_reason and changes nothing else. A signature can thus
never be rewritten, deleted, unlocked twice or locked again.

The SQL comes from `trial.append_only`, shared with the audit trail's triggers. The SQLite
trigger compares the columns the table has at this migration: a later migration adding a
column to the table re-creates it (PostgreSQL compares whole rows and needs nothing)."""

from __future__ import annotations

from django.apps.registry import Apps
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

from startrt.web.trial import append_only

TABLE = "signing_signature"
MESSAGE = "signatures are append-only: a signature is never changed or deleted"
UNLOCK = ("unlocked_at", ("unlocked_by", "unlock_reason"))


def create(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    model = apps.get_model("signing", "Signature")
    columns = tuple(field.column for field in model._meta.concrete_fields)
    marker, along = UNLOCK
    unlock = append_only.SetOnce(marker=marker, along=along, columns=columns)
    append_only.create(schema_editor, TABLE, MESSAGE, unlock)


def drop(apps: Apps | None, schema_editor: BaseDatabaseSchemaEditor) -> None:
    append_only.drop(schema_editor, TABLE)


class Migration(migrations.Migration):
    dependencies = [("signing", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
