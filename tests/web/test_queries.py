"""Data queries: a monitor raises one on a field of a record, the site answers (or corrects the
value through the record's audited correction), the monitor closes and re-opens it; every step
audited; refused for the wrong roles and other sites; never on a randomization slot; open
queries on the site's worklists and in the report by site, patient and age."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from startrt.validation import InvalidInputError
from startrt.web.monitoring import services as monitoring
from startrt.web.monitoring.models import Query
from startrt.web.pages.worklist import worklists
from startrt.web.trial import services as trial
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import AuditEntry, Consent, Role, Site, Slot
from web.conftest import Randomized, make_user
from web.test_page_text import _VisibleText, offences

Staff = dict[str, User]
Sites = dict[str, Site]


@pytest.fixture
def consent(staff: Staff, sites: Sites) -> Consent:
    patient = trial.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    return trial.record_consent(
        staff["nurse"], patient, {"form_version": "1.0", "signed_on": "2025-02-20"}
    )


def _steps(query: Query) -> list[tuple[str, str, str, str]]:
    """(action, who, status after, reason) of each audit entry of the query."""
    return [
        (entry.action, entry.username, (entry.new or {})["status"], entry.reason)
        for entry in AuditEntry.objects.filter(
            table="monitoring_query", row_id=str(query.pk)
        ).order_by("pk")
    ]


def test_a_query_is_raised_answered_closed_reopened_and_closed_again_each_step_audited(
    staff: Staff, consent: Consent
) -> None:
    monitor, nurse = staff["monitor"], staff["nurse"]
    query = monitoring.raise_query(monitor, consent, "signed_on", "Source says 2025-02-19.")
    assert (query.status, query.record_version, query.patient.trial_id) == (
        "open",
        1,
        "S01-LUN-001",
    )
    query = monitoring.answer_query(nurse, query, "Checked: typo.", expected_version=1)
    query = monitoring.close_query(monitor, query, "Accepted.", expected_version=2)
    assert query.closed_by == monitor
    assert query.closed_at is not None
    query = monitoring.reopen_query(monitor, query, "Still wrong.", expected_version=3)
    assert (query.status, query.closed_by, query.closed_at) == ("open", None, None)
    query = monitoring.close_query(monitor, query, "Corrected now.", expected_version=4)
    assert (query.status, query.version, query.answer, query.answered_by) == (
        "closed",
        5,
        "Checked: typo.",
        nurse,
    )
    assert _steps(query) == [
        ("insert", "monitor", "open", ""),
        ("update", "nurse.lund", "answered", "Checked: typo."),
        ("update", "monitor", "closed", "Accepted."),
        ("update", "monitor", "open", "Still wrong."),
        ("update", "monitor", "closed", "Corrected now."),
    ]
    insert = AuditEntry.objects.get(table="monitoring_query", action="insert")
    assert (insert.new["text"], insert.new["field_name"], insert.patient_trial_id) == (
        "Source says 2025-02-19.",
        "signed_on",
        "S01-LUN-001",
    )


def test_steps_out_of_order_or_on_a_stale_version_are_refused(
    staff: Staff, consent: Consent
) -> None:
    monitor, nurse = staff["monitor"], staff["nurse"]
    query = monitoring.raise_query(monitor, consent, "signed_on", "Check the date.")
    with pytest.raises(InvalidInputError) as reopened:
        monitoring.reopen_query(monitor, query, "Again.", expected_version=1)
    assert reopened.value.field == "status"
    monitoring.answer_query(nurse, query, "Fine.", expected_version=1)
    with pytest.raises(InvalidInputError) as twice:
        monitoring.answer_query(nurse, query, "Fine again.", expected_version=2)
    assert twice.value.field == "status"
    with pytest.raises(StaleVersionError):
        monitoring.close_query(monitor, query, "Ok.", expected_version=1)
    with pytest.raises(InvalidInputError) as blank:
        monitoring.close_query(monitor, query, "  ", expected_version=2)
    assert blank.value.field == "note"
    assert Query.objects.get().status == "answered"


def test_wrong_roles_and_other_sites_are_refused(
    staff: Staff, sites: Sites, consent: Consent
) -> None:
    for user in (staff["nurse"], staff["investigator"], staff["statistician"]):
        with pytest.raises(PermissionDenied):
            monitoring.raise_query(user, consent, "signed_on", "A query.")
    admin = make_user("admin", Role.ADMINISTRATOR, None)
    query = monitoring.raise_query(admin, consent, "signed_on", "Raised by an administrator.")
    for user in (staff["uppsala"], staff["monitor"], staff["statistician"]):
        with pytest.raises(PermissionDenied):
            monitoring.answer_query(user, query, "An answer.", expected_version=1)
    for user in (staff["nurse"], staff["uppsala"]):
        with pytest.raises(PermissionDenied):
            monitoring.close_query(user, query, "Closed.", expected_version=1)
    assert AuditEntry.objects.filter(table="monitoring_query").count() == 1
    with pytest.raises(InvalidInputError) as field:
        monitoring.raise_query(admin, consent, "version", "Bookkeeping, not data.")
    assert field.value.field == "field_name"


def test_no_query_on_a_randomization_slot(
    staff: Staff, randomized: Randomized, client: Client
) -> None:
    patient = randomized(False)
    slot = Slot.objects.get(patient=patient)
    with pytest.raises(InvalidInputError) as refused:
        monitoring.raise_query(staff["monitor"], slot, "arm", "Which arm?")
    assert refused.value.field == "record_type"
    client.force_login(staff["monitor"])
    url = f"/patients/{patient.trial_id}/monitoring/trial.slot/{slot.pk}/query/"
    assert client.get(url).status_code == 404
    assert client.post(url, {"field_name": "arm", "text": "Which arm?"}).status_code == 404
    assert not Query.objects.exists()


def test_a_correction_after_raising_shows_on_the_query_page(
    staff: Staff, consent: Consent, client: Client
) -> None:
    query = monitoring.raise_query(staff["monitor"], consent, "signed_on", "Source: 19 Feb.")
    trial.change_consent(
        staff["nurse"],
        consent,
        {"form_version": "1.0", "signed_on": "2025-02-19"},
        reason="Source document says 19 Feb",
        expected_version=1,
    )
    client.force_login(staff["nurse"])
    page = client.get(f"/patients/S01-LUN-001/queries/{query.pk}/").content.decode()
    corrections = page.split('id="corrections"')[1].split("</section>")[0]
    assert "Source document says 19 Feb" in corrections
    assert "2025-02-20 → 2025-02-19" in corrections
    assert "version 1 when raised, version 2 now" in page
    assert '<dd id="current-value">2025-02-19</dd>' in page
    assert f'href="/patients/S01-LUN-001/events/consent/{consent.pk}/"' in page


def test_a_query_is_walked_through_the_pages(
    staff: Staff, consent: Consent, client: Client
) -> None:
    client.force_login(staff["monitor"])
    raise_url = f"/patients/S01-LUN-001/monitoring/trial.consent/{consent.pk}/query/"
    form = client.get(raise_url).content.decode()
    assert '<option value="signed_on">' in form
    assert "signed_on</option>" not in form
    raised = client.post(raise_url, {"field_name": "signed_on", "text": "Check the date."})
    query = Query.objects.get()
    assert (raised.status_code, raised["Location"]) == (
        302,
        f"/patients/S01-LUN-001/queries/{query.pk}/",
    )
    client.force_login(staff["nurse"])
    page = client.get(raised["Location"]).content.decode()
    assert 'name="answer"' in page
    assert 'name="close"' not in page
    answered = client.post(raised["Location"], {"answer": "", "text": "Ok", "expected_version": 1})
    assert answered.status_code == 302
    stale = client.post(raised["Location"], {"answer": "", "text": "Ok", "expected_version": 1})
    assert stale.status_code == 409
    client.force_login(staff["monitor"])
    closed = client.post(raised["Location"], {"close": "", "text": "Fine", "expected_version": 2})
    assert closed.status_code == 302
    assert Query.objects.get().status == "closed"
    client.force_login(staff["uppsala"])
    assert client.get(raised["Location"]).status_code == 404
    assert client.post(raised["Location"], {"reopen": "", "text": "x"}).status_code == 404


def test_open_queries_are_on_the_site_worklists_only(staff: Staff, consent: Consent) -> None:
    query = monitoring.raise_query(staff["monitor"], consent, "signed_on", "Check the date.")
    task = "Answer the data query on Consent: " + monitoring.field_label("signed_on")
    for user in (staff["nurse"], staff["investigator"]):
        tasks = [(i.task, i.url) for w in worklists(user) for i in w.items]
        assert (task, f"/patients/S01-LUN-001/queries/{query.pk}/") in tasks
    assert not any(i.task == task for w in worklists(staff["uppsala"]) for i in w.items)
    monitoring.answer_query(staff["nurse"], query, "Done.", expected_version=1)
    assert not any(i.task == task for w in worklists(staff["nurse"]) for i in w.items)


def test_the_report_filters_by_site_patient_status_and_age(
    staff: Staff, sites: Sites, consent: Consent, client: Client
) -> None:
    monitor = staff["monitor"]
    uppsala = trial.register_patient(staff["uppsala"], sites["Uppsala"], "S01-UPP-001", "female")
    other = trial.record_consent(
        staff["uppsala"], uppsala, {"form_version": "1.0", "signed_on": "2025-02-21"}
    )
    old = monitoring.raise_query(monitor, consent, "signed_on", "Old one.")
    Query.objects.filter(pk=old.pk).update(raised_at=timezone.now() - timedelta(days=10))
    new = monitoring.raise_query(monitor, other, "form_version", "New one.")
    monitoring.answer_query(staff["uppsala"], new, "Fine.", expected_version=1)

    def listed(user: User, query: str = "") -> list[tuple[str, str]]:
        client.force_login(user)
        page = client.get(f"/queries/{query}").content.decode()
        rows = page.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
        return [
            (row.split("</a>")[0].rsplit(">", 1)[-1], row.split("</td>")[5].rsplit(">", 1)[-1])
            for row in rows
            if "No data queries" not in row
        ]

    assert listed(monitor) == [("S01-LUN-001", "10"), ("S01-UPP-001", "0")]
    assert listed(monitor, "?site=UPP") == [("S01-UPP-001", "0")]
    assert listed(monitor, "?patient=lun") == [("S01-LUN-001", "10")]
    assert listed(monitor, "?status=answered") == [("S01-UPP-001", "0")]
    assert listed(monitor, "?min_days_open=7") == [("S01-LUN-001", "10")]
    assert listed(staff["nurse"]) == [("S01-LUN-001", "10")]
    assert listed(staff["uppsala"]) == [("S01-UPP-001", "0")]


def test_the_patient_page_counts_open_queries(
    staff: Staff, consent: Consent, client: Client
) -> None:
    client.force_login(staff["nurse"])
    assert "open data quer" not in client.get("/patients/S01-LUN-001/").content.decode()
    monitoring.raise_query(staff["monitor"], consent, "signed_on", "One.")
    monitoring.raise_query(staff["monitor"], consent, "form_version", "Two.")
    assert "(2 open data queries)" in client.get("/patients/S01-LUN-001/").content.decode()


def test_the_patient_audit_trail_shows_the_steps_for_people(
    staff: Staff, consent: Consent, client: Client
) -> None:
    query = monitoring.raise_query(staff["monitor"], consent, "signed_on", "Check it.")
    monitoring.answer_query(staff["nurse"], query, "Checked.", expected_version=1)
    monitoring.verify(staff["monitor"], consent, expected_version=1)
    client.force_login(staff["nurse"])
    parser = _VisibleText()
    parser.feed(client.get("/patients/S01-LUN-001/audit/").content.decode())
    text = re.sub(r"\s+", " ", " ".join(parser.parts))
    assert offences(text) == []
    assert "Data query Entered" in text
    assert "Field name: Signed on" in text
    assert "Record type: Consent" in text
    assert "Data query Changed Checked. Answer: — → Checked." in text
    assert "Status: Open → Answered" in text
    assert "Source-data verification Entered" in text
