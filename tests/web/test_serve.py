"""`startrt serve` on a fresh data folder: migrates SQLite (with the append-only triggers of the
audit trail and of signatures), creates the first administrator and the protocol's sites, and
answers HTTP."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_serve_starts_on_a_new_sqlite_database(tmp_path: Path) -> None:
    port = free_port()
    environment = {
        **os.environ,
        "STARTRT_DATA_DIR": str(tmp_path),
        "STARTRT_ADMIN_PASSWORD": "a long secret pass",
    }
    environment.pop("STARTRT_DATABASE_URL", None)
    command = [
        sys.executable,
        "-m",
        "startrt.cli",
        "serve",
        "--port",
        str(port),
        "--admin-user",
        "admin",
    ]
    server = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
    try:
        body = ""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as reply:
                    body = reply.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert body == '{"status": "ok"}'
    finally:
        server.terminate()
        server.wait(timeout=10)
    database = sqlite3.connect(tmp_path / "startrt.sqlite3")
    assert database.execute("select username from auth_user").fetchall() == [("admin",)]
    assert database.execute("select count(*) from trial_site").fetchone() == (4,)
    triggers = database.execute("select name from sqlite_master where type = 'trigger'").fetchall()
    assert {name for (name,) in triggers} == {
        "trial_auditentry_no_update",
        "trial_auditentry_no_delete",
        "signing_signature_no_update",
        "signing_signature_no_delete",
    }
