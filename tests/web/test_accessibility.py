"""Accessibility (issue 14, item 12): axe-core, from the axe-playwright-python wheel (its bundled
axe.min.js, nothing from a CDN), checks each page type in headless Debian Chromium against WCAG
2.0 A and AA and WCAG 2.1 AA, signed in as the role that works there, on a trial with a treated
cycle, dosimetry, a capecitabine prescription and an adverse event. No violation of impact
"serious" or "critical" is allowed; the failure lists each one's rule, impact, elements and help."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.test import RequestFactory
from django.views.defaults import server_error
from playwright.sync_api import Page, Route, expect

from startrt.web.events import services as events
from startrt.web.treatment import capecitabine, services
from startrt.web.treatment.models import StudyJob
from startrt.web.trial import services as trial
from startrt.web.trial.models import Role
from web.conftest import make_user
from web.test_api_docs_offline import refuse_other_hosts
from web.test_browser import Screenshots, chromium_page, sign_in, sign_out
from web.test_capecitabine import BODY
from web.test_events import adverse_event
from web.test_treatment import Sites, Staff, give, planned_cycle, randomized

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21aa"]
BLOCKING_IMPACTS = {"serious", "critical"}
SHOWN_TARGETS = 3  # elements named per violation; the count of the rest follows
SERVER_ERROR_URL = "/__server-error__/"  # answered in the browser with the rendered 500 page


@dataclass(frozen=True)
class Violation:
    page: str
    rule: str
    impact: str
    targets: tuple[str, ...]
    help: str
    failure: str  # axe-core's summary for the first element (for contrast: the colours)

    def __str__(self) -> str:
        shown = ", ".join(self.targets[:SHOWN_TARGETS])
        more = len(self.targets) - SHOWN_TARGETS
        where = f"{shown} and {more} more" if more > 0 else shown
        failure = " ".join(self.failure.split())
        return f"{self.page}: {self.rule} ({self.impact}) at {where}: {self.help}. {failure}"


def axe_violations(page: Page, name: str) -> list[Violation]:
    """axe-core's violations of the WCAG tags on the page as loaded."""
    options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
    response = Axe().run(page, options=options).response
    return [
        Violation(
            page=name,
            rule=found["id"],
            impact=found["impact"] or "",
            targets=tuple(" ".join(map(str, node["target"])) for node in found["nodes"]),
            help=found["help"],
            failure=found["nodes"][0].get("failureSummary", ""),
        )
        for found in response["violations"]
    ]


class CheckedScreenshots(Screenshots):
    """Screenshots that also run axe-core on each page shown and keep its violations."""

    def __init__(self, page: Page, folder: Path) -> None:
        super().__init__(page, folder)
        self.violations: list[Violation] = []

    def __call__(self, name: str) -> None:
        super().__call__(name)
        self.violations.extend(axe_violations(self.page, name))

    def blocking(self) -> list[str]:
        """The serious and critical violations, as text."""
        return [str(v) for v in self.violations if v.impact in BLOCKING_IMPACTS]


def trial_with_a_treated_cycle(team: Staff, sites: Sites) -> tuple[int, int]:
    """S01-LUN-001 (dTOC): cycle 1 given with dosimetry and a study upload that failed, cycle 2
    planned, an adverse event; S01-LUN-002 (CAP-dTOC): cycle 1 planned with capecitabine
    prescribed; S01-LUN-003 registered, not screened. Returns the ids of the adverse event and
    of the study job."""
    dtoc = randomized(team, sites, 1)
    first = give(team, planned_cycle(team, dtoc), 7.4)
    services.record_dosimetry(
        team["physicist"], first, left_kidney_dose_gy=4.1, right_kidney_dose_gy=5.2
    )
    job = StudyJob.objects.create(
        patient=dtoc,
        cycle=first,
        submitted_by=team["physicist"],
        upload_name="study.zip",
        state=StudyJob.State.FAILED,
        error_field="study",
        error_value="study.zip",
        error_rule="must be a zip archive of DICOM files",
    )
    planned_cycle(team, dtoc)
    event = events.report_adverse_event(team["nurse"], dtoc, adverse_event())
    cap = randomized(team, sites, 2, fdg_positive=True)
    capecitabine.prescribe_capecitabine(team["pharmacist"], planned_cycle(team, cap), **BODY)
    trial.register_patient(team["nurse"], sites["Lund"], "S01-LUN-003", "female")
    return event.pk, job.pk


