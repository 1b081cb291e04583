"""Append-only tables enforced by the database itself: triggers refusing UPDATE and DELETE on
SQLite and PostgreSQL, whatever the client (the ORM, a database shell, another program).

Migrations call `create` and `drop` (trial 0002 for the audit trail, signing 0002 for
signatures). The SQL depends only on the arguments, so what an applied migration did never
changes behind it; trigger and function names derive from the table:
`<table>_no_update` and `<table>_no_delete` on SQLite, `<table>_no_change` running the function
`<table>_append_only()` on PostgreSQL. PostgreSQL's TRUNCATE fires no row trigger.

On SQLite, Django rebuilds a table for most schema changes (new table, copy, drop, rename),
which loses its triggers: a migration that changes an append-only table must `create` them
again after the change.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.backends.base.schema import BaseDatabaseSchemaEditor


@dataclass(frozen=True)
class SetOnce:
    """The one UPDATE a table may still take: `marker` from NULL to a value, the `along`
    columns changing with it, every other column (`columns` lists them all) unchanged.

    Signatures need it while an unlock is stored in the signature row itself; the marker can
    never be set twice or cleared, so an unlock cannot be undone or rewritten."""

    marker: str
    along: tuple[str, ...]
    columns: tuple[str, ...]

    def kept(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c != self.marker and c not in self.along)


def statements(
    vendor: str, table: str, message: str, set_once: SetOnce | None = None
) -> tuple[list[str], list[str]]:
    """The statements creating the triggers of `table` and those dropping them."""
    if "'" in message:
        raise ValueError(f"message {message!r}: no quotes (it is written into SQL)")
    if vendor == "sqlite":
        return _sqlite(table, message, set_once)
    if vendor == "postgresql":
        return _postgresql(table, message, set_once)
    raise RuntimeError(f"no append-only triggers for the {vendor} database")


def create(
    schema_editor: BaseDatabaseSchemaEditor,
    table: str,
    message: str,
    set_once: SetOnce | None = None,
) -> None:
    """Make `table` append-only (refusing with `message`), except for `set_once`."""
    forward, _ = statements(schema_editor.connection.vendor, table, message, set_once)
    for statement in forward:
        schema_editor.execute(statement)


def drop(schema_editor: BaseDatabaseSchemaEditor, table: str) -> None:
    """Remove the triggers `create` made on `table`."""
    _, reverse = statements(schema_editor.connection.vendor, table, "")
    for statement in reverse:
        schema_editor.execute(statement)


def _sqlite(table: str, message: str, set_once: SetOnce | None) -> tuple[list[str], list[str]]:
    refuse = f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
    when = ""
    if set_once is not None:
        unchanged = "".join(f' AND NEW."{c}" IS OLD."{c}"' for c in set_once.kept())
        marker = set_once.marker
        when = f' WHEN NOT (OLD."{marker}" IS NULL AND NEW."{marker}" IS NOT NULL{unchanged})'
    forward = [
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}{when} {refuse}",
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} {refuse}",
    ]
    reverse = [f"DROP TRIGGER {table}_no_update", f"DROP TRIGGER {table}_no_delete"]
    return forward, reverse


def _postgresql(table: str, message: str, set_once: SetOnce | None) -> tuple[list[str], list[str]]:
    allow = ""
    if set_once is not None:
        # every column but the set-once ones, compared as one JSON value (new columns included)
        changing = ", ".join(f"'{c}'" for c in (set_once.marker, *set_once.along))
        marker = set_once.marker
        allow = (
            f'IF TG_OP = \'UPDATE\' AND OLD."{marker}" IS NULL AND NEW."{marker}" IS NOT NULL '
            f"AND to_jsonb(NEW) - ARRAY[{changing}] = to_jsonb(OLD) - ARRAY[{changing}] "
            "THEN RETURN NEW; END IF; "
        )
    forward = [
        f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
        f"BEGIN {allow}RAISE EXCEPTION '{message}'; END; $$ LANGUAGE plpgsql",
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()",
    ]
    reverse = [
        f"DROP TRIGGER {table}_no_change ON {table}",
        f"DROP FUNCTION {table}_append_only()",
    ]
    return forward, reverse


# The application's own PostgreSQL role (not the tables' owner; see README "Web application"):
# what it may change in each append-only table (a column list grants UPDATE of those columns;
# SELECT ... FOR UPDATE needs one). Every other table: SELECT, INSERT, UPDATE, DELETE.
APPEND_ONLY_UPDATABLE: dict[str, tuple[str, ...]] = {
    "trial_auditentry": (),
    "signing_signature": ("unlocked_at", "unlocked_by", "unlock_reason"),  # the one unlock
    "monitoring_databaselock": ("unlocked_at", "unlocked_by_id", "unlock_reason"),  # the unlock
    "monitoring_patientfreeze": ("unfrozen_at", "unfrozen_by_id", "unfreeze_reason"),
}
READ_ONLY_TABLES = ("django_migrations",)


def app_role_grants(role: str, tables: list[str], schema: str = "public") -> list[str]:
    """The GRANT statements for the application's role `role` on `tables` (run by the owner
    after each migration; idempotent): no UPDATE, DELETE or TRUNCATE on append-only tables, no
    ALTER or TRUNCATE anywhere (only an owner may), so it can neither lift the triggers nor
    empty the tables."""
    if not role.replace("_", "").isalnum():
        raise ValueError(f"role {role!r}: letters, digits and _ only")
    statements = [f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"']
    for table in sorted(tables):
        statements.append(f'REVOKE ALL ON TABLE "{table}" FROM "{role}"')
        if table in APPEND_ONLY_UPDATABLE:
            statements.append(f'GRANT SELECT, INSERT ON TABLE "{table}" TO "{role}"')
            if columns := APPEND_ONLY_UPDATABLE[table]:
                listed = ", ".join(f'"{column}"' for column in columns)
                statements.append(f'GRANT UPDATE ({listed}) ON TABLE "{table}" TO "{role}"')
        elif table in READ_ONLY_TABLES:
            statements.append(f'GRANT SELECT ON TABLE "{table}" TO "{role}"')
        else:
            statements.append(
                f'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE "{table}" TO "{role}"'
            )
    statements.append(f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "{schema}" TO "{role}"')
    return statements
