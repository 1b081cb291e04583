"""Concurrent writers against a real server: `startrt serve` (waitress, 8 threads) on a fresh
database, then 50 and 200 investigators randomizing at once while as many nurses record a
consent and read the patient, all through the JSON API with a signed-in session (made by the
seed; the investigators' verified by their authenticator app) and a CSRF token; each investigator
opens a signing session before the burst (POST /api/signing-session with the password: one
password check each, as at the start of a working session) and the randomizations are signed by
its signing token.

Printed per database (embedded SQLite in a temporary data folder; PostgreSQL on a temporary
database at $STARTRT_DATABASE_URL or 127.0.0.1:5432 when reachable): p50 / p95 latency of a
randomization, the errors of every request, the slots taken (distinct and consecutive?) and the
ratio of the p95 to a single randomization's latency on the idle server measured in the same run,
the p95 of a consent (an unsigned write), and the CPU a password check costs (what each
randomization cost when signed by the password rather than by a signing token).
Target: no error, no duplicate or skipped slot; p95 < 1 s at 50 writers on PostgreSQL.

`tests/web/test_concurrency.py` loads this module for its server, seed and clients.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import sqlite3
import statistics
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
PASSWORD = "a long concurrency pass"
SESSIONS = 4  # investigators and nurses, each logged in once, shared by the client threads
SINGLES = 5  # randomizations one at a time on the idle server: the in-run baseline
TARGET_P95_SECONDS = 1.0
CONSENT = {"form_version": "1.0", "signed_on": "2025-02-20"}
RANDOMIZATION_REASON = "randomization (allocation of the next slot)"

# run in a fresh interpreter against the server's database: users with roles at Lund, a
# randomization list, PATIENTS registered and eligible (FDG-PET negative: one stratum), and a
# signed-in session per user (as after /login/, verified by the investigators' authenticator app
# when two-factor signing is installed): the last line printed is {username: session key}
SEED = """
import json, sys
from startrt.cli_web import setup_django
setup_django()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.trial import services
from startrt.web.trial.models import Membership, Role, Site

patients, sessions, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
screening = json.loads(sys.argv[4])
lund = Site.objects.get(name="Lund")


def user(name, role, site):
    made = User.objects.create_user(name, password=password)
    Membership.objects.create(user=made, site=site, role=role)
    return made


def session(user, device=None):
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    if device is not None:
        store[DEVICE_ID_SESSION_KEY] = device.persistent_id
    store.create()
    return store.session_key


def authenticator(user):
    try:
        from django_otp.plugins.otp_totp.models import TOTPDevice
    except ImportError:
        return None
    return TOTPDevice.objects.create(user=user, name="bench app", confirmed=True)


try:
    from django_otp import DEVICE_ID_SESSION_KEY
except ImportError:
    DEVICE_ID_SESSION_KEY = None


statistician = user("statistician", Role.STATISTICIAN, None)
keys = {}
for number in range(sessions):
    investigator = user(f"investigator{number}", Role.INVESTIGATOR, lund)
    keys[investigator.username] = session(investigator, authenticator(investigator))
    made = user(f"nurse{number}", Role.RESEARCH_NURSE, lund)
    keys[made.username] = session(made)
nurse = User.objects.get(username="nurse0")
listing = generate_block_list(
    seed=7, n_per_stratum=patients + 10, strata=protocol_strata(default_protocol())
)
services.load_randomization_list(statistician, lund, "main", listing)
for number in range(1, patients + 1):
    patient = services.register_patient(nurse, lund, f"S01-LUN-{number:03d}", "male")
    services.record_screening(nurse, patient, screening)
