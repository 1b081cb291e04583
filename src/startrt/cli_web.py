"""`startrt serve`: the trial web application (waitress, a production WSGI server) on embedded
SQLite or STARTRT_DATABASE_URL, migrated on start, with a first administrator; `startrt manage`:
Django's management commands; `startrt export`: CSV / CDISC ODM for the statistician."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from startrt.cli_support import fail, refuses_bad_input
from startrt.validation import InvalidInputError

SETTINGS = "startrt.web.settings"
ADMIN_PASSWORD_ENV = "STARTRT_ADMIN_PASSWORD"


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django

    django.setup()


def ensure_sites() -> None:
    """The protocol's sites, created once (configuration, not trial data)."""
    from startrt.protocol.definition import default_protocol
    from startrt.web.trial.models import Site

    for name in default_protocol().sites:
        Site.objects.get_or_create(name=name, defaults={"code": name[:3].upper()})


def _ensure_admin(username: str | None) -> None:
    from django.contrib.auth.models import User

    from startrt.web.trial.models import Membership, Role

    if username is None or User.objects.filter(username=username).exists():
        return
    password = os.environ.get(ADMIN_PASSWORD_ENV)
    if not password:
        raise InvalidInputError(
            ADMIN_PASSWORD_ENV, None, f"set it to create the first administrator {username}"
        )
    user = User.objects.create_user(username, password=password, is_staff=True)
    Membership.objects.create(user=user, site=None, role=Role.ADMINISTRATOR)
    typer.echo(f"created administrator {username}", err=True)


@refuses_bad_input
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    admin_user: Annotated[
        str | None,
        typer.Option(
            help=f"Create this administrator on first run (password from ${ADMIN_PASSWORD_ENV})."
        ),
    ] = None,
) -> None:
    """Serve the trial web application (migrating the database first)."""
    setup_django()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    ensure_sites()
    _ensure_admin(admin_user)
    import waitress

    from startrt.web.wsgi import application

    typer.echo(f"startrt serving on http://{host}:{port}/ (waitress)", err=True)
    waitress.serve(application, host=host, port=port, threads=8)


def manage(
    arguments: Annotated[list[str], typer.Argument(help="A Django management command.")],
) -> None:
    """Run a Django management command (migrate, createsuperuser, ...) on the trial database."""
    setup_django()
    from django.core.management import execute_from_command_line

    execute_from_command_line(["startrt manage", *arguments])


@refuses_bad_input
def export(
    out: Annotated[Path, typer.Option(help="Folder for the export files.")],
    user: Annotated[
        str, typer.Option(help="The statistician, monitor or administrator exporting.")
    ],
    fmt: Annotated[
        str, typer.Option("--format", help="csv (a file per table) or odm (CDISC ODM 1.3.2).")
    ] = "csv",
) -> None:
    """Export the clinical data as CSV per table or as CDISC ODM 1.3.2 XML."""
    setup_django()
    from django.core.exceptions import PermissionDenied

    from startrt.web.exports.services import run_export

    try:
        files = run_export(user, out, fmt)
    except PermissionDenied as error:
        raise fail(str(error)) from None
    for file in files:
        typer.echo(str(file))
