"""Serious adverse event reporting (web/safety): the 24-hour clock, follow-ups, the SUSAR
decision, the safety desk's e-mail, roles, the audit trail, refusals, the listing and the
worklists, on the configured database (SQLite by default; PostgreSQL with STARTRT_DATABASE_URL).

Times by hand: the site (Lund) is in Europe/Stockholm, CET (UTC+1) in March 2026."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.test import Client

from startrt.protocol.definition import default_protocol
from startrt.validation import InvalidInputError
from startrt.web.events import services as events
from startrt.web.events.models import AdverseEvent
from startrt.web.exports.csv_export import export_csv
from startrt.web.exports.odm_export import export_odm
from startrt.web.pages.worklist import worklists
from startrt.web.safety import services as safety
from startrt.web.safety.models import SaeReport, SeriousAdverseEvent
from startrt.web.trial.models import AuditEntry, Decision, Patient
from web.conftest import Randomized
from web.test_events import adverse_event

Staff = dict[str, User]
AWARE = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)  # 09:30 CET at Lund
ON_TIME = AWARE + timedelta(hours=23, minutes=59)
LATE = AWARE + timedelta(hours=26, minutes=30)  # 2.5 h late: 3 started hours


@pytest.fixture
def clock() -> Iterator[time_machine.Coordinates]:
    with time_machine.travel(AWARE - timedelta(days=1), tick=False) as traveller:
        yield traveller


Commit = Callable[..., Any]


@pytest.fixture
def serious(clock: time_machine.Coordinates, staff: Staff, randomized: Randomized) -> AdverseEvent:
    """A grade 3 febrile neutropenia with hospitalisation of a standard-arm patient, started
    the day before the site learnt of it; PRRT possibly related (unexpected: not in the RSI)."""
    patient = randomized(False)
    data = adverse_event(
        term="Febrile neutropenia",
        ctcae_grade=3,
        onset_date="2026-03-01",
        resolved_date=None,
        serious=True,
        seriousness_criteria=["hospitalisation"],
        attribution_prrt="possible",
        outcome="recovering",
    )
    return events.report_adverse_event(staff["nurse"], patient, data)


def _open(
    staff: Staff, event: AdverseEvent, clock: time_machine.Coordinates
) -> SeriousAdverseEvent:
    clock.move_to(AWARE + timedelta(minutes=5))
    return safety.open_case(staff["nurse"], event, AWARE)


def test_open_case_sets_the_deadline_24_hours_after_awareness_audited(
    staff: Staff, serious: AdverseEvent, clock: time_machine.Coordinates
) -> None:
    case = _open(staff, serious, clock)
    assert case.initial_report_due_at == datetime(2026, 3, 3, 8, 30, tzinfo=UTC)
    assert case.protocol == "START-01 v1.0"
    entry = AuditEntry.objects.get(table="safety_seriousadverseevent", row_id=str(case.pk))
    assert (entry.action, entry.username) == ("insert", "nurse.lund")


def test_refusals_when_opening(
    staff: Staff, serious: AdverseEvent, clock: time_machine.Coordinates, randomized: Randomized
) -> None:
    clock.move_to(AWARE)
    for user in ("uppsala", "monitor", "statistician"):
        with pytest.raises(PermissionDenied):
            safety.open_case(staff[user], serious, AWARE)
    with pytest.raises(InvalidInputError, match="future") as refused:
        safety.open_case(staff["nurse"], serious, AWARE + timedelta(minutes=1))
    assert refused.value.field == "aware_at"
    # 22:59 UTC on 28 Feb is 23:59 CET, the day before the onset (1 March)
    with pytest.raises(InvalidInputError, match="onset date 2026-03-01"):
        safety.open_case(staff["nurse"], serious, datetime(2026, 2, 28, 22, 59, tzinfo=UTC))
    with pytest.raises(InvalidInputError, match="time zone"):
        safety.open_case(staff["nurse"], serious, datetime(2026, 3, 2, 8, 0))
    mild = events.report_adverse_event(staff["nurse"], serious.patient, adverse_event())
    with pytest.raises(InvalidInputError, match="only a serious adverse event") as refused:
        safety.open_case(staff["nurse"], mild, AWARE)
    assert refused.value.field == "serious"
    safety.open_case(staff["investigator"], serious, AWARE)
    with pytest.raises(InvalidInputError, match="has an SAE case already"):
        safety.open_case(staff["nurse"], serious, AWARE)
    assert SeriousAdverseEvent.objects.count() == 1


def test_initial_report_inside_24_hours_is_on_time_and_mailed(
    staff: Staff,
    serious: AdverseEvent,
    clock: time_machine.Coordinates,
    django_capture_on_commit_callbacks: Commit,
) -> None:
    case = _open(staff, serious, clock)
    clock.move_to(ON_TIME)
    with django_capture_on_commit_callbacks(execute=True):
        report = safety.submit_initial_report(staff["investigator"], case, "Admitted with fever.")
    report.refresh_from_db()
    assert (report.number, report.due_at, report.submitted_at) == (
        0,
        case.initial_report_due_at,
        ON_TIME,
    )
    assert report.notified_at == ON_TIME
    assert report.notified_to == ["safety-desk@localhost"]
    assert report.susar is True  # possible (suspected) and not in the Lutathera list
    (message,) = mail.outbox
    assert message.to == ["safety-desk@localhost"]
    trial_id = case.patient.trial_id
    assert message.subject == (
        f"[START-01 SAE] SUSAR flagged: Initial report, {trial_id} (Lund): "
        "Febrile neutropenia, CTCAE grade 3"
    )
    for line in (
        "Trial: START-01 (NCT05387603, EudraCT 2021-002218-15), START-01 v1.0",
        f"Patient (trial ID): {trial_id}",
        "Site: Lund",
        "Seriousness criteria: Requires or prolongs hospitalisation",
        "Causality (investigator): PRRT (177Lu-DOTATOC): Possible;"
        " Capecitabine: Not applicable (not given in this arm)",
        "Site aware at: 2026-03-02 09:30 CET",
        "Report due at: 2026-03-03 09:30 CET",
        "Submitted at: 2026-03-03 09:29 CET by investigator.lund",
        "Timeliness: On time",
        "SUSAR: Yes (START-01 v1.0)",
        "  PRRT (177Lu-DOTATOC): suspected, unexpected",
        "  Capecitabine: not suspected, unexpected",
        # other SUSAR: 15 calendar days from day 0 (3 March)
        "  Expedited report (SUSAR, not fatal or life-threatening) due by 2026-03-18"
        " (day 0: 2026-03-03)",
        "Admitted with fever.",
        f"Case page: /patients/{trial_id}/safety/{case.pk}/",
    ):
        assert line in message.body.splitlines(), line
    assert "standard" not in message.body.lower()  # no allocation in the mail
    decision = report.susar_decision
    assert (decision.kind, decision.protocol, decision.patient_id) == (
        "susar_assessment",
        "START-01 v1.0",
        case.patient_id,
    )
    assert decision.record["inputs"]["attributions"] == {
        "prrt": "possible",
        "capecitabine": "not_applicable",
    }
    steps = AuditEntry.objects.filter(table="safety_saereport", row_id=str(report.pk)).order_by(
        "pk"
    )
    assert [(e.action, e.reason) for e in steps] == [
        ("insert", ""),
        ("update", "notification sent to the safety desk: safety-desk@localhost"),
    ]


def test_initial_report_after_24_hours_is_late_by_started_hours(
    staff: Staff,
    serious: AdverseEvent,
    clock: time_machine.Coordinates,
    django_capture_on_commit_callbacks: Commit,
) -> None:
    case = _open(staff, serious, clock)
    clock.move_to(AWARE + timedelta(hours=25))
    overdue = safety.case_status(SeriousAdverseEvent.objects.get(pk=case.pk))
    assert overdue.overdue
    assert overdue.initial.hours_late == 1
    assert overdue.status == "Initial report overdue"
    clock.move_to(LATE)
    with django_capture_on_commit_callbacks(execute=True):
        safety.submit_initial_report(staff["nurse"], case, "Reported late: weekend.")
    assert "Timeliness: Late by 3 h" in mail.outbox[0].body.splitlines()
    state = safety.case_status(SeriousAdverseEvent.objects.get(pk=case.pk))
    assert (state.initial.on_time, state.initial.hours_late, state.overdue) == (False, 3, False)
    # the next follow-up: 7 days after this report, the outcome (recovering) not final
    assert state.next_follow_up is not None
    assert state.next_follow_up.due_at == LATE + timedelta(days=7)


def test_follow_ups_are_numbered_carry_corrections_and_decide_again(
    staff: Staff,
    serious: AdverseEvent,
    clock: time_machine.Coordinates,
    django_capture_on_commit_callbacks: Commit,
) -> None:
    case = _open(staff, serious, clock)
    with pytest.raises(InvalidInputError, match="needs the initial report"):
        safety.submit_follow_up(staff["nurse"], case, "Too early.")
    clock.move_to(ON_TIME)
    safety.submit_initial_report(staff["nurse"], case, "Initial.")
    with pytest.raises(InvalidInputError, match="submitted already"):
        safety.submit_initial_report(staff["nurse"], case, "Twice.")
    event = AdverseEvent.objects.get(pk=serious.pk)
    corrected = {**adverse_event(), **_record(event), "attribution_prrt": "unlikely"}
    corrected.update(outcome="recovered", resolved_date="2026-03-05")
    clock.move_to(datetime(2026, 3, 6, 10, 0, tzinfo=UTC))
    events.change_adverse_event(
        staff["investigator"], event, corrected, reason="cultures: infection", expected_version=1
    )
    with django_capture_on_commit_callbacks(execute=True):
        follow_up = safety.submit_follow_up(staff["investigator"], case, "Recovered; unrelated.")
    assert follow_up.number == 1
    assert follow_up.due_at == ON_TIME + timedelta(days=7)  # 7 days after the initial report
    assert (follow_up.attribution_prrt, follow_up.outcome, follow_up.susar) == (
        "unlikely",
        "recovered",
        False,
    )
    assert Decision.objects.filter(kind="susar_assessment").count() == 2
    assert mail.outbox[-1].subject.startswith("[START-01 SAE] Follow-up report 1, ")
    assert "Timeliness: On time" in mail.outbox[-1].body
    state = safety.case_status(SeriousAdverseEvent.objects.get(pk=case.pk))
    assert state.next_follow_up is None
    assert state.status == "Outcome final: no follow-up due"


def _record(event: AdverseEvent) -> dict[str, Any]:
    return {
        "term": event.term,
        "ctcae_grade": event.ctcae_grade,
        "onset_date": event.onset_date.isoformat(),
        "serious": event.serious,
        "seriousness_criteria": event.seriousness_criteria,
        "attribution_prrt": event.attribution_prrt,
        "attribution_capecitabine": event.attribution_capecitabine,
        "outcome": event.outcome,
    }


def test_blank_narrative_and_other_sites_are_refused(
    staff: Staff, serious: AdverseEvent, clock: time_machine.Coordinates
) -> None:
    case = _open(staff, serious, clock)
    with pytest.raises(InvalidInputError) as refused:
        safety.submit_initial_report(staff["nurse"], case, "   ")
    assert refused.value.field == "narrative"
    for user in ("uppsala", "monitor"):
        with pytest.raises(PermissionDenied):
            safety.submit_initial_report(staff[user], case, "Not mine.")
    assert not SaeReport.objects.exists()


def test_correcting_awareness_moves_the_deadline_with_a_reason(
    staff: Staff, serious: AdverseEvent, clock: time_machine.Coordinates
) -> None:
    case = _open(staff, serious, clock)
    earlier = AWARE - timedelta(hours=2)
    with pytest.raises(InvalidInputError) as refused:
        safety.correct_awareness(staff["nurse"], case, earlier, reason=" ", expected_version=1)
    assert refused.value.field == "reason"
    case = safety.correct_awareness(
        staff["nurse"], case, earlier, reason="the ward's note was earlier", expected_version=1
    )
    assert case.initial_report_due_at == datetime(2026, 3, 3, 6, 30, tzinfo=UTC)
    assert case.version == 2
    # the initial report, submitted 23 h 59 min after the first awareness time, is now late
    clock.move_to(ON_TIME)
    report = safety.submit_initial_report(staff["nurse"], case, "Initial.")
    safety.correct_awareness(
        staff["nurse"],
        case,
        earlier - timedelta(hours=1),
        reason="earlier still",
        expected_version=2,
    )
    report.refresh_from_db()
    assert report.due_at == datetime(2026, 3, 3, 5, 30, tzinfo=UTC)
    state = safety.case_status(SeriousAdverseEvent.objects.get(pk=case.pk))
    assert (state.initial.on_time, state.initial.hours_late) == (False, 3)  # 2 h 59 min late
    reasons = AuditEntry.objects.filter(table="safety_seriousadverseevent", action="update")
    assert [e.reason for e in reasons.order_by("pk")] == [
        "the ward's note was earlier",
        "earlier still",
    ]
    moved = AuditEntry.objects.get(
        table="safety_saereport", action="update", reason="earlier still"
    )
    assert moved.username == "nurse.lund"


def test_file_backend_writes_the_notification(
    staff: Staff,
    serious: AdverseEvent,
    clock: time_machine.Coordinates,
    django_capture_on_commit_callbacks: Commit,
    settings: Any,
    tmp_path: Path,
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path / "mail"
    case = _open(staff, serious, clock)
    clock.move_to(ON_TIME)
    with django_capture_on_commit_callbacks(execute=True):
        safety.submit_initial_report(staff["nurse"], case, "Written to a file.")
    (written,) = (tmp_path / "mail").iterdir()
    text = written.read_text()
    assert "To: safety-desk@localhost" in text
    assert "Timeliness: On time" in text
    assert "Written to a file." in text


def test_a_failed_notification_is_recorded_and_sent_again(
    staff: Staff,
    serious: AdverseEvent,
    clock: time_machine.Coordinates,
    django_capture_on_commit_callbacks: Commit,
    settings: Any,
) -> None:
    settings.STARTRT_SAFETY_DESK_EMAIL = []
    case = _open(staff, serious, clock)
    clock.move_to(ON_TIME)
    with django_capture_on_commit_callbacks(execute=True):
        report = safety.submit_initial_report(staff["nurse"], case, "No address yet.")
    report.refresh_from_db()
    assert report.notified_at is None
    assert "STARTRT_SAFETY_DESK_EMAIL" in report.notification_error
    settings.STARTRT_SAFETY_DESK_EMAIL = ["pv@sponsor.example"]
    report = safety.notify(staff["investigator"], report.pk)
    assert report.notified_to == ["pv@sponsor.example"]
    assert report.notification_error == ""
    assert mail.outbox[0].to == ["pv@sponsor.example"]
    with pytest.raises(PermissionDenied):
        safety.notify(staff["monitor"], report.pk)


def test_overdue_initial_report_is_on_the_worklists_and_the_overview_once(
    staff: Staff, serious: AdverseEvent, clock: time_machine.Coordinates
) -> None:
    case = _open(staff, serious, clock)
    clock.move_to(AWARE + timedelta(hours=30))
    task = "Submit the initial SAE report of Febrile neutropenia (overdue by 6 h)"
    for user in ("nurse", "investigator"):
        items = [item for worklist in worklists(staff[user]) for item in worklist.items]
        assert [i.task for i in items if "SAE" in i.task] == [task]
        # 6 hours late: one started day overdue, at the head of the list
        assert [(i.days_overdue, i.scheduled) for i in items if "SAE" in i.task] == [(1, True)]
    overview = worklists(staff["monitor"])[-1]
    assert [i.task for i in overview.items if "SAE" in i.task] == [task]
    assert worklists(staff["uppsala"])[0].items == ()
    assert overview.items[0].url == f"/patients/{case.patient.trial_id}/safety/{case.pk}/"


def test_pending_report_before_its_deadline_is_a_task_not_overdue(
    staff: Staff, serious: AdverseEvent, clock: time_machine.Coordinates
) -> None:
    _open(staff, serious, clock)
    (nurse,) = worklists(staff["nurse"])
    (item,) = [i for i in nurse.items if "SAE" in i.task]
    assert (
        item.task
        == "Submit the initial SAE report of Febrile neutropenia (due 2026-03-03 09:30 CET)"
    )
    assert item.days_overdue == 0


def _client(user: User) -> Client:
    """A client signed in now (sessions last 8 h: sign in again after moving the clock)."""
    client = Client()
    client.force_login(user)
    return client


def test_pages_listing_case_and_refusals(
    staff: Staff,
    serious: AdverseEvent,
    clock: time_machine.Coordinates,
    django_capture_on_commit_callbacks: Commit,
) -> None:
    patient: Patient = serious.patient
    clock.move_to(AWARE + timedelta(minutes=10))
    nurse, monitor = _client(staff["nurse"]), _client(staff["monitor"])
    listing = monitor.get("/safety/").content.decode()
    assert "Febrile neutropenia" in listing
    assert "the site reports it" in listing
    open_url = f"/patients/{patient.trial_id}/safety/events/{serious.pk}/"
    statistician = _client(staff["statistician"])
    assert statistician.post(open_url, {"aware_at": "2026-03-02 09:30"}).status_code == 403
    assert _client(staff["uppsala"]).get(open_url).status_code == 404
    refused = nurse.post(open_url, {"aware_at": "2026-03-02 12:00"})  # 11:00 UTC: the future
    assert refused.status_code == 422
    assert "must not lie in the future" in refused.content.decode()
    response = nurse.post(open_url, {"aware_at": "2026-03-02 09:30"})  # CET: the site's zone
    case = SeriousAdverseEvent.objects.get()
    assert case.aware_at == AWARE
    assert response.status_code == 302
    case_url = f"/patients/{patient.trial_id}/safety/{case.pk}/"
    assert response["Location"] == case_url
    clock.move_to(LATE)
    nurse, monitor, uppsala = (_client(staff[u]) for u in ("nurse", "monitor", "uppsala"))
    with django_capture_on_commit_callbacks(execute=True):
        posted = nurse.post(f"{case_url}reports/", {"narrative": "Late."})
    assert posted.status_code == 302
    page = nurse.get(posted["Location"]).content.decode()
    assert "submitted late by 3 h" in page
    assert "safety-desk@localhost" in page
    listing = monitor.get("/safety/").content.decode()
    assert "late by 3 h" in listing
    assert "SUSAR" in listing
    assert "2026-03-02 09:30 CET" in listing
    assert uppsala.get(case_url).status_code == 404
    assert "Febrile neutropenia" not in uppsala.get("/safety/").content.decode()
    assert monitor.post(f"{case_url}reports/", {"narrative": "x"}).status_code == 403


def test_serious_event_without_a_case_is_on_the_site_worklists(
    staff: Staff, serious: AdverseEvent
) -> None:
    task = "Report the serious adverse event Febrile neutropenia as an SAE"
    for user in ("nurse", "investigator"):
        items = [item for worklist in worklists(staff[user]) for item in worklist.items]
        assert [i.task for i in items if "SAE" in i.task] == [task]
    assert worklists(staff["uppsala"])[0].items == ()


def test_an_smtp_server_that_refuses_is_recorded_not_raised(
    staff: Staff,
    serious: AdverseEvent,
    clock: time_machine.Coordinates,
    django_capture_on_commit_callbacks: Commit,
    settings: Any,
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    case = _open(staff, serious, clock)
    clock.move_to(ON_TIME)
    with django_capture_on_commit_callbacks(execute=True):
        report = safety.submit_initial_report(staff["nurse"], case, "The server is down.")
    report.refresh_from_db()
    assert report.notified_at is None
    assert report.notification_error.startswith("ConnectionRefusedError: ")
    entry = AuditEntry.objects.filter(table="safety_saereport").latest("pk")
    assert entry.reason.startswith("notification to the safety desk failed: ConnectionRefused")


def test_a_protocol_version_without_safety_reporting_refuses_sae_reports(
    staff: Staff,
    serious: AdverseEvent,
    clock: time_machine.Coordinates,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without = default_protocol().model_copy(update={"safety_reporting": None})
    monkeypatch.setattr(safety, "current_protocol", lambda: without)
    clock.move_to(AWARE)
    with pytest.raises(InvalidInputError, match=r"no \[safety_reporting\] section") as refused:
        safety.open_case(staff["nurse"], serious, AWARE)
    assert refused.value.field == "protocol"
    assert not SeriousAdverseEvent.objects.exists()


def test_sae_cases_and_reports_are_in_the_csv_export(
    staff: Staff, serious: AdverseEvent, clock: time_machine.Coordinates, tmp_path: Path
) -> None:
    case = _open(staff, serious, clock)
    clock.move_to(ON_TIME)
    safety.submit_initial_report(staff["investigator"], case, "Admitted with fever.")
    files = {path.name: path for path in export_csv(staff["statistician"], tmp_path)}
    with files["safety_seriousadverseevent.csv"].open() as handle:
        (case_row,) = csv.DictReader(handle)
    with files["safety_saereport.csv"].open() as handle:
        (report_row,) = csv.DictReader(handle)
    trial_id = case.patient.trial_id
    assert (case_row["trial_id"], case_row["id"]) == (trial_id, str(case.pk))
    assert case_row["initial_report_due_at"].startswith("2026-03-03T08:30")
    assert (report_row["trial_id"], report_row["case_id"], report_row["number"]) == (
        trial_id,
        str(case.pk),
        "0",
    )
    odm = export_odm(staff["statistician"]).decode()
    assert 'ItemGroupOID="IG.SAFETY.SAEREPORT"' in odm
    assert 'ItemGroupOID="IG.SAFETY.SERIOUSADVERSEEVENT"' in odm
