"""The enrolment dashboard on a hand-countable trial: exact counts in its tables, the accrual
against the plan worked out by hand, no arm shown to any role, scope by role, a fixed number of
queries.

The trial (randomizations at noon UTC on the dates given; the page read on 2024-11-01, 731
days after the start 2022-11-01; the plan: 300 patients uniformly over 1461 days, 75 a site):

    Lund        L1 randomized 2023-02-10 (FDG-PET negative), L2 2023-06-15 (positive),
                L3 2024-01-20 (positive), L4 not eligible (GFR 40 and earlier PRRT),
                L5 not eligible (earlier PRRT), L6 undecided (no platelets), L7 eligible
    Uppsala     U1 randomized 2023-03-01 (negative), U2 not eligible (ECOG 2)
    Gothenburg  G1 randomized 2023-09-09 (positive)
    Stockholm   nobody
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.trial import services
from startrt.web.trial.models import Role, Site
from support.records import eligible_screening
from web.conftest import make_user

AS_OF = date(2024, 11, 1)
URL = "/enrolment/"
Staff = dict[str, User]


@contextmanager
def on(day: date) -> Iterator[None]:
    with time_machine.travel(datetime.combine(day, time(12), UTC), tick=False):
        yield


def screening(day: date, **changes: Any) -> dict[str, Any]:
    return eligible_screening(
        screening_date=day.isoformat(),
        progression_imaging_date=(day - timedelta(days=120)).isoformat(),
        **changes,
    )


PATIENTS: list[tuple[str, str, dict[str, Any], date | None]] = [
    ("Lund", "S01-LUN-001", {"fdg_pet_positive": False}, date(2023, 2, 10)),
    ("Lund", "S01-LUN-002", {"fdg_pet_positive": True}, date(2023, 6, 15)),
    ("Lund", "S01-LUN-003", {"fdg_pet_positive": True}, date(2024, 1, 20)),
    ("Lund", "S01-LUN-004", {"measured_gfr_ml_min_173": 40, "prior_prrt": True}, None),
    ("Lund", "S01-LUN-005", {"prior_prrt": True}, None),
    ("Lund", "S01-LUN-006", {"platelets_10e9_l": None}, None),
    ("Lund", "S01-LUN-007", {}, None),
    ("Uppsala", "S01-UPP-001", {"fdg_pet_positive": False}, date(2023, 3, 1)),
    ("Uppsala", "S01-UPP-002", {"ecog": 2}, None),
    ("Gothenburg", "S01-GOT-001", {"fdg_pet_positive": True}, date(2023, 9, 9)),
]


@pytest.fixture
def people(staff: Staff, sites: dict[str, Site]) -> Staff:
    """The conftest's staff, a nurse and an investigator per other site, a pharmacist at Lund,
    an all-site administrator and a user without any role."""
    extra = {
        "admin": make_user("admin", Role.ADMINISTRATOR, None),
        "pharmacist": make_user("pharmacist.lund", Role.PHARMACIST, sites["Lund"]),
        "nobody": User.objects.create_user("nobody", password="correct horse battery"),
    }
    for name in ("Uppsala", "Gothenburg"):
        extra[f"nurse.{name}"] = make_user(
            f"nurse.{name.lower()}", Role.RESEARCH_NURSE, sites[name]
        )
    extra["investigator.Gothenburg"] = make_user(
        "investigator.gothenburg", Role.INVESTIGATOR, sites["Gothenburg"]
    )
    return {**staff, **extra}


def enrol(
    people: Staff, sites: dict[str, Site], rows: list[tuple[str, str, dict[str, Any], date | None]]
) -> None:
    """Register, screen (a week before randomization, or on 2024-03-01) and randomize."""
    for site, trial_id, changes, randomized_on in rows:
        nurse = people["nurse"] if site == "Lund" else people[f"nurse.{site}"]
        investigator = {
            "Lund": people["investigator"],
            "Uppsala": people["uppsala"],
            "Gothenburg": people["investigator.Gothenburg"],
        }[site]
        screened_on = (randomized_on or date(2024, 3, 8)) - timedelta(days=7)
        with on(screened_on):
            patient = services.register_patient(nurse, sites[site], trial_id, "male")
            services.record_screening(nurse, patient, screening(screened_on, **changes))
        if randomized_on is not None:
            with on(randomized_on):
                services.randomize(investigator, patient)


@pytest.fixture
def trial(people: Staff, sites: dict[str, Site]) -> Staff:
    with on(date(2023, 1, 2)):
        listing = generate_block_list(
            seed=515, n_per_stratum=24, strata=protocol_strata(default_protocol())
        )
        services.load_randomization_list(people["statistician"], sites["Lund"], "main", listing)
    enrol(people, sites, PATIENTS)
    return people


class Tables(HTMLParser):
    """Every table of a page by id: its rows as lists of cell texts (th and td)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("id") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._table is not None and self._cell is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def page(user: User) -> tuple[str, dict[str, list[list[str]]]]:
    client = Client()
    client.force_login(user)
    with on(AS_OF):
        response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    return html, Tables(html).tables


