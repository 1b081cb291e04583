"""Fifty investigators randomizing at once, while as many nurses record consents and read, get
fifty distinct consecutive slots and no error, on the embedded SQLite and on PostgreSQL.

A real server: `startrt serve` (waitress) in a subprocess on a temporary data folder (SQLite, as
a site runs it) or, when the suite runs on PostgreSQL (`STARTRT_DATABASE_URL`), on a temporary
database of that server; clients log in through /login/ and call the JSON API on 50 threads.
The server, seed and clients are the ones of `bench/web_concurrency.py`."""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.db import connection

PATIENTS = 50


def _bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "web_concurrency.py"
    spec = importlib.util.spec_from_file_location("bench_web_concurrency", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _bench()


@contextmanager
def server_database(data_dir: Path) -> Iterator[tuple[dict[str, str], Any]]:
    """The server's environment and connections to its database: a new database on the suite's
    PostgreSQL server (dropped afterwards), else SQLite in `data_dir`."""
    url = os.environ.get("STARTRT_DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        with bench.postgres_database(url) as database_url:
            environment = bench.server_environment(data_dir, database_url)
            yield environment, bench.connector(data_dir, database_url)
    else:
        yield bench.server_environment(data_dir, None), bench.connector(data_dir, None)


@pytest.mark.slow
def test_concurrent_consents_and_randomizations_take_distinct_slots(tmp_path: Path) -> None:
    with server_database(tmp_path) as (environment, connect):
        with bench.serve(environment, tmp_path, PATIENTS) as server:
            started = time.perf_counter()
            storm = bench.storm(server, range(1, PATIENTS + 1))
            seconds = time.perf_counter() - started
        errors = storm.errors()
        assert errors == [], f"{len(errors)} errors, first {errors[0]}"
        assert len(storm.of("randomize")) == len(storm.of("consent")) == PATIENTS
        assert seconds < 60
        # the first 50 slots of the one stratum, each taken once, each allocation audited
        assert bench.taken_slots(connect) == list(range(1, PATIENTS + 1))
        strata = bench.query(
            connect, "select distinct stratum from trial_slot where patient_id > 0"
        )
        assert strata == [("site=Lund;fdg=negative",)]
        audited = bench.query(
            connect,
            'select count(*), count(distinct patient_trial_id) from trial_auditentry where "table"'
            " = %s and reason = %s",
            "trial_slot",
            bench.RANDOMIZATION_REASON,
        )
        assert audited == [(PATIENTS, PATIENTS)]
        consents = bench.query(
            connect,
            'select count(distinct patient_trial_id) from trial_auditentry where "table" = %s '
            "and action = %s",
            "trial_consent",
            "insert",
        )
        assert consents == [(PATIENTS,)]
        stored = bench.query(connect, "select count(distinct patient_id) from trial_consent")
        assert stored == [(PATIENTS,)]
        assert_chain_not_forked(connect)


def assert_chain_not_forked(connect: Any) -> None:
    """When the audit trail is hash-chained (prev_hash), concurrent writers did not fork it:
    every row follows a different predecessor."""
    database = connect()
    try:
        cursor = database.execute("select * from trial_auditentry where 1 = 0")
        names = {column[0] for column in cursor.description}
    finally:
        database.close()
    if "prev_hash" in names:
        links = bench.query(
            connect, "select count(*), count(distinct prev_hash) from trial_auditentry"
        )
        assert links[0][0] == links[0][1]


def test_sqlite_writes_take_the_lock_first_and_wait_for_it() -> None:
    """Settings of the embedded SQLite: BEGIN IMMEDIATE for atomic blocks only (requests are not
    wrapped in one), a busy timeout, WAL journal (the init command)."""
    settings = connection.settings_dict
    assert settings["ATOMIC_REQUESTS"] is False
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite options apply to SQLite only")
    options = settings["OPTIONS"]
    assert options["transaction_mode"] == "IMMEDIATE"
    assert options["timeout"] >= 10
    assert "journal_mode=WAL" in options["init_command"]


@pytest.mark.slow
def test_sqlite_reads_go_on_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """With another writer holding SQLite's write lock, GETs answer at once (WAL; a read opens
    no transaction) and a write waits for the lock, then succeeds, instead of "database is
    locked"."""
    environment = bench.server_environment(tmp_path, None)
    with bench.serve(environment, tmp_path, 2) as server:
        nurse = server.session("nurse0")
        holder = sqlite3.connect(
            tmp_path / "startrt.sqlite3", isolation_level=None, check_same_thread=False
        )
        assert holder.execute("pragma journal_mode").fetchone() == ("wal",)
        holder.execute("begin immediate")  # the write lock, held by someone else
        released = threading.Event()

        def release() -> None:
            time.sleep(1.5)
            holder.execute("rollback")
            released.set()

        threading.Thread(target=release).start()
        reads = [nurse.call("read", "GET", f"/api/patients/{bench.trial_id(1)}") for _ in range(5)]
        reads.append(nurse.call("read", "GET", "/api/patients"))
        assert not released.is_set()  # the reads answered while the lock was held
        assert [reply.status for reply in reads] == [200] * 6
        path = f"/api/patients/{bench.trial_id(1)}/consents"
        write = nurse.call("consent", "POST", path, {"record": bench.CONSENT})
        assert released.is_set()  # the write waited for the lock ...
        assert write.status == 201, write  # ... and then succeeded
        holder.close()
