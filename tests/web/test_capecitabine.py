"""Capecitabine of the CAP-dTOC arm through the services, the JSON API and the page: the library's
assessment shown before prescribing (BSA, CrCl, tablets per administration, renal adjustment,
contraindications with reasons), prescription by a pharmacist, dispensing up to the course,
and refusals for another arm or a cycle past the fourth.

START-01 v1.0: capecitabine 825 mg/m2 twice daily (DuBois BSA) for 14 days with cycles 1-4,
75 % in moderate renal impairment (CrCl 30-50 ml/min), contraindicated below 30 ml/min."""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from startrt.protocol.capecitabine import CapecitabineDecision
from startrt.validation import InvalidInputError
from startrt.web.treatment import capecitabine, services
from startrt.web.treatment.models import CapecitabinePrescription, Cycle, Dispensing
from startrt.web.trial.models import AuditEntry, Patient
from web.test_treatment import GOOD_LABS, Sites, Staff, at, planned_cycle, randomized

BODY: dict[str, Any] = {"weight_kg": 78, "height_cm": 178, "age_years": 64, "creatinine_umol_l": 85}
# Moderate renal impairment, male: CrCl (140 - 70) x 60 x 1.23 / 150 = 34.44 ml/min -> 75 %.
# DuBois 0.007184 x 60^0.425 x 170^0.725 = 0.007184 x 5.6978 x 41.407 = 1.6949 m2;
# target 1.6949 x 825 x 0.75 = 1048.7 mg per administration (2097.5 mg daily). Whole tablets
# (500 mg + at most three 150 mg; the evening equal or one 150 mg tablet more): equal doses
# need 1048.7 -> 1000 + 1000 = 2000 (97.5 off); one 150 more: 1000 + 1150 = 2150 (52.5 off;
# 950 + 1100 cannot be made): chosen. 800 + 1300 = 2100 (2.5 off) is 500 mg apart, which a
# pharmacist would query: not a candidate. Course: 14 x (2 + 2) = 56 x 500 mg and
# 14 x (0 + 1) = 14 x 150 mg.
MODERATE: dict[str, Any] = {
    "weight_kg": 60,
    "height_cm": 170,
    "age_years": 70,
    "creatinine_umol_l": 150,
}
PATIENT_URL = "/api/patients/S01-LUN-002"
PAGE = "/patients/S01-LUN-002/treatment/capecitabine/"


@pytest.fixture
def cap_patient(team: Staff, sites: Sites) -> Patient:
    """S01-LUN-002: personalized arm, FDG-PET positive: CAP-dTOC, cycle 1 planned."""
    patient = randomized(team, sites, 2, fdg_positive=True)
    planned_cycle(team, patient)
    return patient