print(json.dumps(keys))
"""

# a START-01 screening record meeting every criterion (male, 64 y, FDG-PET negative): the
# record the tests use (tests/support/records.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.records import eligible_screening  # noqa: E402

SCREENING: dict[str, object] = eligible_screening()


def trial_id(number: int) -> str:
    return f"S01-LUN-{number:03d}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_reachable(url: str) -> bool:
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception:  # any failure means "not reachable"
        return False
    return True


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A new, empty database on the server of `url` (dropped afterwards): its URL."""
    import psycopg

    name = f"startrt_concurrency_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlsplit(url)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    """The environment of the server and the seed: a data folder, SQLite unless a URL is given."""
    environment = {**os.environ, "STARTRT_DATA_DIR": str(data_dir)}
    environment.pop("STARTRT_DATABASE_URL", None)
    environment.pop("DJANGO_SETTINGS_MODULE", None)
    if database_url is not None:
        environment["STARTRT_DATABASE_URL"] = database_url
    return environment


@dataclass(frozen=True)
class Server:
    base_url: str
    session_keys: dict[str, str]  # username: the key of a signed-in session
    signing_tokens: dict[str, str] = field(default_factory=dict)  # investigator: signing token

    def session(self, username: str) -> Session:
        return Session(
            self.base_url, self.session_keys[username], self.signing_tokens.get(username)
        )


@contextmanager
def serve(environment: Mapping[str, str], data_dir: Path, seed_patients: int) -> Iterator[Server]:
    """`startrt serve` on the environment's database, seeded once migrated."""
    port = free_port()
    command = [sys.executable, "-m", "startrt.cli", "serve", "--port", str(port)]
    log = (data_dir / "server.log").open("w", encoding="utf-8")
    server = subprocess.Popen(command, env=dict(environment), stdout=log, stderr=log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(base_url, server)
        seed = [sys.executable, "-c", SEED, str(seed_patients), str(SESSIONS), PASSWORD]
        seeded = subprocess.run(
            [*seed, json.dumps(SCREENING)],
            env=dict(environment),
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        )
        keys = json.loads(seeded.stdout.strip().splitlines()[-1])
        yield Server(base_url, keys, signing_tokens(base_url, keys))
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def signing_tokens(base_url: str, session_keys: Mapping[str, str]) -> dict[str, str]:
    """Each investigator opens a signing session with the password (the session was verified by
    the authenticator app), as at the start of a working session: {username: signing token}."""
    tokens = {}
    for username, key in session_keys.items():
        if username.startswith("investigator"):
            reply = Session(base_url, key).call(
                "signing-session", "POST", "/api/signing-session", {"password": PASSWORD}
            )
            if reply.status != 200:
                raise RuntimeError(f"{username} got no signing token: {reply}")
            tokens[username] = reply.body["signing_token"]
    return tokens


def wait_for_health(base_url: str, server: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"startrt serve exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"startrt serve did not answer at {base_url} within {seconds} s")


@dataclass
class Reply:
    operation: str
    status: int  # 0: no HTTP answer (connection refused or dropped)
    seconds: float
    body: Any = None


class Session:
    """A signed-in session (its key) with a CSRF token of its own, shared by many threads."""

    def __init__(self, base_url: str, session_key: str, signing_token: str | None = None) -> None:
        self.base_url = base_url
        self.signing_token = signing_token  # of this session, when one was opened
        alphabet = string.ascii_letters + string.digits
        self.csrf = "".join(secrets.choice(alphabet) for _ in range(32))
        self.cookie = f"sessionid={session_key}; csrftoken={self.csrf}"

    def call(self, operation: str, method: str, path: str, body: object = None) -> Reply:
        headers = {
            "Cookie": self.cookie,
            "X-CSRFToken": self.csrf,
            "Content-Type": "application/json",
        }
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=data, method=method, headers=headers
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=300) as reply:
                status, text = reply.status, reply.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        except OSError as error:
            return Reply(operation, 0, time.perf_counter() - start, str(error))
        seconds = time.perf_counter() - start
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = text.decode(errors="replace")[:300]
        return Reply(operation, status, seconds, parsed)


def randomize(session: Session, number: int) -> Reply:
    """Randomize, signed by the session's signing token (or, without one, by the investigator's
    password; the session verified the 2nd factor)."""
    path = f"/api/patients/{trial_id(number)}/randomize"
    if session.signing_token:
        return session.call("randomize", "POST", path, {"signing_token": session.signing_token})
    return session.call("randomize", "POST", path, {"password": PASSWORD})


@dataclass
class Storm:
    """The replies of one run: every request, and the randomizations' latencies."""

    replies: list[Reply] = field(default_factory=list)

    def of(self, operation: str) -> list[Reply]:
        return [reply for reply in self.replies if reply.operation == operation]

    def errors(self) -> list[Reply]:
        return [reply for reply in self.replies if reply.status not in (200, 201)]


def storm(server: Server, numbers: range) -> Storm:
    """For every patient at once, on its own thread: a nurse records the consent and reads the
    patient, an investigator randomizes (each step a request of its own)."""
    nurses = [server.session(f"nurse{i}") for i in range(SESSIONS)]
    investigators = [server.session(f"investigator{i}") for i in range(SESSIONS)]
    start = threading.Barrier(len(numbers))

    def patient(number: int) -> list[Reply]:
        nurse, investigator = nurses[number % SESSIONS], investigators[number % SESSIONS]
        start.wait()
        path = f"/api/patients/{trial_id(number)}"
        return [
            nurse.call("consent", "POST", f"{path}/consents", {"record": CONSENT}),
            nurse.call("read", "GET", path),
            randomize(investigator, number),
            nurse.call("read", "GET", f"{path}/consents"),
        ]

    with ThreadPoolExecutor(max_workers=len(numbers)) as pool:
        return Storm([reply for replies in pool.map(patient, numbers) for reply in replies])


def singles(server: Server, numbers: range) -> list[float]:
    """Randomizations one after another on the idle server: their latencies."""
    investigator = server.session("investigator0")
    replies = [randomize(investigator, number) for number in numbers]
    failed = [reply for reply in replies if reply.status != 200]
    if failed:
        raise RuntimeError(f"a single randomization failed: {failed[0]}")
    return [reply.seconds for reply in replies]


Connect = Callable[[], Any]  # a DB-API connection to the server's database


def connector(data_dir: Path, database_url: str | None) -> Connect:
    """Connections to the server's database: SQLite in `data_dir` unless a PostgreSQL URL."""
    if database_url is None:
        return lambda: sqlite3.connect(data_dir / "startrt.sqlite3")
    import psycopg

    return lambda: psycopg.connect(database_url)


def query(connect: Connect, sql: str, *parameters: object) -> list[tuple[Any, ...]]:
    """The rows of `sql` (placeholders written %s) on a new connection."""
    database = connect()
    try:
        placeholder = "?" if isinstance(database, sqlite3.Connection) else "%s"
        return list(database.execute(sql.replace("%s", placeholder), parameters).fetchall())
    finally:
        database.close()


def taken_slots(connect: Connect) -> list[int]:
    """The list positions (sequence) of the slots allocated, in order."""
    sql = "select sequence from trial_slot where patient_id is not null order by sequence"
    return [int(sequence) for (sequence,) in query(connect, sql)]


# a password signature's cost: one check of a password by the project's hasher (PBKDF2 by default)
PASSWORD_CHECK = """
import time
from startrt.cli_web import setup_django
setup_django()
from django.contrib.auth.hashers import check_password, make_password
encoded = make_password("a password")
times = []
for _ in range(5):
    start = time.perf_counter()
    check_password("a password", encoded)
    times.append(time.perf_counter() - start)
print(sorted(times)[2])
"""


def password_check_seconds() -> float:
    """Median time of one password check (a randomization signed by the password makes one)."""
    with tempfile.TemporaryDirectory() as scratch:
        environment = server_environment(Path(scratch), None)
        command = [sys.executable, "-c", PASSWORD_CHECK]
        done = subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
    return float(done.stdout.strip().splitlines()[-1])


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def run(database: str, database_url: str | None, writers: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch)
        environment = server_environment(data_dir, database_url)
        with serve(environment, data_dir, SINGLES + writers) as server:
            single = statistics.median(singles(server, range(1, SINGLES + 1)))
            result = storm(server, range(SINGLES + 1, SINGLES + writers + 1))
        times = [reply.seconds for reply in result.of("randomize")]
        p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
        consent_p95 = percentile([reply.seconds for reply in result.of("consent")], 0.95)
        exact = taken_slots(connector(data_dir, database_url)) == list(
            range(1, SINGLES + writers + 1)
        )
        errors = result.errors()
        kinds = Counter(f"{reply.operation} {reply.status}" for reply in errors)
        verdict = (
            ""
            if database != "PostgreSQL" or writers != 50
            else ("  met" if p95 < TARGET_P95_SECONDS and not errors else "  MISSED")
        )
        print(
            f"{database:<11} {writers:>7} {len(result.replies):>8} {len(errors):>6} "
            f"{single * 1e3:>9.0f} {p50 * 1e3:>8.0f} {p95 * 1e3:>8.0f} {p95 / single:>8.1f} "
            f"{consent_p95 * 1e3:>10.0f} {'yes' if exact else 'NO':>9}{verdict}"
        )
        if kinds:
            print("    errors: " + ", ".join(f"{n} x {kind}" for kind, n in sorted(kinds.items())))


def main() -> None:
    url = os.environ.get("STARTRT_DATABASE_URL", POSTGRES_URL)
    postgres = re.match(r"postgres(ql)?://", url) is not None and postgres_reachable(url)
    print(
        "\nConcurrent writers through the API, `startrt serve` (waitress, 8 threads); "
        f"per patient: consent, read, randomize, read; latencies of the randomization (single: "
        f"one alone, same run), consent95: a consent's p95 (target: 0 errors, p95 < "
        f"{TARGET_P95_SECONDS:g} s at 50 on PostgreSQL)"
    )
    print(
        f"{'database':<11} {'writers':>7} {'requests':>8} {'errors':>6} {'single ms':>9} "
        f"{'p50 ms':>8} {'p95 ms':>8} {'p95/one':>8} {'consent95':>10} {'slots 1:1':>9}"
    )
    for writers in (50, 200):
        run("SQLite", None, writers)
        if postgres:
            with postgres_database(url) as database_url:
                run("PostgreSQL", database_url, writers)
    if not postgres:
        print(f"PostgreSQL not reachable at {url}: its rows are SKIPPED")
    check, cores = password_check_seconds(), os.cpu_count() or 1
    print(
        f"randomizations signed by a signing token (one password check per investigator before "
        f"the burst); signed by the password, one check {check * 1e3:.0f} ms each, 50 (200) would "
        f"need >= {50 * check / cores:.1f} ({200 * check / cores:.1f}) s of CPU on {cores} cores"
    )


if __name__ == "__main__":
    main()
