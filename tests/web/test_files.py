"""Files of the data folder: the secret key and the SQLite database are created owner-only
(0600) from the first byte, whatever the umask, and the key can live outside the data folder
(STARTRT_SECRET_KEY_FILE)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import startrt.web.settings as web_settings

SETUP = (
    "import os, django; os.umask(0o022); "
    "os.environ['DJANGO_SETTINGS_MODULE'] = 'startrt.web.settings'; "
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run(code: str, environment: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SETUP + code],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def environment_for(data_dir: Path, **extra: str) -> dict[str, str]:
    names = ("STARTRT_SECRET_KEY", "STARTRT_SECRET_KEY_FILE", "STARTRT_DATABASE_URL")
    base = {key: value for key, value in os.environ.items() if key not in names}
    return {**base, "STARTRT_DATA_DIR": str(data_dir), **extra}


def test_the_secret_key_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Created with mode 0600, not written then chmod-ed: even if the process stops between the
    two steps (here: chmod does nothing), the key was never world-readable."""
    monkeypatch.delenv("STARTRT_SECRET_KEY", raising=False)
    monkeypatch.delenv("STARTRT_SECRET_KEY_FILE", raising=False)
    monkeypatch.setattr(web_settings, "DATA_DIR", tmp_path / "data")
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    previous = os.umask(0o022)
    try:
        key = web_settings._secret_key()
    finally:
        os.umask(previous)
    path = tmp_path / "data" / "secret_key"
    assert mode(path) == 0o600
    assert mode(tmp_path / "data") == 0o700
    assert len(key) > 40
    assert path.read_text(encoding="utf-8").strip() == key
    assert web_settings._secret_key() == key  # read again, not replaced


def test_the_secret_key_file_can_live_outside_the_data_folder(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "startrt.key"
    environment = environment_for(tmp_path / "data", STARTRT_SECRET_KEY_FILE=str(key_file))
    key = run(
        "from django.conf import settings; django.setup(); print(settings.SECRET_KEY)",
        environment,
    ).strip()
    assert key == key_file.read_text(encoding="utf-8").strip()
    assert mode(key_file) == 0o600
    assert not (tmp_path / "data" / "secret_key").exists()
    again = run(
        "from django.conf import settings; django.setup(); print(settings.SECRET_KEY)",
        environment,
    ).strip()
    assert again == key


def test_the_sqlite_database_is_created_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run(
        "django.setup(); from django.db import connection; "
        "connection.cursor().execute('create table probe (x integer)')",
        environment_for(data),
    )
    database = data / "startrt.sqlite3"
    assert database.stat().st_size > 0  # a real database, made in the pre-created file
    assert mode(database) == 0o600
    assert mode(data / "secret_key") == 0o600
    assert mode(data) == 0o700


def test_private_file_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "kept"
    path.write_text("old", encoding="utf-8")
    web_settings.private_file(path, "new")
    assert path.read_text(encoding="utf-8") == "old"
