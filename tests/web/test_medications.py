"""Concomitant medications on the configured database (SQLite by default; PostgreSQL with
STARTRT_DATABASE_URL): entry, change, stop, the prohibited-therapy deviation with its decision,
the investigator's acknowledgement, permissions, audit, refusals and nothing half-written.

The first cycle's day is set by creating cycle 1 directly (the planner's path is tested in
test_treatment.py); the expected findings are worked out by hand from the dates."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from startrt.protocol.vocabulary import TherapyFinding
from startrt.validation import InvalidInputError
from startrt.web.events import services as events
from startrt.web.medications import services
from startrt.web.medications.models import ConcomitantMedication, MedicationDeviation
from startrt.web.pages.worklist import worklists
from startrt.web.treatment import services as treatment
from startrt.web.treatment.models import Cycle
from startrt.web.trial import services as trial
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import AuditEntry, Decision, Patient, Site
from support.records import eligible_screening
from web.conftest import Randomized
from web.test_page_text import crawl

Staff = dict[str, User]
Sites = dict[str, Site]
FIRST_CYCLE = date(2025, 4, 1)
OUR_PAGES = re.compile(r"/medications/|/audit/|/patients/[^/]+/$")


def octreotide(**changes: Any) -> dict[str, Any]:
    return {
        "drug_name": "Octreotide",
        "atc_code": "H01CB02",
        "indication": "carcinoid syndrome",
        "start_date": "2023-05-10",
        "dose": "30 mg every 4 weeks",
        "route": "intramuscular",
        **changes,
    }


def everolimus(**changes: Any) -> dict[str, Any]:
    return {
        "drug_name": "Everolimus",
        "atc_code": "L01EG02",
        "indication": "pancreatic NET",
        "start_date": "2024-10-01",
        **changes,
    }


@contextmanager
def refused(field: str) -> Iterator[None]:
    """The block raises InvalidInputError naming `field`, with a rule."""
    with pytest.raises(InvalidInputError) as error:
        yield
    assert error.value.field == field, error.value
    assert error.value.rule


def with_first_cycle(patient: Patient, day: date = FIRST_CYCLE) -> Patient:
    Cycle.objects.create(patient=patient, number=1, planned_date=day, planned_activity_gbq=7.5)
    return patient


def test_an_allowed_medication_is_recorded_audited_and_decided(
    staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    medication = services.record_medication(staff["nurse"], patient, octreotide())
    assert medication.finding == TherapyFinding.ALLOWED
    assert medication.ongoing
    assert medication.route == "intramuscular"
    assert not MedicationDeviation.objects.exists()
    entry = AuditEntry.objects.get(table=medication._meta.db_table, action="insert")
    assert (entry.username, entry.new["atc_code"]) == ("nurse.lund", "H01CB02")
    decision = Decision.objects.filter(patient=patient, kind="concomitant_therapy").get()
    assert decision.protocol == "START-01 v1.0"
    assert decision.record["finding"] == "allowed"
    assert decision.record["inputs"]["first_cycle_date"] == "2025-04-01"


def test_a_prohibited_therapy_is_a_deviation_until_acknowledged(
    staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    medication = services.record_medication(staff["nurse"], patient, everolimus())
    assert medication.finding == TherapyFinding.CONCOMITANT
    deviation = MedicationDeviation.objects.get(medication=medication)
    assert deviation.finding == "concomitant"
    assert deviation.awaiting_acknowledgement
    assert "ATC L01" in deviation.description
    assert deviation.decision["finding"] == "concomitant"
    tasks = [item.task for items in worklists(staff["investigator"]) for item in items.items]
    assert "Acknowledge the prohibited-therapy deviation: Everolimus" in tasks

    with pytest.raises(PermissionDenied):  # the nurse enters, the investigator acknowledges
        services.acknowledge_deviation(staff["nurse"], deviation, reason="seen", expected_version=1)
    with refused("reason"):
        services.acknowledge_deviation(
            staff["investigator"], deviation, reason="  ", expected_version=1
        )
    with pytest.raises(StaleVersionError):
        services.acknowledge_deviation(
            staff["investigator"], deviation, reason="stopped", expected_version=2
        )
    done = services.acknowledge_deviation(
        staff["investigator"],
        deviation,
        reason="Everolimus stopped; patient informed",
        expected_version=1,
    )
    assert (done.acknowledged_by, done.version) == ("investigator.lund", 2)
    assert done.acknowledgement == "Everolimus stopped; patient informed"
    entry = AuditEntry.objects.filter(table=done._meta.db_table, action="update").get()
    assert entry.reason == "acknowledged: Everolimus stopped; patient informed"
    tasks = [item.task for items in worklists(staff["investigator"]) for item in items.items]
    assert not [task for task in tasks if "prohibited-therapy" in task]
    with refused("deviation"):
        services.acknowledge_deviation(
            staff["investigator"], done, reason="again", expected_version=2
        )


def test_washout_boundary_in_the_service(staff: Staff, randomized: Randomized) -> None:
    patient = with_first_cycle(randomized(False))
    short = services.record_medication(
        staff["nurse"], patient, everolimus(stop_date=str(FIRST_CYCLE - timedelta(27)))
    )
    enough = services.record_medication(
        staff["nurse"], patient, everolimus(stop_date=str(FIRST_CYCLE - timedelta(28)))
    )
    assert (short.finding, enough.finding) == (
        TherapyFinding.WASHOUT,
        TherapyFinding.PRIOR_THERAPY,
    )
    assert list(MedicationDeviation.objects.values_list("medication", flat=True)) == [short.pk]


def test_a_correction_withdraws_the_deviation_with_the_reason(
    staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    medication = services.record_medication(staff["nurse"], patient, everolimus())
    with refused("reason"):
        services.change_medication(
            staff["nurse"],
            medication,
            everolimus(stop_date="2025-01-01"),
            reason="",
            expected_version=1,
        )
    with pytest.raises(StaleVersionError):
        services.change_medication(
            staff["nurse"],
            medication,
            everolimus(stop_date="2025-01-01"),
            reason="x",
            expected_version=3,
        )
    changed = services.change_medication(
        staff["nurse"],
        medication,
        everolimus(stop_date="2025-01-01"),
        reason="stop date found in the referral letter",
        expected_version=1,
    )
    assert (changed.finding, changed.version) == (TherapyFinding.PRIOR_THERAPY, 2)
    deviation = MedicationDeviation.objects.get()
    assert deviation.withdrawn_at is not None
    assert deviation.withdrawn_reason.startswith("stop date found in the referral letter")
    assert not services.awaiting_acknowledgement(Patient.objects.all()).exists()


def test_stop_an_ongoing_medication(staff: Staff, randomized: Randomized) -> None:
    patient = with_first_cycle(randomized(False))
    medication = services.record_medication(staff["nurse"], patient, octreotide())
    with refused("stop_date"):
        services.stop_medication(staff["nurse"], medication, "2023-05-09", expected_version=1)
    stopped = services.stop_medication(staff["nurse"], medication, "2025-01-15", expected_version=1)
    assert stopped.stop_date == date(2025, 1, 15)
    assert stopped.drug_name == "Octreotide"
    entry = AuditEntry.objects.filter(table=stopped._meta.db_table, action="update").get()
    assert (entry.reason, entry.new["stop_date"]) == ("stopped", "2025-01-15")
    with refused("stop_date"):
        services.stop_medication(staff["nurse"], stopped, "2025-01-20", expected_version=2)


def test_pending_until_the_first_cycle_then_reassessed(staff: Staff, sites: Sites) -> None:
    patient = trial.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-050", "female")
    medication = services.record_medication(staff["nurse"], patient, everolimus())
    assert medication.finding == TherapyFinding.PENDING
    assert not MedicationDeviation.objects.exists()
    with_first_cycle(patient)
    changed = services.reassess(staff["nurse"], patient)
    assert [m.pk for m in changed] == [medication.pk]
    assert MedicationDeviation.objects.get().finding == "concomitant"
    assert services.reassess(staff["nurse"], patient) == []  # nothing changed since


def test_the_planned_start_from_screening_is_the_first_cycle_day(
    staff: Staff, sites: Sites
) -> None:
    patient = trial.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-051", "male")
    trial.record_screening(
        staff["nurse"], patient, eligible_screening(planned_start_date="2025-03-20")
    )
    # stopped 2025-02-21: 27 days before 2025-03-20 (February 2025 has 28 days)
    medication = services.record_medication(
        staff["nurse"], patient, everolimus(stop_date="2025-02-21")
    )
    assert medication.finding == TherapyFinding.WASHOUT


def test_refusals_name_field_value_rule_and_keep_nothing(
    staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(True))  # CAP-dTOC: capecitabine is the protocol's
    tomorrow_plus = timezone.localdate() + timedelta(days=3)
    cases = [
        ("atc_code", everolimus(atc_code="L1")),
        ("atc_code", everolimus(atc_code="L03AB")),
        ("stop_date", everolimus(start_date="2025-01-10", stop_date="2025-01-09")),
        ("start_date", everolimus(start_date=tomorrow_plus.isoformat())),
        ("start_date", everolimus(start_date="1890-01-01")),
        ("indication", everolimus(indication="")),
        ("drug_name", everolimus(drug_name="177Lu-DOTATOC", atc_code="V10XX")),
        ("atc_code", everolimus(drug_name="Capecitabine", atc_code="L01BC06")),
    ]
    for field, data in cases:
        with refused(field):
            services.record_medication(staff["nurse"], patient, data)
    assert not ConcomitantMedication.objects.exists()
    assert not MedicationDeviation.objects.exists()
    assert not Decision.objects.filter(kind="concomitant_therapy").exists()
    assert not AuditEntry.objects.filter(table="medications_concomitantmedication").exists()


def test_capecitabine_outside_the_cap_arm_is_prohibited(
    staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    medication = services.record_medication(
        staff["nurse"], patient, everolimus(drug_name="Capecitabine", atc_code="L01BC06")
    )
    assert medication.finding == TherapyFinding.CONCOMITANT


def test_roles_and_sites(staff: Staff, randomized: Randomized) -> None:
    patient = with_first_cycle(randomized(False))
    for who in ("monitor", "statistician", "uppsala"):
        with pytest.raises(PermissionDenied):
            services.record_medication(staff[who], patient, octreotide())
    medication = services.record_medication(staff["investigator"], patient, octreotide())
    assert list(events.visible(staff["monitor"], ConcomitantMedication)) == [medication]
    assert not events.visible(staff["uppsala"], ConcomitantMedication).exists()
    with pytest.raises(PermissionDenied):
        services.change_medication(
            staff["uppsala"], medication, octreotide(), reason="x", expected_version=1
        )


def test_subsequent_therapy_after_the_end_of_treatment(
    staff: Staff, randomized: Randomized
) -> None:
    from startrt.web.events import services as events

    patient = randomized(False)
    Cycle.objects.create(
        patient=patient,
        number=1,
        planned_date=date(2025, 4, 1),
        planned_activity_gbq=7.5,
        status=Cycle.Status.ADMINISTERED,
        administered_activity_gbq=7.4,
        infusion_start=datetime(2025, 4, 2, 9, tzinfo=timezone.get_current_timezone()),
        infusion_end=datetime(2025, 4, 2, 10, tzinfo=timezone.get_current_timezone()),
    )
    day = timezone.localdate()  # randomized today: the end of treatment is not before it
    events.record_end_of_treatment(
        staff["investigator"], patient, {"date": day.isoformat(), "reason": "progression"}
    )
    later = services.record_medication(
        staff["nurse"], patient, everolimus(start_date=(day + timedelta(1)).isoformat())
    )
    assert later.finding == TherapyFinding.SUBSEQUENT_THERAPY
    same_day = services.record_medication(
        staff["nurse"], patient, everolimus(start_date=day.isoformat())
    )
    assert same_day.finding == TherapyFinding.CONCOMITANT
    # the infusion day (2 April), not the planned day, is the first cycle's day
    assert services.first_cycle_date(patient) == date(2025, 4, 2)


# --- pages ----------------------------------------------------------------------------------


def page_url(patient: Patient, tail: str = "") -> str:
    return f"/patients/{patient.trial_id}/medications/{tail}"


def test_pages_add_flag_change_stop_and_acknowledge(
    client: Client, staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    client.force_login(staff["nurse"])
    patient_page = client.get(f"/patients/{patient.trial_id}/").content.decode()
    assert page_url(patient) in patient_page
    page = client.get(page_url(patient)).content.decode()
    assert '<option value="Octreotide" data-atc="H01CB02">' in page
    assert "medication_picker.js" in page

    bad = client.post(page_url(patient, "add/"), everolimus(atc_code="L1"))
    assert bad.status_code == 422
    assert "must be an ATC code" in bad.content.decode()
    assert not ConcomitantMedication.objects.exists()

    assert client.post(page_url(patient, "add/"), octreotide()).status_code == 302
    assert client.post(page_url(patient, "add/"), everolimus(route="")).status_code == 302
    page = client.get(page_url(patient)).content.decode()
    assert "Protocol deviation: prohibited therapy during the treatment" in page
    assert "systemic anti-tumour therapy other than somatostatin analogues" in page
    assert "Awaiting the investigator's acknowledgement" in page
    assert "Acknowledge the deviation" not in page  # the nurse does not acknowledge

    octreotide_row = ConcomitantMedication.objects.get(atc_code="H01CB02")
    stop = client.post(
        page_url(patient, f"{octreotide_row.pk}/stop/"),
        {"stop_date": "2025-05-01", "expected_version": 1},
    )
    assert stop.status_code == 302
    octreotide_row.refresh_from_db()
    assert octreotide_row.stop_date == date(2025, 5, 1)

    everolimus_row = ConcomitantMedication.objects.get(atc_code="L01EG02")
    change_url = page_url(patient, f"{everolimus_row.pk}/")
    assert client.get(change_url).status_code == 200
    no_reason = client.post(change_url, {**everolimus(), "expected_version": 1})
    assert no_reason.status_code == 422
    assert not MedicationDeviation.objects.exclude(withdrawn_at=None).exists()

    deviation = MedicationDeviation.objects.get()
    client.force_login(staff["investigator"])
    page = client.get(page_url(patient)).content.decode()
    assert "Acknowledge the deviation" in page
    acknowledge = f"/patients/{patient.trial_id}/medication-deviations/{deviation.pk}/acknowledge/"
    assert client.post(acknowledge, {"reason": "", "expected_version": 1}).status_code == 422
    done = client.post(acknowledge, {"reason": "Everolimus stopped", "expected_version": 1})
    assert done.status_code == 302
    page = client.get(page_url(patient)).content.decode()
    assert "Acknowledged by investigator.lund" in page


def test_pages_for_readers_and_other_sites(
    client: Client, staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    services.record_medication(staff["nurse"], patient, everolimus())
    client.force_login(staff["monitor"])
    page = client.get(page_url(patient))
    assert page.status_code == 200
    assert "Everolimus" in page.content.decode()
    assert "Save medication" not in page.content.decode()
    assert client.post(page_url(patient, "add/"), octreotide()).status_code == 403
    client.force_login(staff["uppsala"])
    assert client.get(page_url(patient)).status_code == 404
    assert client.post(page_url(patient, "add/"), octreotide()).status_code == 404


# --- API ------------------------------------------------------------------------------------


def test_api_records_corrects_and_acknowledges(
    client: Client, staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    url = f"/api/patients/{patient.trial_id}"
    client.force_login(staff["nurse"])
    bad = client.post(
        f"{url}/medications", {"record": everolimus(atc_code="L1")}, content_type="application/json"
    )
    assert bad.status_code == 422
    assert (bad.json()["field"], bad.json()["value"]) == ("atc_code", "L1")
    made = client.post(
        f"{url}/medications", {"record": everolimus()}, content_type="application/json"
    )
    assert made.status_code == 201
    body = made.json()
    assert (body["atc_code"], body["finding"], body["route"]) == ("L01EG02", "concomitant", "")
    listed = client.get(f"{url}/medications").json()
    assert [row["drug_name"] for row in listed] == ["Everolimus"]
    deviations = client.get(f"{url}/medication-deviations").json()
    assert [(d["finding"], d["acknowledged_by"]) for d in deviations] == [("concomitant", "")]
    acknowledge = f"{url}/medication-deviations/{deviations[0]['id']}/acknowledge"
    payload = {"reason": "stopped", "expected_version": 1}
    refused_for_nurse = client.post(acknowledge, payload, content_type="application/json")
    assert refused_for_nurse.status_code == 403

    stale = client.put(
        f"{url}/medications/{body['id']}",
        {"record": everolimus(stop_date="2025-01-01"), "reason": "letter", "expected_version": 5},
        content_type="application/json",
    )
    assert stale.status_code == 409
    client.force_login(staff["investigator"])
    done = client.post(acknowledge, payload, content_type="application/json")
    assert done.status_code == 200
    assert done.json()["acknowledged_by"] == "investigator.lund"
    client.force_login(staff["uppsala"])
    assert client.get(f"{url}/medications").status_code == 404


def test_pages_show_no_field_names_ids_or_reprs(
    client: Client, staff: Staff, randomized: Randomized
) -> None:
    """The crawl of tests/web/test_page_text.py over a patient with every kind of finding, a
    corrected medication, a withdrawn and an acknowledged deviation (and their audit trail)."""
    patient = with_first_cycle(randomized(False))
    services.record_medication(staff["nurse"], patient, octreotide())
    washout = services.record_medication(
        staff["nurse"], patient, everolimus(stop_date=str(FIRST_CYCLE - timedelta(27)))
    )
    services.change_medication(
        staff["nurse"],
        washout,
        everolimus(stop_date=str(FIRST_CYCLE - timedelta(60))),
        reason="stop date corrected from the referral letter",
        expected_version=1,
    )
    services.record_medication(staff["nurse"], patient, everolimus(drug_name="Sunitinib"))
    standing = MedicationDeviation.objects.get(withdrawn_at=None)
    services.acknowledge_deviation(
        staff["investigator"], standing, reason="stopped", expected_version=1
    )
    services.record_medication(staff["nurse"], patient, everolimus(atc_code="L01EX01"))
    other = trial.register_patient(staff["nurse"], patient.site, "S01-LUN-060", "female")
    services.record_medication(staff["nurse"], other, everolimus())  # pending
    for who in ("nurse", "investigator", "monitor"):
        client.force_login(staff[who])
        visited, found = crawl(client)
        ours = {url: problems for url, problems in found.items() if OUR_PAGES.search(url)}
        assert visited > 5
        assert not ours, ours


def test_a_change_keeping_the_finding_keeps_the_acknowledged_deviation(
    staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    medication = services.record_medication(
        staff["nurse"], patient, everolimus(stop_date=str(FIRST_CYCLE - timedelta(10)))
    )
    first = MedicationDeviation.objects.get()
    assert first.finding == "washout"
    services.acknowledge_deviation(staff["investigator"], first, reason="seen", expected_version=1)
    services.change_medication(
        staff["nurse"],
        medication,
        everolimus(stop_date=str(FIRST_CYCLE - timedelta(12)), dose="10 mg daily"),
        reason="stop date and dose from the pharmacy record",
        expected_version=1,
    )
    assert list(MedicationDeviation.objects.values_list("pk", "withdrawn_at")) == [(first.pk, None)]
    services.change_medication(
        staff["nurse"],
        medication,
        everolimus(),
        reason="still taken: the stop was a pause",
        expected_version=2,
    )
    old, new = MedicationDeviation.objects.order_by("pk")
    assert old.withdrawn_at is not None
    assert old.withdrawn_reason.startswith("still taken: the stop was a pause")
    assert (new.finding, new.acknowledged_at) == ("concomitant", None)
    decisions = Decision.objects.filter(patient=patient, kind="concomitant_therapy")
    assert [d.record["finding"] for d in decisions.order_by("pk")] == [
        "washout",
        "washout",
        "concomitant",
    ]


def test_moving_the_first_cycle_checks_the_medications_again(
    staff: Staff, randomized: Randomized
) -> None:
    patient = with_first_cycle(randomized(False))
    # stopped 2025-02-20: 40 days before the first cycle on 2025-04-01, past the 28-day washout
    medication = services.record_medication(
        staff["nurse"], patient, everolimus(stop_date="2025-02-20")
    )
    assert medication.finding == TherapyFinding.PRIOR_THERAPY
    cycle = Cycle.objects.get(patient=patient, number=1)
    treatment.reschedule_cycle(
        staff["investigator"],
        cycle,
        planned_date=date(2025, 3, 10),  # 18 days after the stop: within the washout
        reason="slot on the ward",
        expected_version=cycle.version,
        accept_deviation=True,
    )
    medication.refresh_from_db()
    assert medication.finding == TherapyFinding.WASHOUT
    deviation = MedicationDeviation.objects.get(medication=medication)
    assert deviation.finding == "washout"
    entry = AuditEntry.objects.filter(table=medication._meta.db_table, action="update").get()
    assert entry.reason == "checked again against the first cycle and the end of treatment"
