"""A cycle's study computed on the task queue (django-tasks, database backend), never in the
request: the upload is saved to staging and queued (the response arrives while the job is still
queued), a worker runs it, reporting each step on the job's page, which reloads itself until the
job ends; a refusal fails the job naming field, value and rule and stores nothing; the figures
are served only to users who may see the patient.

The worker runs in-process (`db_worker --batch`) on the test database, and as the real child
process of `startrt serve` on a database of its own (SQLite in a temporary data folder, or a
temporary database on the suite's PostgreSQL), while another connection keeps writing."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django_tasks_db.models import DBTaskResult

from startrt.web.treatment import study_tasks
from startrt.web.treatment.models import Cycle, DosimetryResult, StudyJob
from startrt.web.treatment.services import record_dosimetry
from startrt.web.treatment.study_tasks import dosimetry_summary
from startrt.web.trial.models import Role
from web.conftest import _audit_triggers, make_user
from web.test_concurrency import bench, server_database
from web.test_study_upload import Study, client_for, phantom_study_zip, stored_files
from web.test_study_upload import data_dir as data_dir
from web.test_study_upload import given as given
from web.test_treatment import Sites, Staff

TRIAL_ID = "S01-LUN-001"
UPLOAD_URL = f"/patients/{TRIAL_ID}/treatment/cycles/1/study/"
STEPS = ["unzipping", "de-identifying", "fitting time-activity curves", "computing dose"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def pseudonymised_zip(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """The phantom study exported under the trial pseudonym (no confirmation needed)."""
    return phantom_study_zip(tmp_path_factory.mktemp("phantom_tasks") / "study", TRIAL_ID)


def _triggers_present() -> bool:
    """Whether the audit trail's append-only triggers are there (the data lock's are always)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "select count(*) from sqlite_master "
            "where type = 'trigger' and name = 'trial_auditentry_no_update'"
        )
        return bool(cursor.fetchone()[0])


@pytest.fixture(scope="module")
def _triggers_restored(django_db_blocker: Any) -> Iterator[None]:
    yield
    if connection.vendor == "sqlite":
        with django_db_blocker.unblock():
            if not _triggers_present():
                _audit_triggers(create=True)


@pytest.fixture
def committed(_triggers_restored: None, transactional_db: None) -> Iterator[None]:
    """Committed data, as the worker reads it; conftest's `flushable_audit_trail` for several
    tests of one module: the append-only triggers are back before each test and lifted for
    each flush."""
    if connection.vendor == "sqlite" and not _triggers_present():
        _audit_triggers(create=True)
    yield
    if connection.vendor == "sqlite":
        _audit_triggers(create=False)


def run_worker() -> None:
    """The queue's worker, in this process, until the queue is empty."""
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)


def job_url(job: StudyJob) -> str:
    return f"/patients/{TRIAL_ID}/treatment/study-jobs/{job.pk}/"


