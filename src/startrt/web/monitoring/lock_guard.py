"""The database's own refusal of changes while the database is locked or a patient frozen, and
the services' check that comes first (`refuse_change`).

Which tables (stated, not hidden):
- Locked: every model table of the trial apps (`CLINICAL_APPS`, those installed) except
  `UNLOCKED_MODELS`: the lock and freeze tables themselves, the audit trail (a refused change is
  not written, but a lock, an unlock or a freeze is audited), and access control (memberships,
  signing failures and signing tokens: access can still be revoked from a locked database).
- Frozen (a patient's rows): the locked tables with a row that leads to a patient (its own
  `patient` column, or one step on, e.g. a dispensing through its prescription), except data
  queries and source-data verification (`UNFROZEN_MODELS`): monitors go on querying and
  verifying a frozen patient; the site answers, and a correction needs the freeze lifted.
  Under a database lock queries and verification are refused too.

Triggers: on SQLite three per table (`<table>_data_lock_insert|update|delete`, BEFORE, raising
ABORT); on PostgreSQL one function `startrt_data_lock()` run by `<table>_data_lock` (BEFORE
INSERT OR UPDATE OR DELETE, FOR EACH ROW), told how to find the row's patient by the trigger's
arguments. Tables come and go with later migrations (and SQLite loses a table's triggers when
Django rebuilds it), so `install` runs after every `migrate` (post_migrate) over the tables
that exist then, dropping and creating each trigger (a changed definition replaces the old
one). The SQL names tables and columns from Django's model metadata only, quoted by the
database's own quoting. PostgreSQL's TRUNCATE fires no row trigger; the application's role may
not TRUNCATE (`trial.append_only.app_role_grants`), nor drop the triggers (it owns no table).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC
from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.text import capfirst

from startrt.validation import InvalidInputError
from startrt.web.monitoring.models import DatabaseLock, PatientFreeze
from startrt.web.trial.models import Patient

CLINICAL_APPS = ("trial", "treatment", "events", "signing", "safety", "medications", "monitoring")
UNLOCKED_MODELS = frozenset(
    {
        "trial.auditentry",
        "trial.membership",
        "signing.signingfailure",
        "signing.signingtoken",
        "monitoring.databaselock",
        "monitoring.patientfreeze",
    }
)
UNFROZEN_MODELS = frozenset({"monitoring.query", "monitoring.verification"})
LOCKED_MESSAGE = "startrt data lock: the database is locked; changes are refused"
FROZEN_MESSAGE = "startrt data freeze: the patient records are frozen; changes are refused"
OPERATIONS = ("insert", "update", "delete")
PG_FUNCTION = "startrt_data_lock"


class DataLockedError(InvalidInputError):
    """A change refused because the database is locked or the patient's records are frozen."""


# --- which tables --------------------------------------------------------------------------


def locked_models(registry: Apps | None = None) -> list[type[models.Model]]:
    """The models whose tables a database lock closes (their app installed, in model order)."""
    registry = registry or global_apps
    installed = {config.label for config in registry.get_app_configs()}
    return [
        model
        for label in CLINICAL_APPS
        if label in installed
        for model in registry.get_app_config(label).get_models()
        if model._meta.label_lower not in UNLOCKED_MODELS
        and model._meta.managed
        and not model._meta.proxy
    ]


def _patient_column(model: type[models.Model]) -> str | None:
    """The column holding the row's patient: the patient's own id, or its `patient` link."""
    if model._meta.label_lower == Patient._meta.label_lower:
        return str(model._meta.pk.column)  # type: ignore[union-attr]
    for field in model._meta.concrete_fields:
        related = field.related_model
        if (
            field.name == "patient"
            and isinstance(related, type)
            and related._meta.label_lower == Patient._meta.label_lower
        ):
            return str(field.column)
    return None


def patient_link(model: type[models.Model]) -> tuple[str, ...] | None:
    """How a row of `model` names its patient, for the freeze: (column,) holding the patient's
    id, or (column, parent table, parent key, parent's patient column) one link away; None for a
    table without patients (sites, lab ranges, the randomization list) or `UNFROZEN_MODELS`."""
    if model._meta.label_lower in UNFROZEN_MODELS:
        return None
    if (column := _patient_column(model)) is not None:
        return (column,)
    for field in model._meta.concrete_fields:
        parent = field.related_model
        if field.many_to_one or field.one_to_one:
            assert isinstance(parent, type)
            if (parent_column := _patient_column(parent)) is not None:
                key = str(parent._meta.pk.column)  # type: ignore[union-attr]
                return (str(field.column), parent._meta.db_table, key, parent_column)
    return None


# --- the triggers --------------------------------------------------------------------------


