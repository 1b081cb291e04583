"""Every page the demo roles can reach reads as text for people: a crawler signs in as each role
on a small simulated trial entered as `make demo` enters it, follows every same-site link from
the home page (GET only) and finds no field name, model id, Python repr or unrounded number in
the visible text (issue 14's first target)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urldefrag, urlsplit

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from startrt.demo.safety import report_saes
from startrt.demo.team import make_team
from startrt.demo.virtual_trial import enter_simulated_trial
from startrt.protocol.definition import default_protocol
from startrt.simulation.parameters import load_parameters
from startrt.simulation.trial import simulate_trial
from startrt.web.trial.models import Site

pytestmark = pytest.mark.slow
PASSWORD = "a demo password"
PATIENTS = 6
MAX_PAGES_PER_ROLE = 400
ROLES = (
    "investigator.lund",
    "nurse.lund",
    "physicist.lund",
    "pharmacist.lund",
    "monitor",
    "datamanager",
    "statistician",
    "admin",
)
SKIPPED = re.compile(r"/logout/|\.csv$|\.xml$|/download|/export|/api/|/static/|/admin/")

OFFENCES = {
    "field name": re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b"),
    "model id": re.compile(r"\b[a-z_]+\.[a-z_]+ #\d+"),
    "Python repr": re.compile(
        r"\{'|\[<|<QuerySet|object at 0x|\bNone\b|\bTrue\b|\bFalse\b|\b[A-Z]\w+\(\w+="
    ),
    "unrounded number": re.compile(r"\d\.\d{4,}"),
}


class _VisibleText(HTMLParser):
    """The text a reader sees: character data outside <script> and <style>, no attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.links: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        if tag == "a":
            self.links.extend(value for name, value in attrs if name == "href" and value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def offences(text: str) -> list[str]:
    """Each offending piece of `text` (once), named by its kind, with the text around it."""
    found: dict[str, str] = {}
    for kind, pattern in OFFENCES.items():
        for match in pattern.finditer(text):
            context = text[max(0, match.start() - 40) : match.end() + 40]
            found.setdefault(f"{kind}: {match.group()!r}", f" in …{context}…")
    return [offence + context for offence, context in found.items()]


def crawl(client: Client) -> tuple[int, dict[str, list[str]]]:
    """Pages visited from "/" (bounded) and the offences found, by page."""
    seen, queue, found = {"/"}, deque(["/"]), {}
    visited = 0
    while queue and visited < MAX_PAGES_PER_ROLE:
        url = queue.popleft()
        response = client.get(url)
        visited += 1
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        parser = _VisibleText()
        parser.feed(response.content.decode())
        text = re.sub(r"\s+", " ", " ".join(parser.parts))
        if problems := offences(text):
            found[url] = problems
        for href in parser.links:
            link = urldefrag(href).url
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or not link.startswith("/") or SKIPPED.search(link):
                continue
            if link not in seen:
                seen.add(link)
                queue.append(link)
    return visited, found


@contextmanager
def _at(moment: datetime) -> Iterator[None]:
    with time_machine.travel(moment, tick=False):
        yield


@pytest.fixture
def demo_trial(db: None) -> None:
    """A demo trial of a few patients: the demo's team and sites, entered as the demo does."""
    protocol = default_protocol()
    for name in protocol.sites:
        Site.objects.create(name=name, code=name[:3].upper())
    parameters = load_parameters()
    trial = parameters.trial.model_copy(
        update={"patients": PATIENTS, "accrual_months": 4.0, "minimum_follow_up_months": 6.0}
    )
    parameters = parameters.model_copy(update={"trial": trial})
    run = simulate_trial(parameters, 7, protocol)
    team = make_team(protocol, PASSWORD)
    enter_simulated_trial(
        run, parameters, protocol, team.sites, team.statistician, PASSWORD, _at, phantom_studies=0
    )
    report_saes(team.sites, _at)


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Left kidney 3.86 Gy · Cycle 2 administration", []),
        ("the site trial_patient changed", ["field name"]),
        ("signed treatment.cycle #22", ["model id"]),
        ("changes {'arm': 'standard'} and None, None", ["Python repr", "Python repr"]),
        ("left kidney 3.861330716659756 Gy", ["unrounded number"]),
    ],
)
def test_the_crawler_finds_each_kind_of_offence(text: str, kinds: list[str]) -> None:
    assert [found.split(":")[0] for found in offences(text)] == kinds


def test_the_visible_text_leaves_out_scripts_styles_and_attributes() -> None:
    parser = _VisibleText()
    parser.feed(
        '<style>.a_b{}</style><p title="trial_id">Trial ID</p><script>var x_y;</script>'
        '<a href="/patients/S01/">S01</a>'
    )
    assert "".join(parser.parts) == "Trial IDS01"
    assert parser.links == ["/patients/S01/"]


def test_no_page_a_demo_role_reaches_shows_field_names_ids_reprs_or_raw_numbers(
    demo_trial: None, client: Client
) -> None:
    report, pages = [], 0
    for username in ROLES:
        user = User.objects.get(username=username)
        user.otp_device = TOTPDevice.objects.filter(user=user).first()  # both factors
        client.force_login(user)
        visited, found = crawl(client)
        pages += visited
        report += [f"{username} {url}\n    " + "\n    ".join(p[:8]) for url, p in found.items()]
        client.logout()
    assert pages > 50
    assert not report, f"{len(report)} offending pages of {pages} crawled:\n" + "\n".join(report)