def body(table: list[list[str]]) -> list[list[str]]:
    return table[1:]


def test_monitor_sees_every_site_with_exact_counts(trial: Staff) -> None:
    _html, tables = page(trial["monitor"])
    assert body(tables["funnel"]) == [
        # site, screened, eligible, not eligible, undecided, randomized
        ["Gothenburg", "1", "1", "0", "0", "1"],
        ["Lund", "7", "4", "2", "1", "3"],
        ["Stockholm", "0", "0", "0", "0", "0"],
        ["Uppsala", "2", "1", "1", "0", "1"],
        ["All sites", "10", "6", "3", "1", "5"],
    ]
    assert body(tables["strata-table"]) == [
        ["Gothenburg · FDG-PET negative", "0"],
        ["Gothenburg · FDG-PET positive", "1"],
        ["Lund · FDG-PET negative", "1"],
        ["Lund · FDG-PET positive", "2"],
        ["Stockholm · FDG-PET negative", "0"],
        ["Stockholm · FDG-PET positive", "0"],
        ["Uppsala · FDG-PET negative", "1"],
        ["Uppsala · FDG-PET positive", "0"],
    ]


def test_screen_failures_count_each_failing_criterion(trial: Staff) -> None:
    html, tables = page(trial["monitor"])
    # L4 fails two criteria and counts under both; 3 patients, 4 reasons
    assert body(tables["failures"]) == [
        ["Earlier PRRT (exclusion)", "2"],
        ["ECOG (inclusion: ≤ 1)", "1"],
        ["GFR (inclusion: > 50)", "1"],
    ]
    assert "3 patients not eligible" in html
    assert "the reasons add up to 4" in html


def test_accrual_against_the_plan_worked_by_hand(trial: Staff) -> None:
    """Planned by 2024-11-01 (day 731 of 1461): 300 x 731 / 1461 = 150.10; a site 37.53.
    Randomized 5 of 150.10 = 3.3 %; mean rate 5 / 731 days x 30.4375 = 0.21 a month; 295 left
    at 5 / 731 a day take 295 x 731 / 5 = 43129 days. Lund: 3 of 37.53 = 8.0 %, 0.12 a month,
    72 x 731 / 3 = 17544 days."""
    _, tables = page(trial["monitor"])
    status = {row[0]: row[1:] for row in body(tables["accrual-status"])}
    assert status["All sites"] == [
        "5",
        "150",
        "300",
        "3",
        "0.2",
        (AS_OF + timedelta(days=43129)).isoformat(),
    ]
    assert status["Lund"] == [
        "3",
        "38",
        "75",
        "8",
        "0.1",
        (AS_OF + timedelta(days=17544)).isoformat(),
    ]
    assert status["Stockholm"] == ["0", "38", "75", "0", "—", "—"]
    # ticks every 6 months up to the day read: plan 300 x days / 1461 (a site 75 x days / 1461)
    assert body(tables["accrual-over-time"]) == [
        # date, planned, randomized
        ["2022-11-01", "0", "0"],
        ["2023-05-01", "37", "2"],  # 181 days: 37.17
        ["2023-11-01", "75", "4"],  # 365 days: 74.95
        ["2024-05-01", "112", "5"],  # 547 days: 112.32
        ["2024-11-01", "150", "5"],
    ]
    assert body(tables["sites-over-time"]) == [
        # date, planned per site, Gothenburg, Lund, Stockholm, Uppsala
        ["2022-11-01", "0", "0", "0", "0", "0"],
        ["2023-05-01", "9", "0", "1", "0", "1"],  # 9.29
        ["2023-11-01", "19", "1", "2", "0", "1"],  # 18.74
        ["2024-05-01", "28", "1", "3", "0", "1"],  # 28.08
        ["2024-11-01", "38", "1", "3", "0", "1"],  # 37.53
    ]


