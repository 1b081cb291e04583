"""`startrt serve`: the trial web application (waitress, a production WSGI server) on embedded
SQLite or STARTRT_DATABASE_URL, migrated on start, with a first administrator; `startrt manage`:
Django's management commands; `startrt export`: CSV / CDISC ODM for the statistician.

waitress serves requests from a pool of threads, but reads and writes sockets in one event loop:
an idle or slow client holds a connection, not a thread. Its defaults (100 connections, idle ones
kept 120 s, select() limited to 1024 descriptors) let about 100 idle sockets stop every other
client; `serve` allows 1000 connections, closes idle ones after 60 s and uses poll().

`serve` also runs the task queue's worker (`startrt manage db_worker`, django-tasks-db) as a
child process, stopped with the server (Ctrl+C or SIGTERM); `serve --no-task-worker` and a
`startrt manage db_worker` of its own run it elsewhere (any number of workers may share the
database's queue)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from startrt.cli_support import fail, refuses_bad_input
from startrt.validation import InvalidInputError

SETTINGS = "startrt.web.settings"
ADMIN_PASSWORD_ENV = "STARTRT_ADMIN_PASSWORD"
# PostgreSQL: the URL of the tables' owner, for migrations (the app's own role owns nothing)
MIGRATE_URL_ENV = "STARTRT_MIGRATE_DATABASE_URL"
OWNER_COMMANDS = frozenset({"migrate", "app_role_grants"})
DATA_DIR_ENV = "STARTRT_DATA_DIR"
TRUSTED_PROXY_ENV = "STARTRT_TRUSTED_PROXY"
# the task queue's worker (django-tasks-db) that `serve` runs as a child process
WORKER_COMMAND = ("manage", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "1")
WORKER_STOP_TIMEOUT_S = 30
# the largest request body: a study upload (1 GiB, treatment/study_upload.py) and its form fields
MAX_REQUEST_BODY_BYTES = (1 << 30) + (1 << 20)


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
    _validate_password(username, password)
    user = User.objects.create_user(username, password=password, is_staff=True)
    Membership.objects.create(user=user, site=None, role=Role.ADMINISTRATOR)
    typer.echo(f"created administrator {username}", err=True)


def check_data_dir() -> None:
    """The data folder (STARTRT_DATA_DIR, default ./var: SQLite database, secret key, studies)
    must be a folder we can write in; created when missing. Refused in one line otherwise."""
    folder = Path(os.environ.get(DATA_DIR_ENV, "var")).resolve()
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError(DATA_DIR_ENV, str(folder), "must be a folder, not a file")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # new: owner only
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidInputError(
            DATA_DIR_ENV, str(folder), f"must be a folder startrt can write in ({reason})"
        ) from None


def check_proxy_header(trusted_proxy: str | None) -> None:
    """HTTPS as told by the proxy's X-Forwarded-Proto (STARTRT_HTTPS=1) needs the proxy's address:
    waitress drops X-Forwarded-* headers from any other peer, and every request would then look
    like plain HTTP (redirected again and again)."""
    from django.conf import settings

    header = settings.SECURE_PROXY_SSL_HEADER
    if (
        header
        and not trusted_proxy
        and header[0].startswith(("HTTP_X_FORWARDED_", "HTTP_FORWARDED"))
    ):
        raise InvalidInputError(
            TRUSTED_PROXY_ENV,
            None,
            "set it (or --trusted-proxy) to the reverse proxy's address: HTTPS is read from the "
            "proxy's X-Forwarded-Proto, which waitress drops from untrusted peers",
        )


def waitress_options(
    threads: int, connection_limit: int, channel_timeout_s: int, trusted_proxy: str | None
) -> dict[str, Any]:
    """waitress's adjustments for `serve` (waitress.adjustments.Adjustments)."""
    options: dict[str, Any] = {
        "threads": threads,
        "connection_limit": connection_limit,
        "channel_timeout": channel_timeout_s,
        "cleanup_interval": min(10, channel_timeout_s),
        "asyncore_use_poll": True,  # select() cannot watch more than 1024 descriptors
        "backlog": 2048,
        "max_request_body_size": MAX_REQUEST_BODY_BYTES,
        "ident": "startrt",
    }
    if trusted_proxy:
        # behind a reverse proxy: the client's address and scheme from the proxy's headers
        # (login throttling per address, request.is_secure()); untrusted ones are dropped
        options |= {
            "trusted_proxy": trusted_proxy,
            "trusted_proxy_count": 1,
            "trusted_proxy_headers": {"x-forwarded-for", "x-forwarded-proto"},
            "clear_untrusted_proxy_headers": True,
        }
    return options