@pytest.mark.slow
def test_the_upload_is_queued_in_the_request_and_the_worker_computes_it(
    committed: None,
    team: Staff,
    given: Cycle,
    data_dir: Path,
    pseudonymised_zip: Study,
) -> None:
    physicist = client_for(team["physicist"])
    started = time.perf_counter()
    answer = physicist.post(
        UPLOAD_URL, {"study": SimpleUploadedFile("s.zip", pseudonymised_zip[0])}
    )
    seconds = time.perf_counter() - started
    job = StudyJob.objects.get()
    assert (answer.status_code, answer["Location"]) == (302, job_url(job))
    # the response came before any computation: queued, nothing stored, the zip in staging
    assert job.state == StudyJob.State.QUEUED
    assert seconds < 1.0
    assert not DosimetryResult.objects.exists()
    assert str(DBTaskResult.objects.get().id) == job.task_id
    staged = data_dir / "studies" / job.staging_path / "upload.zip"
    assert staged.read_bytes() == pseudonymised_zip[0]
    queued = physicist.get(job_url(job))
    assert queued["Refresh"] == "2"
    assert "Queued" in queued.content.decode()

    run_worker()

    job.refresh_from_db()
    assert (job.state, job.step, job.error_rule) == (StudyJob.State.DONE, "", "")
    result = DosimetryResult.objects.get()
    assert (job.result, job.result_version, result.source) == (result, 1, "computed")
    assert result.left_kidney_dose_gy == pytest.approx(
        pseudonymised_zip[1]["vois"]["left_kidney"]["dose_gy"], rel=0.25
    )
    assert not staged.parent.exists()  # staging removed
    done = physicist.get(job_url(job))
    assert "Refresh" not in done
    html = done.content.decode()
    assert "Stored as the cycle's dosimetry (version 1)" in html
    assert f"left kidney {result.left_kidney_dose_gy:.2f} Gy" in html
    figures = re.findall(r'src="([^"]+\.png)"', html)
    assert len(figures) == 3
    for url in figures:
        image = physicist.get(url)
        assert (image.status_code, image["Content-Type"]) == (200, "image/png")
        assert b"".join(image.streaming_content).startswith(PNG_SIGNATURE)
    # the per-VOI rows come rounded from startrt.fields: a half-life to 0.1 h, a TIA to 1 MBq h
    summary = dosimetry_summary(given)
    kidney = next(row for row in summary["rows"] if row["voi"] == "left kidney")
    half_life, tia = kidney["cells"][1], kidney["cells"][2]
    assert re.fullmatch(r"\d+\.\d", half_life)
    assert re.fullmatch(r"\d+", tia)
    assert summary["columns"][1:3] == [
        "Effective half life (h)",
        "Time-integrated activity (MBq h)",
    ]
    assert "Time-integrated activity (MBq h)" in html