def cycle_of(patient: Patient, number: int = 1) -> Cycle:
    return Cycle.objects.get(patient=patient, number=number)


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def test_capecitabine_for_cap_dtoc_only_dosed_by_bsa_and_dispensed_up_to_the_course(
    team: Staff, sites: Sites, cap_patient: Patient
) -> None:
    dtoc = randomized(team, sites, 1)
    with pytest.raises(InvalidInputError, match="arm dTOC gives no capecitabine"):
        capecitabine.prescribe_capecitabine(team["pharmacist"], planned_cycle(team, dtoc), **BODY)
    assert services.treatment_arm(cap_patient).id == "CAP-dTOC"
    cycle = cycle_of(cap_patient)
    with pytest.raises(PermissionDenied):
        capecitabine.prescribe_capecitabine(team["nurse"], cycle, **BODY)
    prescription = capecitabine.prescribe_capecitabine(team["pharmacist"], cycle, **BODY)
    # DuBois: 0.007184 x 78^0.425 x 178^0.725 = 1.9591 m2; x 825 mg/m2 = 1616.3 mg per dose.
    # CrCl (140 - 64) x 78 x 1.23 / 85 = 85.8 ml/min > 50: no renal reduction. Doses of 500 mg
    # tablets and at most three 150 mg: 1650 + 1650 = 3300 mg daily is 67.4 mg from 2 x
    # 1616.3 (1500 + 1650 = 3150: 82.6 off) -> 3 x 500 + 1 x 150 morning and evening
    # The prescription stores the protocol's decision record: inputs, rule, protocol version.
    stored = prescription.dose
    assert (stored["kind"], stored["protocol"]) == ("capecitabine", "START-01 v1.0")
    assert "825 mg/m2" in stored["rule"]
    assert stored["inputs"]["creatinine_umol_l"] == 85
    assert CapecitabineDecision.model_validate(stored).prescribable
    assert stored["bsa_m2"] == pytest.approx(1.9591, abs=1e-4)
    assert stored["crcl_ml_min"] == pytest.approx(85.78, abs=0.01)
    assert stored["crcl_source"] == "Cockcroft-Gault"
    dose = stored["dose"]
    assert dose["target_mg"] == pytest.approx(1616.3, abs=0.1)
    assert (dose["morning_mg"], dose["evening_mg"]) == (1650, 1650)
    assert dose["tablets_morning"] == {"500": 3, "150": 1}
    # 14 days x 2 doses: 84 x 500 mg and 28 x 150 mg
    assert capecitabine.prescribed_tablets(prescription) == {500: 84, 150: 28}
    with pytest.raises(PermissionDenied):
        capecitabine.dispense(team["investigator"], prescription, tablets_500=84, tablets_150=28)
    capecitabine.dispense(team["pharmacist"], prescription, tablets_500=80, tablets_150=28)
    with pytest.raises(InvalidInputError) as refused:
        capecitabine.dispense(team["pharmacist"], prescription, tablets_500=5, tablets_150=0)
    assert refused.value.field == "tablets_500"
    with pytest.raises(InvalidInputError, match="tablets_150"):
        capecitabine.dispense(team["pharmacist"], prescription, tablets_500=0, tablets_150=-1)
    capecitabine.dispense(team["pharmacist"], prescription, tablets_500=4, tablets_150=0)
    assert Dispensing.objects.filter(prescription=prescription).count() == 2
    assert capecitabine.dispensed_tablets(prescription) == {500: 84, 150: 28}
    with pytest.raises(InvalidInputError, match="already has"):
        capecitabine.prescribe_capecitabine(team["investigator"], cycle, **BODY)
    fifth = Cycle.objects.create(
        patient=cap_patient, number=5, planned_date=date(2026, 1, 5), planned_activity_gbq=7.5
    )
    with pytest.raises(InvalidInputError, match="cycles 1-4 only"):
        capecitabine.prescribe_capecitabine(team["pharmacist"], fifth, **BODY)
    assert CapecitabinePrescription.objects.count() == 1
    inserts = AuditEntry.objects.filter(table="treatment_dispensing", action="insert")
    assert [entry.new["tablets_500"] for entry in inserts.order_by("id")] == [80, 4]


def test_the_assessment_applies_the_renal_reduction_and_stores_nothing(
    team: Staff, cap_patient: Patient
) -> None:
    assessment = capecitabine.assess_capecitabine(
        team["pharmacist"], cycle_of(cap_patient), **MODERATE
    )
    assert assessment.crcl_ml_min == pytest.approx(34.44, abs=0.01)
    assert assessment.bsa_m2 == pytest.approx(1.6949, abs=1e-4)
    dose = assessment.dose
    assert dose is not None
    assert dose.renal_factor == 0.75
    assert dose.target_mg == pytest.approx(1048.7, abs=0.1)
    assert (dose.morning_mg, dose.evening_mg) == (1000, 1150)
    assert (dose.tablets_morning, dose.tablets_evening) == ({500: 2, 150: 0}, {500: 2, 150: 1})
    assert assessment.course_tablets == {500: 56, 150: 14}
    assert any("75 %" in note for note in dose.notes)
    assert (assessment.contraindications, assessment.prescribable) == ((), True)
    assert (assessment.kind, assessment.cycle_number, assessment.arm) == (
        "capecitabine",
        1,
        "CAP-dTOC",
    )
    assert not CapecitabinePrescription.objects.exists()
    with pytest.raises(PermissionDenied):  # the assessment is the prescriber's
        capecitabine.assess_capecitabine(team["nurse"], cycle_of(cap_patient), **MODERATE)


