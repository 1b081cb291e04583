"""Source-data verification: a monitor marks a record verified at its version; a later
correction (a higher version) counts it as not verified until verified again; progress by
site and form, counted by hand; refused for other roles."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client

from startrt.validation import InvalidInputError
from startrt.web.monitoring import services as monitoring
from startrt.web.monitoring.models import Verification
from startrt.web.trial import services as trial
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import AuditEntry, Consent, Patient, Site
from support.records import eligible_screening

Staff = dict[str, User]
Sites = dict[str, Site]


def _consent(user: User, patient: Patient, day: str) -> Consent:
    return trial.record_consent(user, patient, {"form_version": "1.0", "signed_on": day})


@pytest.fixture
def records(staff: Staff, sites: Sites) -> dict[str, Consent]:
    """Two Lund consents (one patient screened), one Uppsala consent."""
    nurse, uppsala = staff["nurse"], staff["uppsala"]
    lund_1 = trial.register_patient(nurse, sites["Lund"], "S01-LUN-001", "male")
    lund_2 = trial.register_patient(nurse, sites["Lund"], "S01-LUN-002", "female")
    upp_1 = trial.register_patient(uppsala, sites["Uppsala"], "S01-UPP-001", "male")
    trial.record_screening(nurse, lund_1, eligible_screening())
    return {
        "lund_1": _consent(nurse, lund_1, "2025-02-20"),
        "lund_2": _consent(nurse, lund_2, "2025-02-21"),
        "upp_1": _consent(uppsala, upp_1, "2025-02-22"),
    }


def _progress(user: User) -> set[tuple[str, str, int, int, int]]:
    rows = monitoring.sdv_progress(Patient.objects.all())
    return {(r.site, r.form, r.verified, r.total, r.percent_verified) for r in rows}


def test_verification_resets_on_a_correction_and_counts_by_site_and_form(
    staff: Staff, records: dict[str, Consent]
) -> None:
    monitor, nurse = staff["monitor"], staff["nurse"]
    monitoring.verify(monitor, records["lund_1"], expected_version=1)
    monitoring.verify(monitor, records["upp_1"], expected_version=1)
    # by hand: Lund 1 of 2 consents, 0 of 1 screening; Uppsala 1 of 1 consent
    assert _progress(monitor) == {
        ("Lund", "Consent", 1, 2, 50),
        ("Lund", "Screening", 0, 1, 0),
        ("Uppsala", "Consent", 1, 1, 100),
    }
    assert monitoring.is_verified(records["lund_1"])
    corrected = trial.change_consent(
        nurse,
        records["lund_1"],
        {"form_version": "1.0", "signed_on": "2025-02-19"},
        reason="Source says 19 Feb",
        expected_version=1,
    )
    assert not monitoring.is_verified(corrected)
    assert ("Lund", "Consent", 0, 2, 0) in _progress(monitor)
    with pytest.raises(StaleVersionError):  # verified what the monitor saw: version 1
        monitoring.verify(monitor, corrected, expected_version=1)
    again = monitoring.verify(monitor, corrected, expected_version=2)
    assert (again.record_version, again.version) == (2, 2)
    assert ("Lund", "Consent", 1, 2, 50) in _progress(monitor)
    with pytest.raises(InvalidInputError) as twice:
        monitoring.verify(monitor, corrected, expected_version=2)
    assert twice.value.field == "record_version"
    entries = AuditEntry.objects.filter(table="monitoring_verification").order_by("pk")
    assert [(e.action, e.username, (e.new or {})["record_version"]) for e in entries] == [
        ("insert", "monitor", 1),
        ("insert", "monitor", 1),
        ("update", "monitor", 2),
    ]
    assert entries.last().reason == "verified again at version 2 (verified at version 1)"


def test_only_monitors_and_administrators_verify(staff: Staff, records: dict[str, Consent]) -> None:
    for user in (staff["nurse"], staff["investigator"], staff["statistician"]):
        with pytest.raises(PermissionDenied):
            monitoring.verify(user, records["lund_1"], expected_version=1)
    assert not Verification.objects.exists()


def test_the_pages_verify_and_show_progress(
    staff: Staff, records: dict[str, Consent], client: Client
) -> None:
    consent = records["lund_2"]
    verify_url = f"/patients/S01-LUN-002/monitoring/trial.consent/{consent.pk}/verify/"
    client.force_login(staff["nurse"])
    page = client.get("/patients/S01-LUN-002/monitoring/").content.decode()
    assert "not verified" in page
    assert "Mark verified" not in page
    assert client.post(verify_url, {"expected_version": 1}).status_code == 403
    client.force_login(staff["monitor"])
    done = client.post(verify_url, {"expected_version": 1}, follow=True).content.decode()
    assert "Consent of 2025-02-21 marked verified." in done
    assert Verification.objects.get().record_version == 1
    client.force_login(staff["uppsala"])
    assert client.post(verify_url, {"expected_version": 1}).status_code == 404
    sdv = client.get("/sdv/").content.decode()
    assert "Lund" not in sdv
    assert "<td>Uppsala</td><td>Consent</td><td>0</td><td>1</td><td>0</td>" in sdv
    client.force_login(staff["monitor"])
    sdv = client.get("/sdv/").content.decode()
    assert "<td>Lund</td><td>Consent</td><td>1</td><td>2</td><td>50</td>" in sdv