@pytest.mark.slow
def test_each_step_is_recorded_and_shown_while_the_job_runs(
    committed: None,
    team: Staff,
    given: Cycle,
    data_dir: Path,
    pseudonymised_zip: Study,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    physicist = client_for(team["physicist"])
    physicist.post(UPLOAD_URL, {"study": SimpleUploadedFile("s.zip", pseudonymised_zip[0])})
    seen: list[tuple[str, str, str]] = []
    real_update = study_tasks._update

    def update(job: StudyJob, **values: Any) -> None:
        real_update(job, **values)
        # what a reader sees on the page right after each write
        page = physicist.get(job_url(job))
        state = re.search(r"<strong>(\w+)</strong>(?::\s*([^<]+))?", page.content.decode())
        assert state is not None
        seen.append((job.state, job.step, state.group(0)))
        assert (page.get("Refresh") == "2") == (job.state != StudyJob.State.DONE)

    monkeypatch.setattr(study_tasks, "_update", update)
    run_worker()
    states = [state for state, _, _ in seen]
    steps = [step for _, step, _ in seen if step]
    assert (states[0], states[-1]) == ("running", "done")
    assert list(dict.fromkeys(steps)) == STEPS
    assert "<strong>Running</strong>: fitting time-activity curves" in [s for _, _, s in seen]


@pytest.mark.slow
def test_a_corrupt_zip_fails_the_job_with_its_rule_and_stores_nothing(
    committed: None,
    team: Staff,
    given: Cycle,
    data_dir: Path,
) -> None:
    physicist = client_for(team["physicist"])
    corrupt = b"PK\x03\x04 but not really a zip archive"
    answer = physicist.post(UPLOAD_URL, {"study": SimpleUploadedFile("scan.zip", corrupt)})
    assert answer.status_code == 302
    run_worker()
    job = StudyJob.objects.get()
    assert (job.state, job.error_field, job.error_value, job.error_rule) == (
        StudyJob.State.FAILED,
        "study",
        "scan.zip",
        "is not a zip archive",
    )
    assert not DosimetryResult.objects.exists()
    assert stored_files(data_dir) == []  # no study, no figures, no staging
    page = physicist.get(job_url(job))
    assert "Refresh" not in page
    assert "<strong>Failed</strong> while unzipping" in page.content.decode()
    assert "Not computed, nothing was stored: Study “scan.zip” is not a zip archive." in (
        page.content.decode()
    )
    summary = dosimetry_summary(given)
    assert (summary["job"], summary["done_job"], summary["figures"]) == (job, None, [])


def test_a_refusal_before_queueing_shows_the_cycle_page_and_queues_nothing(
    team: Staff,
    given: Cycle,
    data_dir: Path,
) -> None:
    nurse = client_for(team["nurse"])
    answer = nurse.post(UPLOAD_URL, {"study": SimpleUploadedFile("s.zip", b"PK")})
    assert answer.status_code in (403, 422)
    assert not StudyJob.objects.exists()
    assert not DBTaskResult.objects.exists()
    assert stored_files(data_dir) == []


def test_the_job_page_and_figures_are_only_for_users_who_see_the_patient(
    team: Staff,
    given: Cycle,
    data_dir: Path,
    sites: Sites,
) -> None:
    folder = data_dir / "studies" / TRIAL_ID / "cycle-1" / "stamp-figures"
    folder.mkdir(parents=True)
    (folder / "dvh.png").write_bytes(PNG_SIGNATURE + b"figure")
    job = StudyJob.objects.create(
        patient=given.patient,
        cycle=given,
        submitted_by=team["physicist"],
        upload_name="s.zip",
        state=StudyJob.State.DONE,
        figures_path=f"{TRIAL_ID}/cycle-1/stamp-figures",
    )
    figure = f"{job_url(job)}figures/dvh.png"
    own_site = client_for(team["nurse"])
    assert own_site.get(figure).status_code == 200
    assert own_site.get(f"{job_url(job)}figures/dose_slices.png").status_code == 404  # no file
    assert own_site.get(f"{job_url(job)}figures/..%2Fdvh.png").status_code == 404
    other_site = client_for(make_user("physicist.uppsala", Role.PHYSICIST, sites["Uppsala"]))
    assert other_site.get(figure).status_code == 404
    assert other_site.get(job_url(job)).status_code == 404
    assert Client().get(figure).status_code == 302  # to the login page


# --- a real worker process beside `startrt serve`, on SQLite and on PostgreSQL ----------------

SEED = """
import sys
from pathlib import Path

from startrt.cli_web import setup_django

setup_django()
from django.core.files.uploadedfile import SimpleUploadedFile

from startrt.protocol.definition import default_protocol
from startrt.web.treatment.study_tasks import submit_study
from startrt.web.trial.models import Role, Site
from web.conftest import _audit_triggers, make_user
from web.test_study_upload import INJECTED
from web.test_treatment import give, planned_cycle, randomized

codes = {"Gothenburg": "GOT", "Lund": "LUN", "Stockholm": "STO", "Uppsala": "UPP"}
names = default_protocol().sites
sites = {name: Site.objects.create(name=name, code=codes[name]) for name in names}
lund = sites["Lund"]
team = {
    "nurse": make_user("nurse.lund", Role.RESEARCH_NURSE, lund),
    "investigator": make_user("investigator.lund", Role.INVESTIGATOR, lund),
    "statistician": make_user("statistician", Role.STATISTICIAN, None),
    "physicist": make_user("physicist.lund", Role.PHYSICIST, lund),
}
cycle = give(team, planned_cycle(team, randomized(team, sites, 1), planned_date=INJECTED), 7.4)
upload = SimpleUploadedFile("study.zip", Path(sys.argv[1]).read_bytes())
print(submit_study(team["physicist"], cycle, upload).pk)
"""


def _write_seconds(connect: Any) -> float:
    """Seconds one write transaction took on the server's database (BEGIN IMMEDIATE on
    SQLite: it waits for the write lock, up to 30 s)."""
    database = connect()
    sqlite = isinstance(database, sqlite3.Connection)
    started = time.perf_counter()
    try:
        if sqlite:
            database.isolation_level = None
            database.execute("PRAGMA busy_timeout = 30000")
            database.execute("BEGIN IMMEDIATE")
        database.execute("update trial_site set code = code")
        if sqlite:
            database.execute("COMMIT")
        else:
            database.commit()
    finally:
        database.close()
    return time.perf_counter() - started


@pytest.mark.slow
def test_startrt_serve_runs_the_worker_which_computes_beside_other_writers(
    tmp_path: Path, pseudonymised_zip: Study
) -> None:
    url = os.environ.get("STARTRT_DATABASE_URL", "")
    postgres = url.startswith(("postgres://", "postgresql://"))
    if postgres and not bench.postgres_reachable(url):
        pytest.skip(f"PostgreSQL not reachable at {url}")
    study = tmp_path / "study.zip"
    study.write_bytes(pseudonymised_zip[0])
    with server_database(tmp_path) as (environment, connect):
        environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
        startrt = [sys.executable, "-m", "startrt"]
        subprocess.run(
            [*startrt, "manage", "migrate", "--noinput", "-v", "0"], env=environment, check=True
        )
        seeded = subprocess.run(
            [sys.executable, "-c", SEED, str(study)],
            env=environment,
            check=True,
            capture_output=True,
            text=True,
        )
        job_id = int(seeded.stdout.strip().splitlines()[-1])
        state = lambda: bench.query(  # noqa: E731
            connect, "select state, step, error_rule from treatment_studyjob where id = %s", job_id
        )[0]
        assert state()[0] == "queued"  # no worker yet
        port = bench.free_port()
        log_path = tmp_path / "serve.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(
                [*startrt, "serve", "--port", str(port)], env=environment, stdout=log, stderr=log
            )
        try:
            bench.wait_for_health(f"http://127.0.0.1:{port}", server)
            seen, writes = set(), []
            deadline = time.monotonic() + 180
            while state()[0] not in ("done", "failed") and time.monotonic() < deadline:
                seen.add(state()[:2])
                writes.append(_write_seconds(connect))
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as reply:
                    assert reply.status == 200
                time.sleep(0.05)
            final = state()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
        log_text = log_path.read_text()
        assert final == ("done", "", ""), log_text
        assert max(writes) < 5.0, writes  # the web's writers never waited long on the worker
        assert any(s == "running" for s, _ in seen), seen
        computed = bench.query(connect, "select source from treatment_dosimetryresult")
        assert computed == [("computed",)]
        found = re.search(r"task worker started \(pid (\d+)\)", log_text)
        assert found is not None
        worker_pid = int(found.group(1))
        assert f"task worker stopped (pid {worker_pid})" in log_text
        assert not alive(worker_pid)  # stopped with the server