def test_contraindications_are_shown_with_reasons_and_refuse_the_prescription(
    team: Staff, cap_patient: Patient
) -> None:
    cycle = cycle_of(cap_patient)
    # pre-cycle platelets 80 < 100 x10^9/L: do not start (SmPC 4.2)
    low = {**GOOD_LABS, "platelets_10e9_l": 80}
    services.record_labs(
        team["nurse"], cap_patient, low, drawn_at=at(cycle.planned_date - timedelta(7)), cycle=cycle
    )
    # CrCl (140 - 64) x 60 x 1.23 / 200 = 28.0 ml/min < 30: contraindicated, no dose computed
    severe = {**BODY, "weight_kg": 60, "creatinine_umol_l": 200}
    assessment = capecitabine.assess_capecitabine(team["pharmacist"], cycle, **severe)
    assert assessment.dose is None
    found = {item.field: item.reason for item in assessment.contraindications}
    assert set(found) == {"crcl_ml_min", "platelets_10e9_l"}
    assert "severe renal impairment" in found["crcl_ml_min"]
    assert "platelets 80 x10^9/L < 100" in found["platelets_10e9_l"]
    with pytest.raises(InvalidInputError, match="severe renal impairment") as refused:
        capecitabine.prescribe_capecitabine(team["pharmacist"], cycle, **severe)
    assert refused.value.field == "crcl_ml_min"
    assert [error.field for error in refused.value.errors] == ["crcl_ml_min", "platelets_10e9_l"]
    with pytest.raises(InvalidInputError) as refused:  # good kidneys, low platelets: refused
        capecitabine.prescribe_capecitabine(team["pharmacist"], cycle, **BODY)
    assert (refused.value.field, refused.value.value) == ("platelets_10e9_l", 80)
    assert not CapecitabinePrescription.objects.exists()


def test_the_api_assesses_prescribes_and_dispenses(team: Staff, cap_patient: Patient) -> None:
    pharmacist = client_for(team["pharmacist"])
    url = f"{PATIENT_URL}/cycles/1/capecitabine"
    assessed = pharmacist.post(f"{url}/assessment", MODERATE, content_type="application/json")
    assert assessed.status_code == 200
    body = assessed.json()
    assert (body["prescribable"], body["contraindications"]) == (True, [])
    assert (body["kind"], body["protocol"], body["inputs"]["age_years"]) == (
        "capecitabine",
        "START-01 v1.0",
        70,
    )
    assert (body["dose"]["morning_mg"], body["dose"]["evening_mg"]) == (1000, 1150)
    assert body["dose"]["tablets_evening"] == {"500": 2, "150": 1}
    assert body["course_tablets"] == {"500": 56, "150": 14}
    assert not CapecitabinePrescription.objects.exists()
    prescribed = pharmacist.post(url, MODERATE, content_type="application/json")
    assert prescribed.status_code == 201
    assert prescribed.json()["course_tablets"] == {"500": 56, "150": 14}
    nurse = client_for(team["nurse"])
    course = {"tablets_500": 56, "tablets_150": 14}
    refused = nurse.post(f"{url}/dispensings", course, content_type="application/json")
    assert refused.status_code == 403
    given = pharmacist.post(f"{url}/dispensings", course, content_type="application/json")
    assert (given.status_code, given.json()["dispensed_by"]) == (201, "pharmacist.lund")
    more = {"tablets_500": 1, "tablets_150": 0}
    too_many = pharmacist.post(f"{url}/dispensings", more, content_type="application/json")
    assert (too_many.status_code, too_many.json()["field"]) == (422, "tablets_500")
    [listed] = nurse.get(f"{PATIENT_URL}/capecitabine").json()
    assert (listed["cycle"], listed["dispensed_tablets"]) == (1, {"500": 56, "150": 14})
    assert client_for(team["uppsala"]).get(f"{PATIENT_URL}/capecitabine").status_code == 404


