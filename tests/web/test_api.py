"""The JSON API of the trial core through Django's test client: the walk from registration to
randomization, site scoping (404), roles (403), refused input (422), stale versions (409), login
and CSRF."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.trial import services
from startrt.web.trial.models import Patient, RandomizationList, Screening, Site
from support.records import eligible_screening
from web.test_api_fuzz import served_schema

Staff = dict[str, User]
Sites = dict[str, Site]

LUND_PATIENT = "S01-LUN-001"
PATIENT_URL = f"/api/patients/{LUND_PATIENT}"
SCREENING_URL = f"{PATIENT_URL}/screening"
PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
SIGNED = {"password": PASSWORD}  # the randomization is signed by the investigator's password
CSRF_TOKEN = "Csrf0Token0For0The0Api0Tests0032"  # 32 letters/digits: a valid unmasked secret


def client_for(user: User, **options: Any) -> Client:
    client = Client(**options)
    client.force_login(user)
    return client


def put_screening(client: Client, record: dict[str, Any], **change: Any) -> Any:
    return client.put(SCREENING_URL, {"record": record, **change}, content_type="application/json")


@pytest.fixture
def screened(staff: Staff, sites: Sites) -> Patient:
    """A Lund patient with an eligible screening record at version 1."""
    patient = services.register_patient(staff["nurse"], sites["Lund"], LUND_PATIENT, "male")
    services.record_screening(staff["nurse"], patient, eligible_screening())
    return patient


@pytest.fixture
def allocation_list(staff: Staff, sites: Sites) -> None:
    listing = generate_block_list(
        seed=4242, n_per_stratum=4, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)


def test_registration_screening_and_randomization(
    staff: Staff, sites: Sites, allocation_list: None
) -> None:
    nurse, investigator = client_for(staff["nurse"]), client_for(staff["investigator"])
    registered = nurse.post(
        "/api/patients",
        {"site_code": "LUN", "trial_id": LUND_PATIENT, "sex": "male"},
        content_type="application/json",
    )
    assert registered.status_code == 201
    assert registered.json() | {"registered_at": None} == {
        "trial_id": LUND_PATIENT,
        "site": "Lund",
        "site_code": "LUN",
        "sex": "male",
        "registered_at": None,
        "screened": False,
        "eligible": None,
        "treatment_arm": None,
    }
    assert nurse.get(SCREENING_URL).status_code == 404  # nothing entered yet

    first = put_screening(nurse, eligible_screening(hemoglobin_g_l=90))
    assert first.status_code == 200
    body = first.json()
    assert (body["version"], body["eligible"], body["protocol"]) == (1, False, "START-01 v1.0")
    # Hb 90 g/L fails the inclusion "Hb > 90 g/L"; it is the only criterion blocking
    blocking = [c for c in body["criteria"] if c["blocks_eligibility"]]
    assert [(c["kind"], c["value"], c["status"]) for c in blocking] == [
        ("inclusion", 90.0, "not met")
    ]
    assert "90" in blocking[0]["threshold"]

    changed = put_screening(
        nurse, eligible_screening(), reason="Hb typo: 90 -> 128", expected_version=1
    )
    assert changed.status_code == 200
    assert (changed.json()["version"], changed.json()["eligible"]) == (2, True)
    assert nurse.get(SCREENING_URL).json() == changed.json()
    assert all(not c["blocks_eligibility"] for c in changed.json()["criteria"])

    allocated = investigator.post(
        f"{PATIENT_URL}/randomize", SIGNED, content_type="application/json"
    )
    assert allocated.status_code == 200
    allocation = allocated.json()
    # FDG-PET negative Lund patient: that stratum of the loaded list, never the slot's place in it
    assert (allocation["stratum"], "sequence" in allocation) == ("site=Lund;fdg=negative", False)
    assert allocation["list_sha256"] == RandomizationList.objects.get().sha256
    assert allocation["allocated_by"] == "investigator.lund"
    patient = investigator.get(PATIENT_URL).json()
    assert (patient["screened"], patient["eligible"]) == (True, True)
    assert patient["treatment_arm"] == allocation["treatment_arm"]
    assert [p["trial_id"] for p in investigator.get("/api/patients").json()] == [LUND_PATIENT]

    audit = nurse.get(f"{PATIENT_URL}/audit").json()
    # patient; screening + decision; screening update + decision; slot + decision
    assert [(e["action"], e["table"]) for e in audit] == [
        ("insert", "trial_patient"),
        ("insert", "trial_screening"),
        ("insert", "trial_decision"),
        ("update", "trial_screening"),
        ("insert", "trial_decision"),
        ("update", "trial_slot"),
        ("insert", "trial_decision"),
        ("insert", "signing_signature"),
    ]
    assert audit[3]["reason"] == "Hb typo: 90 -> 128"
    assert (audit[3]["old"]["version"], audit[3]["new"]["version"]) == (1, 2)
    decisions = nurse.get(f"{PATIENT_URL}/decisions").json()
    assert [d["kind"] for d in decisions] == ["eligibility", "eligibility", "arm_assignment"]
    assert decisions[2]["record"]["arm"] == allocation["treatment_arm"]


PATIENT_OPERATIONS = [
    ("get", PATIENT_URL, None),
    ("get", SCREENING_URL, None),
    ("put", SCREENING_URL, {"record": eligible_screening(), "reason": "x", "expected_version": 1}),
    ("post", f"{PATIENT_URL}/randomize", SIGNED),
    ("get", f"{PATIENT_URL}/audit", None),
    ("get", f"{PATIENT_URL}/decisions", None),
]


@pytest.mark.parametrize(("method", "url", "body"), PATIENT_OPERATIONS)
def test_another_sites_patient_is_not_found(
    staff: Staff, screened: Patient, method: str, url: str, body: Any
) -> None:
    uppsala = client_for(staff["uppsala"])
    hidden = getattr(uppsala, method)(url, body, content_type="application/json")
    missing = getattr(uppsala, method)(
        url.replace("001", "999"), body, content_type="application/json"
    )
    # the same answer as for a patient that does not exist: nothing leaks
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["detail"].replace("001", "999") == missing.json()["detail"]
    assert Screening.objects.get(patient=screened).version == 1


def test_another_sites_patients_are_not_listed(staff: Staff, screened: Patient) -> None:
    assert client_for(staff["uppsala"]).get("/api/patients").json() == []
    assert len(client_for(staff["monitor"]).get("/api/patients").json()) == 1


def test_nurses_do_not_randomize(staff: Staff, screened: Patient, allocation_list: None) -> None:
    response = client_for(staff["nurse"]).post(
        f"{PATIENT_URL}/randomize", SIGNED, content_type="application/json"
    )
    assert response.status_code == 403
    assert "Investigator" in response.json()["detail"]
    assert not hasattr(Patient.objects.get(pk=screened.pk), "allocation")


@pytest.mark.parametrize(("method", "url", "body"), PATIENT_OPERATIONS)
def test_monitors_read_every_site_but_never_write(
    staff: Staff, screened: Patient, allocation_list: None, method: str, url: str, body: Any
) -> None:
    response = getattr(client_for(staff["monitor"]), method)(
        url, body, content_type="application/json"
    )
    assert response.status_code == (200 if method == "get" else 403)


def test_monitors_do_not_register(staff: Staff, sites: Sites) -> None:
    response = client_for(staff["monitor"]).post(
        "/api/patients",
        {"site_code": "LUN", "trial_id": LUND_PATIENT, "sex": "male"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not Patient.objects.exists()


def test_implausible_value_is_refused_naming_the_field(staff: Staff, screened: Patient) -> None:
    response = put_screening(
        client_for(staff["nurse"]),
        eligible_screening(hemoglobin_g_l=900),
        reason="Hb re-entered",
        expected_version=1,
    )
    assert response.status_code == 422
    body = response.json()
    assert (body["field"], body["value"]) == ("hemoglobin_g_l", 900)
    assert "250" in body["rule"]  # the plausibility limit of Hb (g/L)
    assert "hemoglobin_g_l=900" in body["message"]
    assert Screening.objects.get(patient=screened).version == 1


def test_every_refused_field_is_listed(staff: Staff, screened: Patient) -> None:
    record = eligible_screening(hemoglobin_g_l=900, weight_kg=-3, ecog="two")
    body = put_screening(client_for(staff["nurse"]), record, reason="x", expected_version=1).json()
    assert {e["field"] for e in body["errors"]} == {"hemoglobin_g_l", "weight_kg", "ecog"}


def test_a_change_needs_a_reason(staff: Staff, screened: Patient) -> None:
    response = put_screening(client_for(staff["nurse"]), eligible_screening(), expected_version=1)
    assert (response.status_code, response.json()["field"]) == (422, "reason")


def test_request_schema_refusals_name_the_field(staff: Staff, sites: Sites) -> None:
    response = client_for(staff["nurse"]).post(
        "/api/patients",
        {"site_code": "LUN", "trial_id": LUND_PATIENT, "sex": "unknown"},
        content_type="application/json",
    )
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["value"]) == ("sex", None)


def test_unknown_site_and_foreign_trial_id_are_refused(staff: Staff, sites: Sites) -> None:
    nurse = client_for(staff["nurse"])

    def register(site_code: str, trial_id: str) -> Any:
        body = {"site_code": site_code, "trial_id": trial_id, "sex": "female"}
        return nurse.post("/api/patients", body, content_type="application/json")

    assert register("XYZ", "S01-XYZ-001").json()["field"] == "site_code"
    refused = register("LUN", "S01-UPP-001")
    assert (refused.status_code, refused.json()["field"]) == (422, "trial_id")
    assert "LUN" in refused.json()["rule"]


def test_an_edit_of_an_old_version_is_refused(staff: Staff, screened: Patient) -> None:
    nurse = client_for(staff["nurse"])
    changed = put_screening(nurse, eligible_screening(), reason="a", expected_version=1)
    assert changed.status_code == 200
    stale = put_screening(
        nurse, eligible_screening(ecog=0), reason="b, based on version 1", expected_version=1
    )
    assert stale.status_code == 409
    assert (stale.json()["field"], stale.json()["value"]) == ("expected_version", 1)
    assert "version 2" in stale.json()["rule"]
    assert Screening.objects.get(patient=screened).record["ecog"] == 1  # kept, not overwritten


def test_the_api_needs_a_login(screened: Patient) -> None:
    assert Client().get("/api/patients").status_code == 401
    assert Client().get(PATIENT_URL).status_code == 401


def test_unsafe_methods_need_the_csrf_token(staff: Staff, sites: Sites) -> None:
    nurse = client_for(staff["nurse"], enforce_csrf_checks=True)
    body = {"site_code": "LUN", "trial_id": LUND_PATIENT, "sex": "female"}
    refused = nurse.post("/api/patients", body, content_type="application/json")
    assert refused.status_code == 403
    assert not Patient.objects.exists()
    assert nurse.get("/api/patients").status_code == 200  # safe methods need none
    nurse.cookies["csrftoken"] = CSRF_TOKEN
    accepted = nurse.post(
        "/api/patients", body, content_type="application/json", headers={"X-CSRFToken": CSRF_TOKEN}
    )
    assert accepted.status_code == 201


def test_the_api_schema_and_docs_need_a_login(staff: Staff) -> None:
    anonymous = Client()
    refused = anonymous.get("/api/openapi.json")
    assert (refused.status_code, refused.json()) == (401, {"detail": "Unauthorized"})
    docs = anonymous.get("/api/docs")
    assert (docs.status_code, docs["Location"]) == (302, "/login/?next=/api/docs")
    nurse = client_for(staff["nurse"])
    schema = nurse.get("/api/openapi.json")
    assert schema.status_code == 200
    assert schema.json() == served_schema()  # what the fuzzing test loads in-process
    assert nurse.get("/api/docs").status_code == 200