def _validate_password(username: str, password: str) -> None:
    """Refuse a password the project's validators refuse (AUTH_PASSWORD_VALIDATORS), naming
    the rule on one line; the password itself is never shown."""
    from django.contrib.auth.models import User
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    try:
        validate_password(password, User(username=username))
    except ValidationError as error:
        rules = " ".join(message.rstrip(".") + "." for message in error.messages)
        raise InvalidInputError(ADMIN_PASSWORD_ENV, "(hidden)", rules.rstrip(".")) from None


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
    threads: Annotated[
        int, typer.Option(min=1, max=256, help="Worker threads answering requests.")
    ] = 8,
    connection_limit: Annotated[
        int,
        typer.Option(min=10, max=10_000, help="Open connections at most (idle ones included)."),
    ] = 1000,
    channel_timeout: Annotated[
        int, typer.Option(min=5, max=3600, help="Seconds before an idle connection is closed.")
    ] = 60,
    trusted_proxy: Annotated[
        str | None,
        typer.Option(
            envvar=TRUSTED_PROXY_ENV,
            help="Address of the reverse proxy whose X-Forwarded-For / -Proto are trusted.",
        ),
    ] = None,
    task_worker: Annotated[
        bool,
        typer.Option(
            help="Start the task queue's worker (a study's dosimetry) with the server; with "
            "--no-task-worker run `startrt manage db_worker` yourself."
        ),
    ] = True,
) -> None:
    """Serve the trial web application (migrating the database first) and run the task
    queue's worker beside it."""
    check_data_dir()
    setup_django()
    check_proxy_header(trusted_proxy)
    migrate_database()
    ensure_sites()
    _ensure_admin(admin_user)
    import waitress

    from startrt.web.wsgi import application

    worker = start_task_worker() if task_worker else None
    # SIGTERM ends the server as Ctrl+C does, so that the worker is stopped with it
    signal.signal(signal.SIGTERM, _exit)
    typer.echo(f"startrt serving on http://{host}:{port}/ (waitress)", err=True)
    options = waitress_options(threads, connection_limit, channel_timeout, trusted_proxy)
    try:
        waitress.serve(application, host=host, port=port, **options)
    finally:
        if worker is not None:
            stop_task_worker(worker)


def _exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def start_task_worker() -> subprocess.Popen[bytes]:
    """The task queue's worker (`startrt manage db_worker`: a study's dosimetry) as a child
    process on the same database; `serve --no-task-worker` leaves it to be run on its own."""
    command = [sys.executable, "-m", "startrt", *WORKER_COMMAND]
    linux = sys.platform == "linux"
    worker = subprocess.Popen(command, preexec_fn=_die_with_parent if linux else None)
    typer.echo(f"task worker started (pid {worker.pid})", err=True)
    return worker


def _die_with_parent() -> None:
    """In the worker before it starts (Linux): SIGTERM when `serve` ends in any way, even
    killed (prctl PR_SET_PDEATHSIG), so that no worker outlives its server."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def stop_task_worker(worker: subprocess.Popen[bytes]) -> None:
    """Stop the worker: SIGTERM lets it finish the task it runs for up to
    WORKER_STOP_TIMEOUT_S, then it is killed (its job stays "running": upload it again)."""
    worker.terminate()
    try:
        worker.wait(timeout=WORKER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    typer.echo(f"task worker stopped (pid {worker.pid})", err=True)


def migrate_database() -> None:
    """Migrate as the tables' owner: with $STARTRT_MIGRATE_DATABASE_URL in a `startrt manage
    migrate` of its own, then granting the application's role (the user of
    $STARTRT_DATABASE_URL) its privileges (`app_role_grants`); otherwise on the application's
    own connection, as before."""
    if not os.environ.get(MIGRATE_URL_ENV):
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        return
    from django.conf import settings

    app_role = settings.DATABASES["default"].get("USER")
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql" or not app_role:
        raise InvalidInputError(
            MIGRATE_URL_ENV, "(set)", "needs STARTRT_DATABASE_URL naming the app's PostgreSQL user"
        )
    grants = ["app_role_grants", app_role, "--execute"]
    for command in (["migrate", "--noinput", "-v", "0"], grants):
        done = subprocess.run(
            [sys.executable, "-m", "startrt", "manage", *command],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise fail(f"startrt manage {command[0]} (as the owner) failed: {done.stderr.strip()}")


def manage(
    arguments: Annotated[list[str], typer.Argument(help="A Django management command.")],
) -> None:
    """Run a Django management command (migrate, createsuperuser, ...) on the trial database;
    `migrate` and `app_role_grants` as the tables' owner ($STARTRT_MIGRATE_DATABASE_URL) when
    it is set. Unapplying a trial app's migration is refused (web/trial/migration_guard.py)."""
    if arguments and arguments[0] in OWNER_COMMANDS and os.environ.get(MIGRATE_URL_ENV):
        os.environ["STARTRT_DATABASE_URL"] = os.environ[MIGRATE_URL_ENV]
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