def test_the_api_refuses_another_arm_and_a_fifth_cycle(
    team: Staff, sites: Sites, cap_patient: Patient
) -> None:
    pharmacist = client_for(team["pharmacist"])
    planned_cycle(team, randomized(team, sites, 1))  # S01-LUN-001: dTOC
    other = pharmacist.post(
        "/api/patients/S01-LUN-001/cycles/1/capecitabine/assessment",
        BODY,
        content_type="application/json",
    )
    assert other.status_code == 422
    assert (other.json()["field"], other.json()["rule"]) == (
        "arm_id",
        "arm dTOC gives no capecitabine",
    )
    Cycle.objects.create(
        patient=cap_patient, number=5, planned_date=date(2026, 1, 5), planned_activity_gbq=7.5
    )
    fifth = pharmacist.post(
        f"{PATIENT_URL}/cycles/5/capecitabine", BODY, content_type="application/json"
    )
    assert (fifth.status_code, fifth.json()["rule"]) == (422, "capecitabine in cycles 1-4 only")
    missing = pharmacist.post(
        f"{PATIENT_URL}/cycles/1/capecitabine/dispensings",
        {"tablets_500": 1, "tablets_150": 0},
        content_type="application/json",
    )
    assert missing.status_code == 404
    assert not CapecitabinePrescription.objects.exists()


def test_the_page_shows_the_assessment_then_prescribes_and_dispenses(
    team: Staff, cap_patient: Patient
) -> None:
    pharmacist = client_for(team["pharmacist"])
    page = pharmacist.get(PAGE)
    html = page.content.decode()
    assert page.status_code == 200
    # the form starts from the screening record's weight, height and age
    assert 'name="weight_kg" value="78.0"' in html
    assessed = pharmacist.get(PAGE, {"cycle": 1, **MODERATE})
    html = assessed.content.decode()
    assert assessed.status_code == 200
    assert "1000 mg morning, 1150 mg evening" in html
    assert "No contraindication found." in html
    assert not CapecitabinePrescription.objects.exists()
    # "Prescribe this course" posts the values assessed, from the page's hidden inputs
    form = re.search(
        r'<form method="post" class="prescribe" action="([^"]+)">(.*?)</form>', html, re.S
    )
    assert form is not None
    values = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', form.group(2)))
    assert values == {
        "csrfmiddlewaretoken": values["csrfmiddlewaretoken"],
        "weight_kg": "60.0",
        "height_cm": "170.0",
        "age_years": "70.0",
        "creatinine_umol_l": "150.0",
        "dose_level_percent": "100",
    }
    prescribed = pharmacist.post(form.group(1), values)
    assert (prescribed.status_code, prescribed["Location"]) == (302, PAGE)
    dispensed = pharmacist.post(
        "/patients/S01-LUN-002/treatment/cycles/1/capecitabine/dispense/",
        {"tablets_500": 56, "tablets_150": 15},
    )
    assert dispensed.status_code == 422
    assert "the course prescribes 14 x 150 mg" in dispensed.content.decode()
    pharmacist.post(
        "/patients/S01-LUN-002/treatment/cycles/1/capecitabine/dispense/",
        {"tablets_500": 56, "tablets_150": 14},
    )
    html = pharmacist.get(PAGE).content.decode()
    assert "Prescribed by pharmacist.lund" in html
    assert '<td class="dispensed-500">56</td>' in html


def test_the_page_refuses_another_arm_and_a_fifth_cycle_with_a_message(
    team: Staff, sites: Sites, cap_patient: Patient
) -> None:
    pharmacist = client_for(team["pharmacist"])
    planned_cycle(team, randomized(team, sites, 1))
    other = pharmacist.get("/patients/S01-LUN-001/treatment/capecitabine/")
    assert "Arm dTOC gives no capecitabine." in other.content.decode()
    prescribe = pharmacist.post("/patients/S01-LUN-001/treatment/cycles/1/capecitabine/", BODY)
    assert prescribe.status_code == 422
    assert "arm dTOC gives no capecitabine" in prescribe.content.decode()
    Cycle.objects.create(
        patient=cap_patient, number=5, planned_date=date(2026, 1, 5), planned_activity_gbq=7.5
    )
    fifth = pharmacist.post("/patients/S01-LUN-002/treatment/cycles/5/capecitabine/", BODY)
    assert fifth.status_code == 422
    assert "capecitabine in cycles 1-4 only" in fifth.content.decode()
    refused = pharmacist.get(PAGE, {"cycle": 1, **BODY, "creatinine_umol_l": 5000})
    assert refused.status_code == 422
    assert "creatinine_umol_l" in refused.content.decode()
    assert not CapecitabinePrescription.objects.exists()