def alive(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_the_worker_ends_with_a_killed_server(tmp_path: Path) -> None:
    environment = bench.server_environment(tmp_path, None)
    port = bench.free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        command = [sys.executable, "-m", "startrt", "serve", "--port", str(port)]
        server = subprocess.Popen(command, env=environment, stdout=log, stderr=log)
    try:
        bench.wait_for_health(f"http://127.0.0.1:{port}", server)
        found = re.search(r"task worker started \(pid (\d+)\)", log_path.read_text())
        assert found is not None
        worker_pid = int(found.group(1))
        assert alive(worker_pid)
    finally:
        server.kill()  # SIGKILL: no handler runs in the server
        server.wait(timeout=30)
    deadline = time.monotonic() + 10
    while alive(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(worker_pid)


def test_a_job_whose_staged_upload_is_gone_fails_naming_why(
    team: Staff, given: Cycle, data_dir: Path
) -> None:
    client_for(team["physicist"]).post(UPLOAD_URL, {"study": SimpleUploadedFile("s.zip", b"PK")})
    job = StudyJob.objects.get()
    shutil.rmtree(data_dir / "studies" / job.staging_path)  # as an upload 6 hours later does
    study_tasks.compute_study_job.call(job.pk)
    job.refresh_from_db()
    assert (job.state, job.error_field, job.error_value) == ("failed", "study", "s.zip")
    assert job.error_rule == (
        "its upload is gone: staging folders are removed after 6 hours (was no task worker "
        "running?); upload it again"
    )
    assert stored_files(data_dir) == []


def test_replacing_dosimetry_without_a_reason_is_refused_on_the_cycle_page(
    team: Staff, given: Cycle, data_dir: Path
) -> None:
    result = record_dosimetry(
        team["physicist"], given, left_kidney_dose_gy=3.0, right_kidney_dose_gy=3.2
    )
    data = {"study": SimpleUploadedFile("s.zip", b"PK"), "expected_version": result.version}
    answer = client_for(team["physicist"]).post(UPLOAD_URL, data)
    assert answer.status_code == 422
    assert "A correction of dosimetry needs a reason" in answer.content.decode()
    assert "Cycle 1" in answer.content.decode()  # the cycle's page, its upload form refused
    assert not StudyJob.objects.exists()
    assert stored_files(data_dir) == []
