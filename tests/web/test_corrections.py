"""Corrections after first entry through the JSON API (and the consent services): each through
the shared audited `update` (old and new values, the reason), refused without a reason (422),
on a stale version (409) or on a signed record until a reasoned unlock (409); a patient of
another site is 404, a monitor 403. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.utils import timezone

from startrt.validation import InvalidInputError
from startrt.web.events import services as events
from startrt.web.events.models import AdverseEvent, Death, FollowUp, TumourAssessment
from startrt.web.signing import services as signing
from startrt.web.trial import services
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import AuditEntry, Consent, Decision, Patient, Screening, Site
from support.records import eligible_screening
from web.conftest import Randomized
from web.test_events import (
    PD_AT_PLUS_20,
    PR_AT_MINUS_30,
    SD_BELOW_20,
    adverse_event,
    series_data,
)

Staff = dict[str, User]
PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
API = "/api/patients/S01-LUN-001"


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def put(client: Client, path: str, record: dict[str, Any], **change: Any) -> Any:
    return client.put(
        f"{API}/{path}", {"record": record, **change}, content_type="application/json"
    )


def post(client: Client, path: str, record: dict[str, Any]) -> Any:
    return client.post(f"{API}/{path}", {"record": record}, content_type="application/json")


def last_update(table: str) -> AuditEntry:
    return AuditEntry.objects.filter(table=table, action="update").latest("pk")


@pytest.fixture
def lund(staff: Staff, sites: dict[str, Site]) -> Patient:
    return services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")


# --- consent (services) ------------------------------------------------------------------------


def test_a_consent_is_recorded_and_corrected_with_a_reason(staff: Staff, lund: Patient) -> None:
    consent = services.record_consent(
        staff["nurse"], lund, {"form_version": " 1.0 ", "signed_on": "2025-02-20"}
    )
    assert (consent.form_version, consent.signed_on, consent.version) == (
        "1.0",
        date(2025, 2, 20),
        1,
    )
    with pytest.raises(InvalidInputError, match="form version is recorded"):
        services.record_consent(
            staff["nurse"], lund, {"form_version": "1.0", "signed_on": "2025-02-21"}
        )
    with pytest.raises(InvalidInputError, match="reason"):
        services.change_consent(
            staff["nurse"],
            consent,
            {"form_version": "1.0", "signed_on": "2025-02-19"},
            reason=" ",
            expected_version=1,
        )
    changed = services.change_consent(
        staff["investigator"],
        consent,
        {"form_version": "1.0", "signed_on": "2025-02-19"},
        reason="date per the signed form",
        expected_version=1,
    )
    assert (changed.signed_on, changed.version) == (date(2025, 2, 19), 2)
    entry = last_update("trial_consent")
    assert (entry.reason, entry.username, entry.patient_trial_id) == (
        "date per the signed form",
        "investigator.lund",
        "S01-LUN-001",
    )
    assert (entry.old["signed_on"], entry.new["signed_on"]) == ("2025-02-20", "2025-02-19")
    with pytest.raises(StaleVersionError, match="consent is at version 2"):
        services.change_consent(
            staff["nurse"],
            consent,
            {"form_version": "1.1", "signed_on": "2025-02-19"},
            reason="x",
            expected_version=1,
        )
    assert Consent.objects.get().form_version == "1.0"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {"form_version": "1.0", "signed_on": "2022-10-31"},
            "signed_on",
        ),  # before v1.0 took effect
        ({"form_version": "", "signed_on": "2025-02-20"}, "form_version"),
        ({"form_version": "x" * 33, "signed_on": "2025-02-20"}, "form_version"),
        ({"form_version": "1.0", "signed_on": "20.02.2025"}, "signed_on"),
        ({"form_version": "1.0", "signed_on": "2025-02-20", "witness": "x"}, "witness"),
    ],
)
def test_an_implausible_consent_is_refused_naming_the_field(
    staff: Staff, lund: Patient, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInputError) as error:
        services.record_consent(staff["nurse"], lund, data)
    named = getattr(error.value, "errors", [error.value])[0].field
    assert named == field
    assert not Consent.objects.exists()


def test_a_consent_signed_tomorrow_is_refused(staff: Staff, lund: Patient) -> None:
    # today (UTC) + 1 day is tolerated for time zones (startrt.web.trial.dates): + 2 is refused
    tomorrow = (timezone.localdate() + timedelta(days=2)).isoformat()
    with pytest.raises(InvalidInputError, match="today") as error:
        services.record_consent(
            staff["nurse"], lund, {"form_version": "1.0", "signed_on": tomorrow}
        )
    assert error.value.field == "signed_on"


def test_only_entry_roles_of_the_site_record_consents(staff: Staff, lund: Patient) -> None:
    data = {"form_version": "1.0", "signed_on": "2025-02-20"}
    for user in (staff["monitor"], staff["uppsala"], staff["statistician"]):
        with pytest.raises(PermissionDenied):
            services.record_consent(user, lund, data)
    assert not Consent.objects.exists()


# --- consents through the API ------------------------------------------------------------------


def test_consents_through_the_api(staff: Staff, lund: Patient) -> None:
    nurse = client_for(staff["nurse"])
    created = post(nurse, "consents", {"form_version": "1.0", "signed_on": "2025-02-20"})
    assert created.status_code == 201
    consent = created.json()
    assert (consent["form_version"], consent["version"]) == ("1.0", 1)
    corrected = put(
        nurse,
        f"consents/{consent['id']}",
        {"form_version": "1.0", "signed_on": "2025-02-19"},
        reason="typo",
        expected_version=1,
    )
    assert (corrected.status_code, corrected.json()["version"]) == (200, 2)
    assert nurse.get(f"{API}/consents").json() == [corrected.json()]
    stale = put(
        nurse,
        f"consents/{consent['id']}",
        {"form_version": "1.0", "signed_on": "2025-02-18"},
        reason="again",
        expected_version=1,
    )
    assert (stale.status_code, stale.json()["field"]) == (409, "expected_version")
    no_reason = nurse.put(
        f"{API}/consents/{consent['id']}",
        {"record": {"form_version": "1.0", "signed_on": "2025-02-18"}, "expected_version": 2},
        content_type="application/json",
    )
    assert (no_reason.status_code, no_reason.json()["field"]) == (422, "reason")
    assert put(nurse, "consents/999", {}, reason="x", expected_version=1).status_code == 404
    monitor = put(
        client_for(staff["monitor"]),
        f"consents/{consent['id']}",
        {"form_version": "2.0", "signed_on": "2025-02-18"},
        reason="x",
        expected_version=2,
    )
    assert monitor.status_code == 403
    hidden = client_for(staff["uppsala"]).get(f"{API}/consents")
    assert hidden.status_code == 404
    assert Consent.objects.get().version == 2


# --- adverse events --------------------------------------------------------------------------


def test_an_adverse_event_is_corrected_through_the_api(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    url = f"/api/patients/{patient.trial_id}/adverse-events"
    nurse = client_for(staff["nurse"])
    event = nurse.post(url, {"record": adverse_event()}, content_type="application/json").json()
    assert nurse.get(f"{url}/{event['id']}").json() == event
    # grade 2 -> 3, serious (hospitalisation), attribution possible -> probable, still
    # recovering (no resolution date yet)
    correction = adverse_event(
        ctcae_grade=3,
        serious=True,
        seriousness_criteria=["hospitalisation"],
        attribution_prrt="probable",
        outcome="recovering",
        resolved_date=None,
    )
    body = {"record": correction, "reason": "per discharge letter", "expected_version": 1}
    corrected = nurse.put(f"{url}/{event['id']}", body, content_type="application/json")
    assert corrected.status_code == 200
    values = corrected.json()
    assert (values["ctcae_grade"], values["serious"], values["version"]) == (3, True, 2)
    assert (values["outcome"], values["resolved_date"]) == ("recovering", None)
    entry = last_update("events_adverseevent")
    assert entry.reason == "per discharge letter"
    assert (entry.old["ctcae_grade"], entry.new["ctcae_grade"]) == (2, 3)
    assert (entry.old["attribution_prrt"], entry.new["attribution_prrt"]) == (
        "possible",
        "probable",
    )
    assert (entry.old["resolved_date"], entry.new["resolved_date"]) == ("2025-06-09", None)

    stale = nurse.put(f"{url}/{event['id']}", body, content_type="application/json")
    assert stale.status_code == 409
    assert "version 2" in stale.json()["rule"]
    # the rules of first entry apply to a correction: serious needs a criterion
    refused = nurse.put(
        f"{url}/{event['id']}",
        {
            "record": {**correction, "seriousness_criteria": []},
            "reason": "criteria removed",
            "expected_version": 2,
        },
        content_type="application/json",
    )
    assert (refused.status_code, refused.json()["field"]) == (422, "seriousness_criteria")
    blank = nurse.put(
        f"{url}/{event['id']}",
        {"record": correction, "reason": "  ", "expected_version": 2},
        content_type="application/json",
    )
    assert (blank.status_code, blank.json()["field"]) == (422, "reason")
    assert AdverseEvent.objects.get().version == 2
    assert nurse.get(f"{url}/{event['id'] + 1}").status_code == 404
    hidden = client_for(staff["uppsala"]).put(
        f"{url}/{event['id']}",
        {**body, "expected_version": 2},
        content_type="application/json",
    )
    assert hidden.status_code == 404
    monitor = client_for(staff["monitor"]).put(
        f"{url}/{event['id']}", {**body, "expected_version": 2}, content_type="application/json"
    )
    assert monitor.status_code == 403


# --- tumour assessments ------------------------------------------------------------------------


def test_a_tumour_assessment_correction_computes_the_response_again(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    url = f"/api/patients/{patient.trial_id}/tumour-assessments"
    nurse = client_for(staff["nurse"])
    first = nurse.post(
        url, {"record": series_data(PR_AT_MINUS_30)}, content_type="application/json"
    ).json()
    second = nurse.post(
        url,
        {"record": series_data(PR_AT_MINUS_30, PD_AT_PLUS_20)},
        content_type="application/json",
    ).json()
    assert second["response"]["assessments"][-1]["overall"] == "PD"  # +20 % over the nadir
    listed = nurse.get(url).json()
    assert [a["id"] for a in listed] == [first["id"], second["id"]]

    # L1 45 -> 44 mm: 83 mm is +18.6 % over the nadir of 70 mm: SD (see test_events)
    body = {
        "record": series_data(PR_AT_MINUS_30, SD_BELOW_20),
        "reason": "L1 re-measured: 44 mm",
        "expected_version": 1,
    }
    earlier = nurse.put(f"{url}/{first['id']}", body, content_type="application/json")
    assert (earlier.status_code, earlier.json()["field"]) == (422, "assessment_date")
    assert "only the latest" in earlier.json()["rule"]
    corrected = nurse.put(f"{url}/{second['id']}", body, content_type="application/json")
    assert corrected.status_code == 200
    fu2 = corrected.json()["response"]["assessments"][-1]
    assert (fu2["sum_mm"], fu2["overall"], corrected.json()["version"]) == (83, "SD", 2)
    decision = Decision.objects.filter(patient=patient, kind="tumour_response").latest("pk")
    assert decision.record["response"]["assessments"][-1]["overall"] == "SD"
    entry = last_update("events_tumourassessment")
    assert entry.old["response"]["assessments"][-1]["overall"] == "PD"
    assert entry.new["response"]["assessments"][-1]["overall"] == "SD"
    stale = nurse.put(f"{url}/{second['id']}", body, content_type="application/json")
    assert stale.status_code == 409
    assert TumourAssessment.objects.get(pk=second["id"]).version == 2


def test_change_tumour_assessment_refuses_an_earlier_one(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    first = events.record_tumour_assessment(staff["nurse"], patient, series_data(PR_AT_MINUS_30))
    events.record_tumour_assessment(
        staff["nurse"], patient, series_data(PR_AT_MINUS_30, PD_AT_PLUS_20)
    )
    with pytest.raises(InvalidInputError, match="only the latest") as error:
        events.change_tumour_assessment(
            staff["nurse"], first, series_data(SD_BELOW_20), reason="x", expected_version=1
        )
    assert error.value.field == "assessment_date"


# --- end of treatment, follow-up, death --------------------------------------------------------


def test_end_of_treatment_follow_up_and_death_are_corrected_through_the_api(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    base = f"/api/patients/{patient.trial_id}"
    today = timezone.localdate()
    investigator = client_for(staff["investigator"])

    def call(method: str, path: str, body: dict[str, Any]) -> Any:
        send = getattr(investigator, method)
        return send(f"{base}/{path}", body, content_type="application/json")

    assert investigator.get(f"{base}/end-of-treatment").status_code == 404
    end = {"date": today.isoformat(), "reason": "toxicity", "details": ""}
    missing = call("put", "end-of-treatment", {"record": end, "reason": "x", "expected_version": 1})
    assert missing.status_code == 404  # nothing to correct yet
    assert call("post", "end-of-treatment", {"record": end}).status_code == 200
    changed_end = {**end, "reason": "other", "details": "patient moved abroad"}
    corrected = call(
        "put",
        "end-of-treatment",
        {"record": changed_end, "reason": "reason per the letter", "expected_version": 1},
    )
    assert (corrected.status_code, corrected.json()["reason"]) == (200, "other")
    assert investigator.get(f"{base}/end-of-treatment").json() == corrected.json()
    assert last_update("events_endoftreatment").old["reason"] == "toxicity"

    contact = {"date": today.isoformat(), "status": "alive", "progression": False}
    created = call("post", "follow-ups", {"record": contact})
    assert created.status_code == 201
    follow_up_id = created.json()["id"]
    lost = {**contact, "status": "lost"}
    corrected = call(
        "put",
        f"follow-ups/{follow_up_id}",
        {"record": lost, "reason": "no contact after all", "expected_version": 1},
    )
    assert (corrected.status_code, corrected.json()["status"]) == (200, "lost")
    assert [f["status"] for f in investigator.get(f"{base}/follow-ups").json()] == ["lost"]
    assert FollowUp.objects.get().version == 2

    death = {"date": today.isoformat(), "cause": "NET progression", "related_to_treatment": False}
    assert investigator.get(f"{base}/death").status_code == 404
    # a follow-up "lost" today: the death cannot be dated before it
    yesterday = (today - timedelta(days=1)).isoformat()
    early = call("post", "death", {"record": {**death, "date": yesterday}})
    assert (early.status_code, early.json()["field"]) == (422, "date")
    assert call("post", "death", {"record": death}).status_code == 200
    corrected = call(
        "put",
        "death",
        {
            "record": {**death, "cause": "Liver failure"},
            "reason": "cause per autopsy",
            "expected_version": 1,
        },
    )
    assert (corrected.status_code, corrected.json()["cause"]) == (200, "Liver failure")
    stale = call("put", "death", {"record": death, "reason": "back again", "expected_version": 1})
    assert stale.status_code == 409
    assert Death.objects.get().cause == "Liver failure"
    assert (last_update("events_death").old["cause"], last_update("events_death").reason) == (
        "NET progression",
        "cause per autopsy",
    )


# --- screening ---------------------------------------------------------------------------------


def test_a_signed_screening_record_is_corrected_only_after_a_reasoned_unlock(
    staff: Staff, lund: Patient
) -> None:
    services.record_screening(staff["nurse"], lund, eligible_screening(hemoglobin_g_l=90))
    request = RequestFactory().post("/sign/", REMOTE_ADDR="10.0.0.7")
    request.user = staff["nurse"]
    screening = Screening.objects.get()
    signature = signing.sign(request, PASSWORD, "trial.screening", screening.pk, "authorship")
    nurse = client_for(staff["nurse"])
    body = {"record": eligible_screening(), "reason": "Hb typo: 90 -> 128", "expected_version": 1}
    locked = nurse.put(f"{API}/screening", body, content_type="application/json")
    assert locked.status_code == 409
    assert (locked.json()["field"], locked.json()["value"]) == (
        "record",
        f"trial.screening {screening.pk}",
    )
    assert "unlock the signature" in locked.json()["rule"]
    assert Screening.objects.get().version == 1

    signing.unlock(request, PASSWORD, signature, "Hb entered wrongly")
    corrected = nurse.put(f"{API}/screening", body, content_type="application/json")
    assert corrected.status_code == 200
    assert (corrected.json()["eligible"], corrected.json()["version"]) == (True, 2)
    # eligibility re-evaluated and stored as decided: not eligible (Hb 90), then eligible
    decisions = Decision.objects.filter(patient=lund, kind="eligibility").order_by("pk")
    assert [d.record["eligible"] for d in decisions] == [False, True]
    entry = last_update("trial_screening")
    assert (entry.old["eligible"], entry.new["eligible"], entry.reason) == (
        False,
        True,
        "Hb typo: 90 -> 128",
    )