def test_a_site_user_sees_their_site_only(trial: Staff) -> None:
    html, tables = page(trial["investigator"])
    assert body(tables["funnel"]) == [["Lund", "7", "4", "2", "1", "3"]]
    assert body(tables["strata-table"]) == [
        ["Lund · FDG-PET negative", "1"],
        ["Lund · FDG-PET positive", "2"],
    ]
    assert body(tables["failures"]) == [
        ["Earlier PRRT (exclusion)", "2"],
        ["GFR (inclusion: > 50)", "1"],
    ]
    assert [row[:4] for row in body(tables["accrual-status"])] == [["Lund", "3", "38", "75"]]
    assert body(tables["accrual-over-time"])[-1] == ["2024-11-01", "38", "3"]
    assert "sites-over-time" not in tables
    for other in ("Uppsala", "Gothenburg", "Stockholm", "All sites"):
        assert other not in html


ARM_WORDS = re.compile(r"\b(standard|personali[sz]ed|d?TOC|CAP-dTOC|arm [A-B])\b", re.IGNORECASE)


@pytest.mark.parametrize(
    "role", ["nurse", "investigator", "uppsala", "pharmacist", "monitor", "admin", "statistician"]
)
def test_no_role_sees_an_arm(trial: Staff, role: str) -> None:
    """Randomizations per stratum are counts only, for every role; no arm name appears."""
    html, tables = page(trial[role])
    text = re.sub(r"<[^>]+>", " ", html)
    assert ARM_WORDS.search(text) is None, ARM_WORDS.search(text)
    assert all(len(row) == 2 for row in tables["strata-table"])


def test_refusals(trial: Staff) -> None:
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    client = Client()
    client.force_login(trial["nobody"])
    assert client.get(URL).status_code == 403
    client.force_login(trial["monitor"])
    assert client.post(URL).status_code == 405


def queries(user: User) -> int:
    client = Client()
    client.force_login(user)
    with on(AS_OF), CaptureQueriesContext(connection) as captured:
        assert client.get(URL).status_code == 200
    return len(captured)


def test_queries_do_not_grow_with_patients(trial: Staff, sites: dict[str, Site]) -> None:
    before = queries(trial["monitor"])
    more = [
        (
            "Lund",
            f"S01-LUN-{n:03d}",
            {"fdg_pet_positive": n % 2 == 0, "prior_prrt": n % 3 == 0},
            date(2024, 2, n),
        )
        for n in range(10, 25)
    ]
    enrol(trial, sites, [(s, t, c, None if c["prior_prrt"] else d) for s, t, c, d in more])
    assert queries(trial["monitor"]) == before
    assert before <= 12


def test_without_a_plan_the_page_says_so(trial: Staff, monkeypatch: pytest.MonkeyPatch) -> None:
    from startrt.web.pages import enrolment_views

    protocol = default_protocol().model_copy(update={"accrual": None})
    monkeypatch.setattr(enrolment_views, "current_protocol", lambda: protocol)
    html, tables = page(trial["monitor"])
    assert "states no accrual plan" in html
    assert "accrual-status" not in tables
    assert body(tables["funnel"])[-1] == ["All sites", "10", "6", "3", "1", "5"]