def _sqlite_patient(link: tuple[str, ...], row: str, quote: Any) -> str:
    if len(link) == 1:
        return f"{row}.{quote(link[0])}"
    column, parent, key, parent_column = link
    return (
        f"(SELECT {quote(parent_column)} FROM {quote(parent)} "
        f"WHERE {quote(key)} = {row}.{quote(column)})"
    )


def _sqlite(model: type[models.Model], quote: Any) -> list[str]:
    table = model._meta.db_table
    link = patient_link(model)
    lock = quote(DatabaseLock._meta.db_table)
    freeze = quote(PatientFreeze._meta.db_table)
    rows = {"insert": ("NEW",), "update": ("OLD", "NEW"), "delete": ("OLD",)}
    statements = []
    for operation in OPERATIONS:
        name = quote(f"{table}_data_lock_{operation}")
        body = (
            f"SELECT RAISE(ABORT, '{LOCKED_MESSAGE}') WHERE EXISTS "
            f'(SELECT 1 FROM {lock} WHERE "unlocked_at" IS NULL);'
        )
        if link is not None:
            patients = ", ".join(_sqlite_patient(link, row, quote) for row in rows[operation])
            body += (
                f" SELECT RAISE(ABORT, '{FROZEN_MESSAGE}') WHERE EXISTS (SELECT 1 FROM {freeze} "
                f'WHERE "unfrozen_at" IS NULL AND "patient_id" IN ({patients}));'
            )
        statements += [
            f"DROP TRIGGER IF EXISTS {name}",
            f"CREATE TRIGGER {name} BEFORE {operation.upper()} ON {quote(table)} "
            f"FOR EACH ROW BEGIN {body} END",
        ]
    return statements


def _postgresql_function() -> str:
    """The one trigger function; its arguments (`patient_link`): the row's patient column, or
    the column leading to a parent row, the parent's table, key and patient column."""
    lock = DatabaseLock._meta.db_table
    freeze = PatientFreeze._meta.db_table
    return (
        f"CREATE OR REPLACE FUNCTION {PG_FUNCTION}() RETURNS trigger AS $$ "
        "DECLARE row_values jsonb; patient text; "
        "BEGIN "
        f'IF EXISTS (SELECT 1 FROM "{lock}" WHERE unlocked_at IS NULL) '
        f"THEN RAISE EXCEPTION '{LOCKED_MESSAGE}'; END IF; "
        "IF TG_NARGS > 0 THEN "
        "FOREACH row_values IN ARRAY CASE TG_OP "
        "WHEN 'INSERT' THEN ARRAY[to_jsonb(NEW)] WHEN 'DELETE' THEN ARRAY[to_jsonb(OLD)] "
        "ELSE ARRAY[to_jsonb(OLD), to_jsonb(NEW)] END LOOP "
        "patient := row_values ->> TG_ARGV[0]; "
        "IF TG_NARGS = 4 AND patient IS NOT NULL THEN "
        "EXECUTE format('SELECT %I::text FROM %I WHERE %I::text = $1', "
        "TG_ARGV[3], TG_ARGV[1], TG_ARGV[2]) INTO patient USING patient; END IF; "
        f'IF patient IS NOT NULL AND EXISTS (SELECT 1 FROM "{freeze}" '
        "WHERE unfrozen_at IS NULL AND patient_id::text = patient) "
        f"THEN RAISE EXCEPTION '{FROZEN_MESSAGE}'; END IF; "
        "END LOOP; END IF; "
        "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; "
        "END; $$ LANGUAGE plpgsql"
    )


