"""The treatment pages of a long course (issue 14): server time to render the treatment overview
and a cycle page of a patient with 12 cycles (each planned by an accepted proposal, its labs,
signed release, administration and dosimetry entered through the services), against the
patient list (the home page) of the same user in the same run. Target: the 12-cycle overview
in < 100 ms.

In-process on a fresh embedded SQLite database in a temporary data folder (Django's test client:
the view, queries and template, no network); medians of repeated requests, and the number of
SQL queries of each page. `tests/web/test_role_walks.py` uses `give_cycles` for the 12-cycle
page it measures in Chromium.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

CYCLES = 12
TRIAL_ID = "S01-LUN-001"
TARGET_MS = 100.0
REPEATS = 15
PASSWORD = "a long treatment-page pass"
# low kidney doses (about 0.1 Gy/GBq): 12 full cycles stay far under the 30 Gy limit
LEFT_KIDNEY_GY, RIGHT_KIDNEY_GY = 0.8, 0.9
COURSE_DATES = {  # 12 cycles 10 weeks apart end 2025-02 (a date in the future is refused)
    "screening_date": "2022-12-19",
    "progression_imaging_date": "2022-08-21",
    "planned_start_date": "2023-01-09",
}
LABS_FROM_SCREENING = (
    "hemoglobin_g_l",
    "platelets_10e9_l",
    "leukocytes_10e9_l",
    "neutrophils_10e9_l",
    "creatinine_umol_l",
    "measured_gfr_ml_min_173",
)
LAB_LIMITS = {
    "hemoglobin_g_l_lln": 120,
    "platelets_10e9_l_lln": 145,
    "leukocytes_10e9_l_lln": 3.5,
    "neutrophils_10e9_l_lln": 1.6,
    "creatinine_umol_l_uln": 100,
}


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def give_cycles(patient: Any, users: dict[str, Any], count: int, password: str) -> None:
    """`count` cycles of `patient` through the services: the physicist accepts the planner's
    proposal, the nurse enters good labs a week before, the investigator signs the release
    with `password` (`users["investigator"]` carries its verified TOTP device as
    `otp_device`), the nurse records the administration on the planned day and the physicist
    the kidney doses."""
    from django.test import RequestFactory

    from startrt.web.treatment import services
    from startrt.web.trial.models import Screening

    record = Screening.objects.get(patient=patient).record
    labs = {name: record[name] for name in LABS_FROM_SCREENING} | LAB_LIMITS
    for number in range(1, count + 1):
        proposal = services.propose_next_cycle(users["physicist"], patient)
        services.accept_proposal(users["physicist"], proposal, expected_version=proposal.version)
        cycle = patient.cycles.get(number=number)
        drawn = at(cycle.planned_date - timedelta(days=7))
        services.record_labs(users["nurse"], patient, labs, drawn_at=drawn, cycle=cycle)
        request = RequestFactory().post("/", REMOTE_ADDR="10.0.0.7")
        request.user = users["investigator"]
        cycle = services.release_cycle(
            request, cycle, password=password, expected_version=cycle.version
        )
        cycle = services.record_administration(
            users["nurse"],
            cycle,
            activity_gbq=proposal.plan["activity_gbq"],
            lot=f"LU-{number:02d}",
            infusion_start=at(cycle.planned_date),
            infusion_end=at(cycle.planned_date, 9, 30),
            expected_version=cycle.version,
        )
        services.record_dosimetry(
            users["physicist"],
            cycle,
            left_kidney_dose_gy=LEFT_KIDNEY_GY,
            right_kidney_dose_gy=RIGHT_KIDNEY_GY,
        )


def randomized_patient(nurse: Any, investigator: Any, site: Any) -> Any:
    """Patient `TRIAL_ID` at `site` screened eligible (dates `COURSE_DATES`, FDG-PET
    negative: dTOC) and randomized through a one-slot list."""
    from startrt.web.trial import services as trial
    from startrt.web.trial.models import RandomizationList, Slot

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from support.records import eligible_screening

    patient = trial.register_patient(nurse, site, TRIAL_ID, "male")
    trial.record_screening(nurse, patient, eligible_screening(**COURSE_DATES))
    listing = RandomizationList.objects.create(
        name="bench",
        protocol="START-01 v1.0",
        sha256=hashlib.sha256(b"bench").hexdigest(),
        csv="",
    )
    Slot.objects.create(
        listing=listing,
        stratum=f"site={site.name};fdg=negative",
        sequence=1,
        block=1,
        block_size=2,
        arm="personalized",
    )
    trial.randomize(investigator, patient)
    return patient


def _course() -> dict[str, Any]:
    """Sites, a nurse, an investigator (TOTP device) and a physicist at Lund; one patient
    with `CYCLES` cycles given."""
    from django.contrib.auth.models import User
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from startrt.cli_web import ensure_sites
    from startrt.web.trial.models import Membership, Role, Site

    ensure_sites()
    lund = Site.objects.get(name="Lund")
    users = {}
    for name, role in (
        ("nurse", Role.RESEARCH_NURSE),
        ("investigator", Role.INVESTIGATOR),
        ("physicist", Role.PHYSICIST),
    ):
        users[name] = User.objects.create_user(f"{name}.lund", password=PASSWORD)
        Membership.objects.create(user=users[name], site=lund, role=role)
    device = TOTPDevice.objects.create(user=users["investigator"], name="app", confirmed=True)
    users["investigator"].otp_device = device
    patient = randomized_patient(users["nurse"], users["investigator"], lund)
    give_cycles(patient, users, CYCLES, PASSWORD)
    return users


def _median_ms(client: Any, url: str) -> tuple[float, int]:
    """Median server time of GET `url` (after one warm-up) and its SQL query count."""
    from django.db import connection

    queries = []

    def count(execute: Any, sql: str, *args: Any) -> Any:
        queries.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(count):
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, len(queries)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        os.environ["STARTRT_DATA_DIR"] = folder
        os.environ.pop("STARTRT_DATABASE_URL", None)
        from startrt.cli_web import setup_django

        setup_django()
        from django.core.management import call_command
        from django.test import Client

        call_command("migrate", verbosity=0)
        users = _course()
        print(f"\ntreatment pages, {CYCLES} cycles given (target overview < {TARGET_MS:g} ms)")
        print(f"{'page':<44} {'ms':>8} {'queries':>8} {'ratio':>7}")
        for role in ("physicist", "nurse"):
            client = Client(HTTP_HOST="localhost")
            client.force_login(users[role], backend="django.contrib.auth.backends.ModelBackend")
            base_ms, base_queries = _median_ms(client, "/")
            print(f"{'patient list (home), ' + role:<44} {base_ms:8.1f} {base_queries:8d} {1:7.1f}")
            for name, url in (
                ("treatment overview", f"/patients/{TRIAL_ID}/treatment/"),
                (f"cycle {CYCLES} page", f"/patients/{TRIAL_ID}/treatment/cycles/{CYCLES}/"),
            ):
                ms, queries = _median_ms(client, url)
                print(f"{name + ', ' + role:<44} {ms:8.1f} {queries:8d} {ms / base_ms:7.1f}")
                if name == "treatment overview":
                    verdict = "met" if ms < TARGET_MS else "NOT met"
                    print(f"  target < {TARGET_MS:g} ms: {verdict}")
