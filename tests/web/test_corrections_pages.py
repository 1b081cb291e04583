"""The follow-up and events page and the correction pages: first entry of consent, tumour
assessments, end of treatment, follow-up and death; corrections with a reason based on the
version shown (a stale one refused with a plain message, 409); roles (403) and sites (404);
the patient's audit trail as CSV."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from startrt.web.events import services as events
from startrt.web.events.models import (
    AdverseEvent,
    Death,
    EndOfTreatment,
    FollowUp,
    TumourAssessment,
)
from startrt.web.exports.tables import audit_table
from startrt.web.trial import services
from startrt.web.trial.models import AuditEntry, Consent, Patient, Site
from support.records import eligible_screening
from web.conftest import Randomized
from web.test_events import (
    PD_AT_PLUS_20,
    PR_AT_MINUS_30,
    adverse_event,
    series_data,
)

Staff = dict[str, User]


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def events_url(patient: Patient, tail: str = "") -> str:
    return f"/patients/{patient.trial_id}/events/{tail}"


def posted(values: dict[str, Any]) -> dict[str, Any]:
    """Values as a browser posts them: ticked checkboxes "on", unticked ones left out."""
    data: dict[str, Any] = {}
    for name, value in values.items():
        if value is True:
            data[name] = "on"
        elif value is not False and value is not None:
            data[name] = value
    return data


@pytest.fixture
def lund(staff: Staff, sites: dict[str, Site]) -> Patient:
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    services.record_screening(staff["nurse"], patient, eligible_screening())
    return patient


def test_a_consent_is_entered_and_corrected_on_the_pages(staff: Staff, lund: Patient) -> None:
    nurse = signed_in(staff["nurse"])
    page = nurse.get(events_url(lund))
    assert page.status_code == 200
    assert "No consent recorded." in page.content.decode()
    added = nurse.post(
        events_url(lund, "consent/"), {"form_version": "1.0", "signed_on": "2025-02-20"}
    )
    assert (added.status_code, added["Location"]) == (302, f"{events_url(lund)}#consent")
    consent = Consent.objects.get()

    url = events_url(lund, f"consent/{consent.pk}/")
    form = nurse.get(url).context["form"]
    assert (form["signed_on"].value(), form["expected_version"].value()) == (
        consent.signed_on,
        1,
    )
    change = {"form_version": "1.0", "signed_on": "2025-02-19", "expected_version": "1"}
    no_reason = nurse.post(url, change)
    assert no_reason.status_code == 422
    assert no_reason.context["form"].errors["correction_reason"] == ["This field is required."]
    corrected = nurse.post(url, {**change, "correction_reason": "date per the signed form"})
    assert corrected.status_code == 302
    entry = AuditEntry.objects.get(table="trial_consent", action="update")
    assert (entry.reason, entry.old["signed_on"], entry.new["signed_on"]) == (
        "date per the signed form",
        "2025-02-20",
        "2025-02-19",
    )

    stale = nurse.post(url, {**change, "signed_on": "2025-02-18", "correction_reason": "again"})
    assert stale.status_code == 409
    (message,) = stale.context["form"].non_field_errors()
    assert message == (
        "Not saved: someone changed this record after you opened it (the consent is at version "
        "2). Reload the page, check the current values and enter your change again."
    )
    assert message in stale.content.decode()
    assert Consent.objects.get().signed_on.isoformat() == "2025-02-19"

    future = (timezone.localdate().replace(year=timezone.localdate().year + 1)).isoformat()
    refused = nurse.post(events_url(lund, "consent/"), {"form_version": "2.0", "signed_on": future})
    assert refused.status_code == 422
    (error,) = refused.context["consent_form"].errors["signed_on"]
    assert error.startswith(f"“{future}”: must lie between")


def test_an_adverse_event_is_corrected_on_its_page(staff: Staff, randomized: Randomized) -> None:
    patient = randomized(False)
    event = events.report_adverse_event(staff["nurse"], patient, adverse_event())
    investigator = signed_in(staff["investigator"])
    assert f"adverse-event/{event.pk}/" in investigator.get(events_url(patient)).content.decode()
    url = events_url(patient, f"adverse-event/{event.pk}/")
    initial = investigator.get(url).context["form"].initial
    assert (initial["ctcae_grade"], initial["outcome"], initial["expected_version"]) == (
        2,
        "recovered",
        1,
    )
    values = adverse_event(
        ctcae_grade=3,
        serious=True,
        seriousness_criteria=["hospitalisation"],
        attribution_prrt="probable",
        outcome="recovered_with_sequelae",
        resolved_date="2025-06-20",
    )
    data = {
        **posted(values),
        "expected_version": "1",
        "correction_reason": "grade per source notes",
    }
    not_serious = investigator.post(url, {**data, "seriousness_criteria": []})
    assert not_serious.status_code == 422
    assert not_serious.context["form"].errors["seriousness_criteria"] == [
        "A serious adverse event needs at least one"
    ]
    assert investigator.post(url, data).status_code == 302
    stored = AdverseEvent.objects.get()
    assert (stored.ctcae_grade, stored.serious, stored.outcome, stored.version) == (
        3,
        True,
        "recovered_with_sequelae",
        2,
    )
    assert stored.resolved_date.isoformat() == "2025-06-20"
    entry = AuditEntry.objects.get(table="events_adverseevent", action="update")
    assert (entry.old["resolved_date"], entry.new["resolved_date"]) == (
        "2025-06-09",
        "2025-06-20",
    )

    monitor = signed_in(staff["monitor"])
    assert "disabled" in monitor.get(url).content.decode()  # read-only for a monitor
    assert monitor.post(url, {**data, "expected_version": "2"}).status_code == 403
    assert AdverseEvent.objects.get().version == 2


def test_tumour_assessments_are_entered_and_corrected_on_the_pages(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    nurse = signed_in(staff["nurse"])
    add = events_url(patient, "tumour-assessment/")
    # the first assessment defines the baseline lesions: the series as JSON
    not_json = nurse.post(add, {"series": "{baseline"})
    assert not_json.status_code == 422
    assert "not JSON" in not_json.context["assessment_form"].errors["series"][0]
    first = nurse.post(add, {"series": json.dumps(series_data(PR_AT_MINUS_30))})
    assert first.status_code == 302

    # then a time point at a time, one field per baseline lesion
    form = nurse.get(events_url(patient)).context["assessment_form"]
    assert [field.label for field in form if field.name.startswith("target_")] == [
        "L1 (liver), baseline 50.0 mm",
        "L2 (lung), baseline 30.0 mm",
        "N1 (mediastinum), baseline 20.0 mm",
    ]
    point = {
        "date": "2025-07-14",
        "target_0": "45",
        "target_1": "24",
        "target_2": "15",
        "non_target_3": "present",
    }
    assert form["follow_ups"].value() == 1  # the series as shown: one follow-up
    assert nurse.post(add, {**point, "follow_ups": "1"}).status_code == 302
    # the same form sent again: the series has moved on, nothing added
    again = nurse.post(add, {**point, "date": "2025-10-13", "follow_ups": "1"})
    assert again.status_code == 409
    assert (
        "the series has 2 follow-ups now" in again.context["assessment_form"].non_field_errors()[0]
    )
    assert TumourAssessment.objects.count() == 2
    latest = TumourAssessment.objects.order_by("assessment_date").last()
    assert latest.series == series_data(PR_AT_MINUS_30, PD_AT_PLUS_20) | {
        "follow_up": latest.series["follow_up"]
    }
    assert latest.series["follow_up"][1]["target_mm"] == {"L1": 45.0, "L2": 24.0, "N1": 15.0}
    assert latest.response["assessments"][1]["overall"] == "PD"

    url = events_url(patient, f"tumour-assessment/{latest.pk}/")
    initial = nurse.get(url).context["form"].initial
    assert (initial["target_0"], initial["non_target_3"], initial["expected_version"]) == (
        "45.0",
        "present",
        1,
    )
    bad = nurse.post(
        url, {**point, "target_0": "big", "expected_version": "1", "correction_reason": "x"}
    )
    assert bad.status_code == 422
    assert bad.context["form"].errors["target_0"] == [
        "'big': a diameter in mm, 'too small', or empty for not evaluated"
    ]
    corrected = nurse.post(
        url,
        {**point, "target_0": "44", "expected_version": "1", "correction_reason": "L1: 44 mm"},
    )
    assert corrected.status_code == 302
    latest.refresh_from_db()
    # 44 + 24 + 15 = 83 mm: +18.6 % over the nadir of 70 mm -> SD (computed again)
    assert (latest.version, latest.response["assessments"][1]["overall"]) == (2, "SD")
    earlier = TumourAssessment.objects.order_by("assessment_date").first()
    refused = nurse.post(
        events_url(patient, f"tumour-assessment/{earlier.pk}/"),
        {**point, "date": "2025-04-14", "expected_version": "1", "correction_reason": "x"},
    )
    assert refused.status_code == 422
    assert "only the latest" in refused.content.decode()


def test_end_of_treatment_follow_up_and_death_on_the_pages(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    today = timezone.localdate().isoformat()
    investigator = signed_in(staff["investigator"])
    other = investigator.post(
        events_url(patient, "end-of-treatment/"), {"date": today, "reason": "other"}
    )
    assert other.status_code == 422
    assert other.context["end_form"].errors["details"] == ["Required when the reason is other"]
    assert (
        investigator.post(
            events_url(patient, "end-of-treatment/"), {"date": today, "reason": "toxicity"}
        ).status_code
        == 302
    )
    page = investigator.get(events_url(patient))
    assert page.context["end_form"] is None  # entered once; corrected on its own page
    end = EndOfTreatment.objects.get()
    corrected = investigator.post(
        events_url(patient, f"end-of-treatment/{end.pk}/"),
        {
            "date": today,
            "reason": "progression",
            "expected_version": "1",
            "correction_reason": "progression on the CT of the same day",
        },
    )
    assert corrected.status_code == 302
    assert EndOfTreatment.objects.get().reason == "progression"

    follow_up = {"date": today, "status": "alive"}
    assert investigator.post(events_url(patient, "follow-up/"), follow_up).status_code == 302
    twice = investigator.post(events_url(patient, "follow-up/"), follow_up)
    assert twice.status_code == 422
    assert "a follow-up on this date exists" in twice.context["follow_up_form"].errors["date"][0]
    contact = FollowUp.objects.get()
    assert (
        investigator.post(
            events_url(patient, f"follow-up/{contact.pk}/"),
            {**follow_up, "status": "lost", "expected_version": "1"}
            | {"correction_reason": "no contact after all"},
        ).status_code
        == 302
    )
    assert FollowUp.objects.get().status == "lost"

    death = {"date": today, "cause": "NET progression"}
    assert investigator.post(events_url(patient, "death/"), death).status_code == 302
    again = investigator.post(events_url(patient, "death/"), death)  # from a page loaded before
    assert again.status_code == 409
    assert "Not saved" in again.context["death_form"].non_field_errors()[0]
    stored = Death.objects.get()
    assert (stored.related_to_treatment, stored.version) == (False, 1)


def test_a_monitor_reads_but_does_not_enter(staff: Staff, lund: Patient) -> None:
    monitor = signed_in(staff["monitor"])
    page = monitor.get(events_url(lund))
    assert page.status_code == 200
    assert 'name="add_consent"' not in page.content.decode()
    refused = monitor.post(
        events_url(lund, "consent/"), {"form_version": "1", "signed_on": "2025-02-20"}
    )
    assert refused.status_code == 403
    assert not Consent.objects.exists()


@pytest.mark.parametrize(
    ("method", "tail"),
    [
        ("get", ""),
        ("post", "consent/"),
        ("get", "consent/1/"),
        ("post", "consent/1/"),
    ],
)
def test_another_sites_patient_is_not_found(
    staff: Staff, sites: dict[str, Site], method: str, tail: str
) -> None:
    uppsala = services.register_patient(staff["uppsala"], sites["Uppsala"], "S01-UPP-001", "male")
    services.record_consent(
        staff["uppsala"], uppsala, {"form_version": "1", "signed_on": "2025-02-20"}
    )
    lund = signed_in(staff["investigator"])
    data = {"form_version": "2", "signed_on": "2025-02-20", "expected_version": "1"}
    response = getattr(lund, method)(f"/patients/S01-UPP-001/events/{tail}", data)
    assert response.status_code == 404
    missing = getattr(lund, method)(f"/patients/S01-UPP-999/events/{tail}", data)
    assert missing.status_code == 404
    assert Consent.objects.get().version == 1


def test_a_record_of_another_patient_or_kind_is_not_found(
    staff: Staff, sites: dict[str, Site], lund: Patient
) -> None:
    other = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-002", "male")
    consent = services.record_consent(
        staff["nurse"], other, {"form_version": "1", "signed_on": "2025-02-20"}
    )
    nurse = signed_in(staff["nurse"])
    assert nurse.get(events_url(lund, f"consent/{consent.pk}/")).status_code == 404
    assert nurse.get(events_url(other, f"consent/{consent.pk}/")).status_code == 200
    assert nurse.get(events_url(other, f"nothing/{consent.pk}/")).status_code == 404
    # adverse events are reported on the treatment page, corrected here
    assert nurse.post(events_url(other, "adverse-event/")).status_code == 404


# --- the audit trail as CSV --------------------------------------------------------------------


def test_the_audit_trail_downloads_as_csv(
    staff: Staff, sites: dict[str, Site], lund: Patient
) -> None:
    services.record_screening(
        staff["nurse"],
        lund,
        eligible_screening(hemoglobin_g_l=131),
        reason="Hb re-measured",
        expected_version=1,
    )
    services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-002", "female")
    url = "/patients/S01-LUN-001/audit.csv"
    response = signed_in(staff["investigator"]).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="audit_trail_S01-LUN-001.csv"'
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    entries = AuditEntry.objects.filter(patient_trial_id="S01-LUN-001").order_by("at", "pk")
    assert list(rows[0]) == list(audit_table().columns)  # the export's columns
    assert [row["id"] for row in rows] == [str(entry.pk) for entry in entries]
    assert {row["patient_trial_id"] for row in rows} == {"S01-LUN-001"}  # not S01-LUN-002
    update = next(row for row in rows if row["action"] == "update")
    assert update["reason"] == "Hb re-measured"
    assert json.loads(update["old"])["record"]["hemoglobin_g_l"] == 128
    assert json.loads(update["new"])["record"]["hemoglobin_g_l"] == 131

    assert signed_in(staff["monitor"]).get(url).status_code == 200
    nurse = signed_in(staff["nurse"])
    assert nurse.get(url).status_code == 403  # nurses read the trail on the page only
    assert "audit-csv" not in nurse.get("/patients/S01-LUN-001/audit/").content.decode()
    assert (
        "audit-csv"
        in signed_in(staff["monitor"]).get("/patients/S01-LUN-001/audit/").content.decode()
    )
    assert signed_in(staff["uppsala"]).get(url).status_code == 404
    assert (
        signed_in(staff["investigator"]).get("/patients/S01-LUN-999/audit.csv").status_code == 404
    )
    assert Client().get(url).status_code == 302  # to the login page


def test_a_baseline_only_assessment_is_corrected_as_json(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    baseline = series_data()  # no follow-up yet: the latest time point is the baseline
    assessment = events.record_tumour_assessment(staff["nurse"], patient, baseline)
    nurse = signed_in(staff["nurse"])
    url = events_url(patient, f"tumour-assessment/{assessment.pk}/")
    form = nurse.get(url).context["form"]
    assert json.loads(form.initial["series"]) == assessment.series
    baseline["baseline"]["lesions"][0]["diameter_mm"] = 52
    corrected = nurse.post(
        url,
        {
            "series": json.dumps(baseline),
            "expected_version": "1",
            "correction_reason": "L1 is 52 mm on the baseline CT",
        },
    )
    assert corrected.status_code == 302
    assessment.refresh_from_db()
    assert (assessment.version, assessment.series["baseline"]["lesions"][0]["diameter_mm"]) == (
        2,
        52.0,
    )