def _postgresql(model: type[models.Model], quote: Any) -> list[str]:
    table = model._meta.db_table
    name = quote(f"{table}_data_lock")
    arguments = ", ".join(f"'{part}'" for part in patient_link(model) or ())
    return [
        f"DROP TRIGGER IF EXISTS {name} ON {quote(table)}",
        f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE OR DELETE ON {quote(table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}({arguments})",
    ]


def trigger_statements(
    connection: BaseDatabaseWrapper, tables: Iterable[type[models.Model]]
) -> list[str]:
    """The statements (re)creating the data-lock triggers on the tables of `tables`."""
    quote = connection.ops.quote_name
    for model in tables:  # names from model metadata; refuse anything that could end a literal
        for name in (model._meta.db_table, *(patient_link(model) or ())):
            if not name.replace("_", "").isalnum():
                raise ValueError(f"table or column {name!r}: letters, digits and _ only")
    if connection.vendor == "sqlite":
        return [statement for model in tables for statement in _sqlite(model, quote)]
    if connection.vendor == "postgresql":
        return [_postgresql_function()] + [
            statement for model in tables for statement in _postgresql(model, quote)
        ]
    raise RuntimeError(f"no data-lock triggers for the {connection.vendor} database")


def install(apps: Apps | None = None, using: str = DEFAULT_DB_ALIAS, **_: Any) -> None:
    """The post_migrate receiver: (re)create the triggers on every locked table that exists."""
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    if DatabaseLock._meta.db_table not in existing or PatientFreeze._meta.db_table not in existing:
        return  # the monitoring app's lock is not migrated (yet)
    tables = [model for model in locked_models(apps) if model._meta.db_table in existing]
    with connection.cursor() as cursor:
        for statement in trigger_statements(connection, tables):
            cursor.execute(statement)


def uninstall(connection: BaseDatabaseWrapper) -> None:
    """Drop every data-lock trigger (and PostgreSQL's function): migrating back past the lock
    table (monitoring 0003) must not leave triggers reading a table that is gone."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            names = [name for (name,) in cursor.fetchall()]
            suffixes = tuple(f"_data_lock_{operation}" for operation in OPERATIONS)
            for name in names:
                if name.endswith(suffixes):
                    cursor.execute(f"DROP TRIGGER {connection.ops.quote_name(name)}")
        else:
            cursor.execute(f"DROP FUNCTION IF EXISTS {PG_FUNCTION}() CASCADE")


def tables_without_triggers(using: str = DEFAULT_DB_ALIAS) -> list[str]:
    """The locked tables there are lacking a data-lock trigger (none, after `migrate`; a model
    whose table is not migrated yet is `makemigrations --check`'s to report)."""
    connection = connections[using]
    existing = set(connection.introspection.table_names())
    missing = []
    with connection.cursor() as cursor:
        for model in locked_models():
            table = model._meta.db_table
            if table not in existing:
                continue
            if connection.vendor == "sqlite":
                cursor.execute(
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s "
                    "AND name IN (%s, %s, %s)",
                    [table, *(f"{table}_data_lock_{operation}" for operation in OPERATIONS)],
                )
                complete = cursor.fetchone()[0] == len(OPERATIONS)
            else:
                cursor.execute(
                    "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = to_regclass(%s) "
                    "AND tgname = %s AND tgenabled <> 'D'",
                    [connection.ops.quote_name(table), f"{table}_data_lock"],
                )
                complete = cursor.fetchone()[0] == 1
            if not complete:
                missing.append(table)
    return missing


# --- the services' check and the refusal people read --------------------------------------


def active_lock() -> DatabaseLock | None:
    """The database lock in force, if any."""
    return DatabaseLock.objects.filter(unlocked_at__isnull=True).select_related("locked_by").first()


def active_freeze(patient: Patient) -> PatientFreeze | None:
    """The freeze of `patient`'s records in force, if any."""
    return (
        PatientFreeze.objects.filter(patient=patient, unfrozen_at__isnull=True)
        .select_related("frozen_by")
        .first()
    )


def lock_text(lock: DatabaseLock) -> str:
    """The lock for people: since when, at which cut-off, by whom."""
    since = lock.locked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"the database is locked since {since} (data cut-off {lock.cutoff_date.isoformat()}) "
        f"by {lock.locked_by.get_username()}; changes are refused"
    )


def freeze_text(freeze: PatientFreeze) -> str:
    """The freeze for people: whose records, since when, by whom."""
    since = freeze.frozen_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"the records of {freeze.patient.trial_id} are frozen since {since} by "
        f"{freeze.frozen_by.get_username()}; changes are refused"
    )


def refuse_change(instance: models.Model, patient: Patient | None) -> None:
    """Refuse (DataLockedError) inserting, changing or deleting `instance` while the database
    is locked, or its patient's records are frozen (the triggers' rule, checked first)."""
    label = instance._meta.label_lower
    name = capfirst(str(instance._meta.verbose_name))
    if label in UNLOCKED_MODELS or instance._meta.app_label not in CLINICAL_APPS:
        return
    if (lock := active_lock()) is not None:
        raise DataLockedError("record", name, lock_text(lock))
    freeze = None
    if patient is not None and patient.pk is not None and label not in UNFROZEN_MODELS:
        freeze = active_freeze(patient)
    if freeze is not None:
        raise DataLockedError("record", name, freeze_text(freeze))


def refusal_of(error: DatabaseError) -> DataLockedError | None:
    """The refusal a trigger raised, for people (the lock or freeze now in force); None for
    any other database error. Call it after the failed transaction has been rolled back."""
    text = str(error)
    if LOCKED_MESSAGE in text:
        try:
            lock = None if connections[DEFAULT_DB_ALIAS].needs_rollback else active_lock()
        except DatabaseError:  # still inside the refused transaction: the rule without names
            lock = None
        return DataLockedError(
            "record", "change", lock_text(lock) if lock else LOCKED_MESSAGE.partition(": ")[2]
        )
    if FROZEN_MESSAGE in text:
        return DataLockedError(
            "record", "change", "the patient's records are frozen; changes are refused"
        )
    return None