def test_every_page_type_has_no_serious_or_critical_violation(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    event_id, job_id = trial_with_a_treated_cycle(team, sites)
    investigator_key = team["investigator"].otp_device.bin_key  # type: ignore[attr-defined]
    admin_key = make_user("admin", Role.ADMINISTRATOR, None).otp_device.bin_key  # type: ignore[attr-defined]
    nurse_id = team["nurse"].pk
    server_error_html = server_error(RequestFactory().get("/")).content
    base_url = live_server.url
    found: list[Violation] = []
    checked: list[str] = []
    titles: dict[str, str] = {}

    def answer_with_the_500_page(route: Route) -> None:
        route.fulfill(status=500, content_type="text/html; charset=utf-8", body=server_error_html)

    with chromium_page() as page:
        loaded, refused = refuse_other_hosts(page, base_url)
        page.route(f"{base_url}{SERVER_ERROR_URL}", answer_with_the_500_page)
        screenshot = Screenshots(page, tmp_path)

        def check(name: str, path: str | None = None) -> None:
            if path is not None:
                page.goto(f"{base_url}{path}")
            page.wait_for_load_state("networkidle")
            found.extend(axe_violations(page, name))
            checked.append(name)
            titles[name] = page.title()
            screenshot(re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_"))

        check("sign-in", "/login/")
        page.fill("input[name=username]", "nobody")
        page.fill("input[name=password]", "not a password")
        page.click("button[type=submit]")
        page.locator(".errorlist").wait_for()
        check("sign-in with errors")
        check("500", SERVER_ERROR_URL)  # rendered without a request: no user in its header

        sign_in(page, base_url, "nurse.lund")
        check("patient list (nurse)", "/")
        page.keyboard.press("Tab")  # the first stop is the skip link; it moves the focus to main
        expect(page.locator(":focus")).to_have_text("Skip to the page's content")
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        check("register", "/patients/register/")
        page.fill("input[name=trial_id]", "LUND 1")
        page.click("main button[type=submit]")
        trial_id = page.locator("#id_trial_id")  # the error is tied to its field
        expect(trial_id).to_have_attribute("aria-invalid", "true")
        expect(trial_id).to_have_attribute("aria-describedby", re.compile(r"\bid_trial_id_error\b"))
        expect(page.locator("#id_trial_id_error")).to_contain_text("S01-<site code>-<3 digits>")
        check("register with errors")
        check("patient to screen", "/patients/S01-LUN-003/")
        check("randomized patient", "/patients/S01-LUN-001/")
        check("events", "/patients/S01-LUN-001/events/")
        check("correction", f"/patients/S01-LUN-001/events/adverse-event/{event_id}/")
        check("concomitant medications", "/patients/S01-LUN-001/medications/")
        check("treatment (nurse)", "/patients/S01-LUN-001/treatment/")
        check("adverse-event form", "/patients/S01-LUN-001/treatment/?report=adverse-event")
        check("cycle 2 (nurse)", "/patients/S01-LUN-001/treatment/cycles/2/")
        check("password change", "/account/password/")
        check("two-factor enrolment", "/account/two-factor/")
        check("403", "/patients/S01-LUN-001/audit.csv")
        check("404", "/patients/S01-NOT-000/")
        sign_out(page)

        sign_in(page, base_url, "physicist.lund")
        check("treatment (physicist)", "/patients/S01-LUN-001/treatment/")
        check("cycle 1 (physicist)", "/patients/S01-LUN-001/treatment/cycles/1/")
        check("cycle 2 (physicist)", "/patients/S01-LUN-001/treatment/cycles/2/")
        check("study upload failed", f"/patients/S01-LUN-001/treatment/study-jobs/{job_id}/")
        sign_out(page)

        sign_in(page, base_url, "investigator.lund", investigator_key)
        check("treatment (investigator)", "/patients/S01-LUN-001/treatment/")
        check("audit trail", "/patients/S01-LUN-001/audit/")
        check("lab reference ranges", "/sites/LUN/lab-ranges/")
        check("two-factor enrolled", "/account/two-factor/")
        sign_out(page)

        sign_in(page, base_url, "pharmacist.lund")
        check("capecitabine", "/patients/S01-LUN-002/treatment/capecitabine/")
        check(
            "capecitabine assessment",
            "/patients/S01-LUN-002/treatment/capecitabine/?cycle=1&weight_kg=78&height_cm=178"
            "&age_years=64&creatinine_umol_l=85",
        )
        sign_out(page)

        sign_in(page, base_url, "monitor")
        check("patient list (monitor)", "/")
        check("missing data (monitor)", "/missing-data/")
        check("enrolment (monitor)", "/enrolment/")
        check("serious adverse events (monitor)", "/safety/")
        check("API docs", "/api/docs")
        page.locator(".opblock-summary-path[data-path='/api/patients']").first.click()
        page.locator(".opblock.is-open .parameters-container").wait_for()
        check("API docs, an operation open")
        page.goto(f"{base_url}/")  # the API docs have no header to sign out from
        sign_out(page)

        sign_in(page, base_url, "admin", admin_key)
        check("users", "/users/")
        check("new user", "/users/new/")
        page.fill("input[name=username]", "nurse.lund")
        page.fill("input[name=first_name]", "Anna")
        page.fill("input[name=last_name]", "Berg")
        page.click("main button[type=submit]")
        page.locator(".errorlist").first.wait_for()
        check("new user with errors")
        check("user page", f"/users/{nurse_id}/")
        check("data lock", "/data-lock/")

    blocking = [violation for violation in found if violation.impact in BLOCKING_IMPACTS]
    print(f"axe-core checked {len(checked)} pages; screenshots in {tmp_path}")
    for violation in found:
        print(violation)
    assert blocking == [], "\n".join(map(str, blocking))
    assert len(checked) == 39
    untitled = [name for name, title in titles.items() if not title.endswith(" · startrt")]
    assert untitled == []
    assert titles["register"] == "Register a patient · startrt"
    assert titles["404"] == "Not found · startrt"
    assert "START-01 · startrt" not in titles.values()  # each page names itself, not the default
    assert refused == []  # every page's assets come from the application (issue 14, item 8)
    assert any(url.endswith("/static/pages/startrt.css") for url in loaded)
    screenshot.check_written()
