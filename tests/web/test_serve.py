"""`startrt serve` on a fresh data folder: migrates SQLite (with the append-only triggers of the
audit trail and of signatures), creates the first administrator and the protocol's sites, and
answers HTTP; idle connections do not stop it answering; an unusable data folder is refused in
one line with exit status 2."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from startrt.web.monitoring import lock_guard


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_environment(data_dir: Path, **settings: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"STARTRT_DATABASE_URL", "STARTRT_TRUSTED_PROXY", "STARTRT_HTTPS"}
    }
    return environment | {
        "STARTRT_DATA_DIR": str(data_dir),
        "STARTRT_ADMIN_PASSWORD": "a long secret pass",
        **settings,
    }


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "startrt.cli", "serve", "--port", str(port)]


def health(port: int, timeout_s: float) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout_s) as reply:
        return str(reply.read().decode())


@contextmanager
def served(data_dir: Path, *options: str, **settings: str) -> Iterator[int]:
    """`startrt serve` in a subprocess on a free port, answering /health; stopped after."""
    port = free_port()
    command = [*serve_command(port), *options]
    server = subprocess.Popen(
        command, env=serve_environment(data_dir, **settings), stderr=subprocess.PIPE, text=True
    )
    try:
        body = ""
        for _ in range(150):
            try:
                body = health(port, timeout_s=1)
                break
            except OSError:
                time.sleep(0.2)
        assert body == '{"status": "ok"}'
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_serve_starts_on_a_new_sqlite_database(tmp_path: Path) -> None:
    with served(tmp_path, "--admin-user", "admin") as port:
        # the static files (pages' stylesheet, the API docs' Swagger UI) come from serve itself
        for path in ["pages/startrt.css", "ninja/swagger-ui-bundle.js", "ninja/swagger-ui.css"]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/static/{path}") as reply:
                assert reply.status == 200
                assert len(reply.read()) > 1000
    database = sqlite3.connect(tmp_path / "startrt.sqlite3")
    assert database.execute("select username from auth_user").fetchall() == [("admin",)]
    assert database.execute("select count(*) from trial_site").fetchone() == (4,)
    triggers = database.execute("select name from sqlite_master where type = 'trigger'").fetchall()
    names = {name for (name,) in triggers}
    append_only = {
        f"{table}_no_{operation}"
        for table in (
            "trial_auditentry",
            "signing_signature",
            "monitoring_databaselock",
            "monitoring_patientfreeze",
        )
        for operation in ("update", "delete")
    }
    data_lock = {
        f"{model._meta.db_table}_data_lock_{operation}"
        for model in lock_guard.locked_models()
        for operation in ("insert", "update", "delete")
    }
    assert names == append_only | data_lock
    # the clinical record is locked, the audit trail and the lock itself are not
    assert "events_adverseevent_data_lock_update" in names
    assert not any(name.startswith("trial_auditentry_data_lock") for name in names)
    assert not any(name.startswith("monitoring_databaselock_data_lock") for name in names)


IDLE_CONNECTIONS = 120  # more than waitress's default connection_limit (100)


@pytest.mark.slow
def test_idle_connections_do_not_stop_the_server_answering(tmp_path: Path) -> None:
    """120 clients connect and send nothing (a slow or stalled client, loopback only); /health
    still answers within seconds (waitress's defaults: it waits for one to time out, 120 s)."""
    with served(tmp_path) as port, ExitStack() as idle:
        for _ in range(IDLE_CONNECTIONS):
            connection = idle.enter_context(socket.create_connection(("127.0.0.1", port), 2))
            connection.settimeout(2)
        time.sleep(0.5)  # let the server accept them all
        started = time.monotonic()
        assert health(port, timeout_s=5) == '{"status": "ok"}'
        assert time.monotonic() - started < 5


def refused_data_dir(data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        serve_command(free_port()),
        env=serve_environment(data_dir, **settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_a_file_as_data_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    data_file = tmp_path / "data"
    data_file.write_text("not a folder", encoding="utf-8")
    served = refused_data_dir(data_file)
    assert served.returncode == 2
    assert served.stderr.strip().splitlines() == [
        f"error: STARTRT_DATA_DIR={str(data_file)!r}: must be a folder, not a file"
    ]
    assert data_file.read_text(encoding="utf-8") == "not a folder"


@pytest.mark.slow
def test_a_data_folder_that_cannot_be_created_or_written_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    beneath_a_file = tmp_path / "file" / "data"
    served = refused_data_dir(beneath_a_file)
    assert served.returncode == 2
    [line] = served.stderr.strip().splitlines()
    assert line == (
        f"error: STARTRT_DATA_DIR={str(beneath_a_file)!r}: "
        "must be a folder startrt can write in (Not a directory)"
    )

    if os.geteuid() != 0:  # root writes in a read-only folder anyway
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o500)
        served = refused_data_dir(read_only)
        assert served.returncode == 2
        [line] = served.stderr.strip().splitlines()
        assert "Permission denied" in line


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    """Status and headers of GET `path`, redirects not followed."""
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with opener.open(request, timeout=10) as reply:
            return reply.status, reply.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


@pytest.mark.slow
def test_https_behind_a_trusted_reverse_proxy(tmp_path: Path) -> None:
    """STARTRT_HTTPS=1 with the proxy's address: a request the proxy marks HTTPS gets HSTS and
    secure cookies, a plain one is redirected to HTTPS, /health answers plain HTTP; the proxy
    header from any other peer is dropped (waitress), so a client cannot claim HTTPS itself."""
    settings = {"STARTRT_HTTPS": "1", "STARTRT_ALLOWED_HOSTS": "trial.example.org,127.0.0.1"}
    proxied = {"Host": "trial.example.org", "X-Forwarded-Proto": "https"}
    with served(tmp_path, **settings, STARTRT_TRUSTED_PROXY="127.0.0.1") as port:
        status, headers = fetch(port, "/login/", proxied)
        assert status == 200
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
        cookie = headers["Set-Cookie"]
        assert "csrftoken=" in cookie
        assert "Secure" in cookie
        status, headers = fetch(port, "/login/", {"Host": "trial.example.org"})
        assert status == 301
        assert headers["Location"] == "https://trial.example.org/login/"

    with served(tmp_path, **settings, STARTRT_TRUSTED_PROXY="192.0.2.1") as port:
        status, headers = fetch(port, "/login/", proxied)
        assert status == 301  # not from the trusted proxy: the header is ignored


@pytest.mark.slow
def test_https_without_the_proxy_address_is_refused_in_one_line(tmp_path: Path) -> None:
    served = refused_data_dir(tmp_path, STARTRT_HTTPS="1")
    assert served.returncode == 2
    [line] = served.stderr.strip().splitlines()
    assert line.startswith("error: STARTRT_TRUSTED_PROXY=None: set it (or --trusted-proxy)")
