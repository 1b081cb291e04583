"""`startrt manage app_role_grants ROLE [--execute]`: the privileges of the application's
PostgreSQL role, which must not own the tables (README "Web application"): printed as SQL, or
run with --execute (as the owner: STARTRT_MIGRATE_DATABASE_URL when set)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from startrt.web.trial.append_only import app_role_grants


class Command(BaseCommand):
    help = "GRANT statements for the application's PostgreSQL role (printed, or --execute)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="The application's role (the user of its URL).")
        parser.add_argument("--execute", action="store_true", help="Run them (as the owner).")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("roles and grants are for PostgreSQL (this database is not)")
        try:
            statements = app_role_grants(options["role"], connection.introspection.table_names())
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not options["execute"]:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"granted the application's privileges to {options['role']}")
