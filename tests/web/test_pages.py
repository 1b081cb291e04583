"""Server-rendered pages: login, the patients of the user's sites, registration, screening with
the eligibility table, signed randomization, signature lock and unlock, the audit trail; a user
of another site gets 404, a wrong role 403, a refused value its message next to the field."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.screening import ScreeningRecord
from startrt.protocol.stratification import protocol_strata
from startrt.web.pages.forms import SCREENING_GROUPS
from startrt.web.signing.models import Signature
from startrt.web.trial import services
from startrt.web.trial.models import AuditEntry, Patient, Screening, Site, Slot
from support.records import eligible_screening

PASSWORD = "correct horse battery"  # the password tests/web/conftest.py gives every user
Staff = dict[str, User]
Sites = dict[str, Site]


def form_data(record: dict[str, Any], **extra: Any) -> dict[str, str]:
    """A screening record as the browser posts it (yes/no selects send "true"/"false")."""
    data = {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in record.items()
    }
    return {**data, **{name: str(value) for name, value in extra.items()}}


def signed_in(client: Client, user: User) -> Client:
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def lund_patient(staff: Staff, sites: Sites) -> Patient:
    return services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")


@pytest.fixture
def screened(staff: Staff, lund_patient: Patient) -> Patient:
    services.record_screening(staff["nurse"], lund_patient, eligible_screening())
    return lund_patient


@pytest.fixture
def randomization_list(staff: Staff, sites: Sites) -> None:
    listing = generate_block_list(
        seed=4242, n_per_stratum=4, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)


def test_pages_need_a_signed_in_user(client: Client, lund_patient: Patient) -> None:
    for url in ("/", "/patients/S01-LUN-001/", "/patients/register/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"/login/?next={url}"


def test_login_and_logout(client: Client, staff: Staff) -> None:
    assert client.get("/login/").status_code == 200
    refused = client.post("/login/", {"username": "nurse.lund", "password": "wrong"})
    assert refused.status_code == 200
    assert "Please enter a correct username and password" in refused.content.decode()
    accepted = client.post("/login/", {"username": "nurse.lund", "password": PASSWORD})
    assert (accepted.status_code, accepted["Location"]) == (302, "/")
    assert "nurse.lund" in client.get("/").content.decode()
    logged_out = client.post("/logout/")
    assert (logged_out.status_code, logged_out["Location"]) == (302, "/login/")
    assert client.get("/").status_code == 302


def test_the_patient_list_shows_the_users_sites_only(
    client: Client, staff: Staff, sites: Sites, screened: Patient
) -> None:
    services.register_patient(staff["uppsala"], sites["Uppsala"], "S01-UPP-001", "female")
    lund = signed_in(client, staff["nurse"]).get("/").content.decode()
    assert "S01-LUN-001" in lund
    assert "S01-UPP-001" not in lund
    assert "eligible" in lund
    monitor = signed_in(Client(), staff["monitor"]).get("/").content.decode()
    assert "S01-LUN-001" in monitor
    assert "S01-UPP-001" in monitor


def test_registration_through_the_form(client: Client, staff: Staff, sites: Sites) -> None:
    signed_in(client, staff["nurse"])
    lund = sites["Lund"].pk
    response = client.post(
        "/patients/register/", {"site": lund, "trial_id": "S01-LUN-007", "sex": "female"}
    )
    assert (response.status_code, response["Location"]) == (302, "/patients/S01-LUN-007/")
    patient = Patient.objects.get(trial_id="S01-LUN-007")
    assert (patient.site.name, patient.sex) == ("Lund", "female")
    assert AuditEntry.objects.filter(table="trial_patient", username="nurse.lund").count() == 1

    refused = client.post(
        "/patients/register/", {"site": lund, "trial_id": "S01-UPP-002", "sex": "male"}
    )
    assert refused.status_code == 422
    # the library's message, next to the field it names
    message = "“S01-UPP-002”: must carry the site code LUN"
    assert refused.context["form"].errors["trial_id"] == [message]
    assert message in refused.content.decode()
    # only the user's own sites are offered
    other = client.post(
        "/patients/register/",
        {"site": sites["Uppsala"].pk, "trial_id": "S01-UPP-002", "sex": "male"},
    )
    assert other.status_code == 422
    assert "site" in other.context["form"].errors
    assert not Patient.objects.filter(trial_id="S01-UPP-002").exists()


def test_a_monitor_may_not_register(client: Client, staff: Staff, sites: Sites) -> None:
    signed_in(client, staff["monitor"])
    assert "Register a patient" not in client.get("/").content.decode()
    response = client.post(
        "/patients/register/", {"site": sites["Lund"].pk, "trial_id": "S01-LUN-009", "sex": "male"}
    )
    assert response.status_code == 422  # no site is offered to a monitor
    assert not Patient.objects.exists()


def test_screening_entry_shows_the_eligibility_table(
    client: Client, staff: Staff, lund_patient: Patient
) -> None:
    signed_in(client, staff["nurse"])
    response = client.post("/patients/S01-LUN-001/screening/", form_data(eligible_screening()))
    assert response.status_code == 302
    screening = Screening.objects.get(patient=lund_patient)
    assert (screening.eligible, screening.version) == (True, 1)
    assert screening.record["hemoglobin_g_l"] == 128

    page = client.get("/patients/S01-LUN-001/")
    eligibility = page.context["eligibility"]
    assert eligibility["eligible"] is True
    criteria = {criterion["id"]: criterion for criterion in eligibility["criteria"]}
    # IN13 "Haemoglobin > 90 g/L": 128 g/L entered
    assert (criteria["IN13"]["status"], criteria["IN13"]["value"]) == ("met", 128.0)
    assert criteria["IN13"]["threshold"] == "> 90"
    html = page.content.decode()
    assert html.count('class="mono">IN') + html.count('class="mono">EX') == len(criteria)
    assert "Haemoglobin &gt; 90 g/L" in html
    assert "START-01 v1.0" in html


def test_screening_errors_come_back_next_to_their_field(
    client: Client, staff: Staff, screened: Patient
) -> None:
    signed_in(client, staff["nurse"])
    url = "/patients/S01-LUN-001/screening/"
    implausible = client.post(
        url,
        form_data(eligible_screening(hemoglobin_g_l=900), reason="typo", expected_version=1),
    )
    assert implausible.status_code == 422
    errors = implausible.context["screening_form"].errors
    assert errors["hemoglobin_g_l"] == ["“900”: Input should be less than or equal to 250"]
    assert 'id="id_hemoglobin_g_l_error"' in implausible.content.decode()

    no_reason = client.post(url, form_data(eligible_screening(ecog=0), expected_version=1))
    assert no_reason.status_code == 422
    assert no_reason.context["screening_form"].errors["reason"] == [
        "A change after first entry needs a reason"
    ]

    stale = client.post(
        url, form_data(eligible_screening(ecog=0), reason="ECOG re-assessed", expected_version=0)
    )
    assert stale.status_code == 409  # a conflict with the stored version, said plainly
    assert stale.context["screening_form"].non_field_errors() == [
        "Not saved: someone changed this record after you opened it (the screening record is "
        "at version 1). Reload the page, check the current values and enter your change again."
    ]

    disordered = client.post(
        url,
        form_data(
            eligible_screening(progression_imaging_date="2025-04-01"),
            reason="date",
            expected_version=1,
        ),
    )
    assert disordered.status_code == 422
    (message,) = disordered.context["screening_form"].non_field_errors()
    assert "progression_imaging_date 2025-04-01 is after screening_date 2025-03-03" in message
    assert Screening.objects.get(patient=screened).version == 1  # nothing stored

    changed = client.post(
        url, form_data(eligible_screening(ecog=0), reason="ECOG re-assessed", expected_version=1)
    )
    assert changed.status_code == 302
    assert Screening.objects.get(patient=screened).record["ecog"] == 0


def test_randomization_needs_the_investigators_password(
    client: Client, staff: Staff, screened: Patient, randomization_list: None
) -> None:
    url = "/patients/S01-LUN-001/randomize/"
    nurse = signed_in(Client(), staff["nurse"])
    assert "Randomize" not in nurse.get("/patients/S01-LUN-001/").content.decode()
    assert nurse.post(url, {"password": PASSWORD}).status_code == 403

    signed_in(client, staff["investigator"])
    assert 'name="randomize"' in client.get("/patients/S01-LUN-001/").content.decode()
    wrong = client.post(url, {"password": "not mine"})
    assert wrong.status_code == 422
    assert wrong.context["randomize_form"].errors["password"] == [
        "The password entered is not the password of investigator.lund: not signed"
    ]
    assert not Slot.objects.filter(patient=screened).exists()

    assert client.post(url, {"password": PASSWORD}).status_code == 302
    slot = Slot.objects.get(patient=screened)
    signature = Signature.objects.get()
    assert (signature.kind, signature.record_id) == ("trial.slot", str(slot.pk))
    assert (signature.meaning, signature.signer_username) == ("responsibility", "investigator.lund")
    page = client.get("/patients/S01-LUN-001/").content.decode()
    assert f'<strong id="allocated-arm">{slot.treatment_arm}</strong>' in page
    again = client.post(url, {"password": PASSWORD})
    assert again.status_code == 422
    assert "is already randomized" in again.content.decode()


def test_a_signed_screening_record_is_locked_until_unlocked_with_a_reason(
    client: Client, staff: Staff, screened: Patient
) -> None:
    signed_in(client, staff["nurse"])
    base = "/patients/S01-LUN-001/"
    signed = client.post(f"{base}sign/", {"meaning": "authorship", "password": PASSWORD})
    assert signed.status_code == 302
    signature = Signature.objects.get()
    page = client.get(base).content.decode()
    assert "Signed: locked" in page
    assert "unchanged" in page

    change = form_data(eligible_screening(ecog=0), reason="ECOG re-assessed", expected_version=1)
    locked = client.post(f"{base}screening/", change)
    assert locked.status_code == 409
    (message,) = locked.context["screening_form"].non_field_errors()
    assert "is signed (authorship) by nurse.lund" in message
    assert Screening.objects.get(patient=screened).version == 1

    unlock = f"{base}signatures/{signature.pk}/unlock/"
    no_reason = client.post(unlock, {"reason": "", "password": PASSWORD})
    assert no_reason.status_code == 422
    assert Signature.objects.get().active
    assert (
        client.post(unlock, {"reason": "ECOG re-assessed", "password": PASSWORD}).status_code == 302
    )
    assert not Signature.objects.get().active
    assert client.post(f"{base}screening/", change).status_code == 302
    assert Screening.objects.get(patient=screened).version == 2


def test_the_audit_trail_page_lists_changes_with_reasons(
    client: Client, staff: Staff, screened: Patient
) -> None:
    services.record_screening(
        staff["nurse"],
        screened,
        eligible_screening(hemoglobin_g_l=131),
        reason="Hb re-measured",
        expected_version=1,
    )
    page = signed_in(client, staff["monitor"]).get("/patients/S01-LUN-001/audit/")
    html = page.content.decode()
    assert "Hb re-measured" in html
    assert "Haemoglobin (g/L): 128 → 131" in html
    records = [row.record for row, _ in page.context["rows"]]
    assert records[:2] == ["Patient", "Screening"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", ""),
        ("get", "audit/"),
        ("post", "screening/"),
        ("post", "randomize/"),
        ("post", "sign/"),
        ("post", "signatures/1/unlock/"),
    ],
)
def test_another_sites_patient_is_not_found(
    client: Client, staff: Staff, sites: Sites, method: str, path: str
) -> None:
    uppsala = services.register_patient(staff["uppsala"], sites["Uppsala"], "S01-UPP-001", "male")
    services.record_screening(staff["uppsala"], uppsala, eligible_screening())
    signed_in(client, staff["investigator"])  # Lund
    response = getattr(client, method)(f"/patients/S01-UPP-001/{path}", {"password": PASSWORD})
    assert response.status_code == 404
    # exactly as for a patient that does not exist at all
    assert getattr(client, method)(f"/patients/S01-UPP-999/{path}").status_code == 404
    assert not Signature.objects.exists()
    assert Screening.objects.get(patient=uppsala).version == 1


def test_the_screening_form_holds_every_record_field_once() -> None:
    names = [name for _, group in SCREENING_GROUPS for name in group]
    assert len(names) == len(set(names))
    assert set(names) == set(ScreeningRecord.model_fields) - {"sex"}
