"""The home page: each role's worklist (tasks due today or overdue, each linked, only for the
patients of the sites where the user holds the role; a read-only overdue overview for the
all-site roles) and the patient list's columns, in a fixed number of queries.

Dates by hand (START-01 v1.0): pre-cycle labs 7 days before the planned date; dosimetry due on
the day of the last imaging session, 168 h = 7 days after the infusion; capecitabine with its
cycle in CAP-dTOC cycles 1-4."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import expect

from startrt.web.pages.worklist import WorkItem, patient_rows, patients_for_list, worklists
from startrt.web.treatment import capecitabine, services
from startrt.web.treatment.models import Cycle
from startrt.web.trial import services as trial_services
from startrt.web.trial.models import Patient, Role
from support.records import eligible_screening
from web.conftest import make_user
from web.test_browser import Screenshots, chromium_page, sign_in
from web.test_treatment import Sites, Staff, give, labs_go, planned_cycle, randomized, release

LAB_DAY = date(2025, 3, 10)  # cycle 1 planned on 2025-03-17


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def items_of(user: User, today: date, title: str) -> list[WorkItem]:
    lists = {worklist.title: worklist.items for worklist in worklists(user, today)}
    return list(lists[title])


def tasks(items: list[WorkItem]) -> list[tuple[str, str, str, int]]:
    return [(i.trial_id, i.task, i.due.isoformat(), i.days_overdue) for i in items]


@pytest.fixture
def three_cycles(team: Staff, sites: Sites) -> list[Cycle]:
    """Cycle 1 of three Lund patients, planned on 2025-03-17, 03-14 and 03-24."""
    days = (date(2025, 3, 17), date(2025, 3, 14), date(2025, 3, 24))
    return [
        planned_cycle(team, randomized(team, sites, number), planned_date=day)
        for number, day in enumerate(days, start=1)
    ]


def test_nurse_labs_due_today_overdue_and_not_yet_due(
    team: Staff, three_cycles: list[Cycle]
) -> None:
    nurse = items_of(team["nurse"], LAB_DAY, "Research nurse")
    assert tasks(nurse) == [
        ("S01-LUN-002", "Enter pre-cycle labs for cycle 1", "2025-03-07", 3),
        ("S01-LUN-001", "Enter pre-cycle labs for cycle 1", "2025-03-10", 0),
    ]  # S01-LUN-003's labs are due on 2025-03-17
    assert nurse[0].url == "/patients/S01-LUN-002/treatment/cycles/1/"
    labs_go(team, three_cycles[0])  # drawn 2025-03-10: nothing left to enter for it
    later = items_of(team["nurse"], date(2025, 3, 17), "Research nurse")
    assert tasks(later) == [
        ("S01-LUN-002", "Enter pre-cycle labs for cycle 1", "2025-03-07", 10),
        ("S01-LUN-003", "Enter pre-cycle labs for cycle 1", "2025-03-17", 0),
    ]


def test_investigator_releases_on_go_labs_and_randomizes(
    team: Staff, sites: Sites, three_cycles: list[Cycle]
) -> None:
    labs_go(team, three_cycles[0])
    waiting = trial_services.register_patient(team["nurse"], sites["Lund"], "S01-LUN-009", "male")
    trial_services.record_screening(team["nurse"], waiting, eligible_screening())
    investigator = items_of(team["investigator"], date(2025, 3, 17), "Investigator")
    release_task = ("S01-LUN-001", "Release cycle 1 (sign)", "2025-03-17", 0)
    assert tasks(investigator)[0] == release_task
    assert [i.task for i in investigator[1:]] == ["Randomize (sign)"]
    assert investigator[1].url == "/patients/S01-LUN-009/"
    assert not investigator[1].scheduled  # the protocol gives a randomization no date
    # the day before the planned date the release is not yet due
    earlier = items_of(team["investigator"], date(2025, 3, 16), "Investigator")
    assert release_task[1] not in [i.task for i in earlier]
    # once released, the nurse records the administration on the planned date
    release(team["investigator"], three_cycles[0])
    assert "Release cycle 1 (sign)" not in [
        i.task for i in items_of(team["investigator"], date(2025, 3, 17), "Investigator")
    ]
    nurse = items_of(team["nurse"], date(2025, 3, 18), "Research nurse")
    assert ("S01-LUN-001", "Record the administration of cycle 1", "2025-03-17", 1) in tasks(nurse)


def test_physicist_dosimetry_due_after_the_last_imaging_then_the_next_plan(
    team: Staff, sites: Sites
) -> None:
    patient = randomized(team, sites, 1)
    physicist = items_of(team["physicist"], date(2025, 3, 1), "Medical physicist")
    assert [(i.trial_id, i.task) for i in physicist] == [
        ("S01-LUN-001", "Propose the plan for cycle 1")
    ]
    proposal = services.propose_next_cycle(team["physicist"], patient)
    physicist = items_of(team["physicist"], date(2025, 3, 1), "Medical physicist")
    assert [i.task for i in physicist] == ["Accept or override the plan for cycle 1"]
    assert physicist[0].url == "/patients/S01-LUN-001/treatment/cycles/1/"
    services.accept_proposal(team["physicist"], proposal, expected_version=proposal.version)
    cycle = give(team, Cycle.objects.get(patient=patient, number=1), 7.5)  # on 2025-03-17
    assert tasks(items_of(team["physicist"], date(2025, 3, 23), "Medical physicist")) == []
    due = items_of(team["physicist"], date(2025, 3, 25), "Medical physicist")
    assert tasks(due) == [
        ("S01-LUN-001", "Enter or upload the dosimetry of cycle 1", "2025-03-24", 1)
    ]
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=4.2, right_kidney_dose_gy=3.9
    )
    after = items_of(team["physicist"], date(2025, 3, 25), "Medical physicist")
    assert [i.task for i in after] == ["Propose the plan for cycle 2"]


def test_a_superseded_proposal_is_proposed_again(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    cycle = give(team, planned_cycle(team, patient), 7.5)
    result = services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=4.2, right_kidney_dose_gy=3.9
    )
    services.propose_next_cycle(team["physicist"], patient)
    today = date(2025, 3, 25)
    assert [i.task for i in items_of(team["physicist"], today, "Medical physicist")] == [
        "Accept or override the plan for cycle 2"
    ]
    services.record_dosimetry(
        team["physicist"],
        cycle,
        left_kidney_dose_gy=4.4,
        right_kidney_dose_gy=3.9,
        reason="VOI redrawn",
        expected_version=result.version,
    )
    assert [i.task for i in items_of(team["physicist"], today, "Medical physicist")] == [
        "Propose the plan for cycle 2"
    ]


def test_an_unsigned_deviation_comes_before_the_release(team: Staff, sites: Sites) -> None:
    patient = randomized(team, sites, 1)
    proposal = services.propose_next_cycle(team["physicist"], patient)
    services.override_proposal(
        team["physicist"],
        proposal,
        reason="large tumour burden",
        activity_gbq=8.0,
        expected_version=proposal.version,
    )  # above the proposed 7.5 GBq: a deviation for the investigator to sign
    cycle = Cycle.objects.get(patient=patient, number=1)
    labs_go(team, cycle)
    investigator = items_of(team["investigator"], date(2025, 3, 17), "Investigator")
    deviation = cycle.deviations.get()
    assert tasks(investigator) == [
        ("S01-LUN-001", "Sign the protocol deviation of cycle 1", "2025-03-17", 0)
    ]
    assert investigator[0].url.endswith(f"/cycles/1/#deviation-{deviation.pk}")


def test_pharmacist_prescribes_then_dispenses_for_cap_arm_cycles(team: Staff, sites: Sites) -> None:
    with_cap = randomized(team, sites, 1, fdg_positive=True)  # CAP-dTOC
    without = randomized(team, sites, 2)  # dTOC
    for patient in (with_cap, without):
        cycle = planned_cycle(team, patient)
        labs_go(team, cycle)
        release(team["investigator"], cycle)
    pharmacist = items_of(team["pharmacist"], date(2025, 3, 17), "Pharmacist")
    assert tasks(pharmacist) == [
        ("S01-LUN-001", "Prescribe capecitabine for cycle 1", "2025-03-17", 0)
    ]
    assert pharmacist[0].url == "/patients/S01-LUN-001/treatment/capecitabine/"
    cycle = Cycle.objects.get(patient=with_cap, number=1)
    prescription = capecitabine.prescribe_capecitabine(
        team["pharmacist"], cycle, weight_kg=78, height_cm=178, age_years=64, creatinine_umol_l=85
    )
    pharmacist = items_of(team["pharmacist"], date(2025, 3, 18), "Pharmacist")
    assert tasks(pharmacist) == [
        ("S01-LUN-001", "Dispense capecitabine for cycle 1", "2025-03-17", 1)
    ]
    capecitabine.dispense(team["pharmacist"], prescription, tablets_500=56, tablets_150=0)
    assert items_of(team["pharmacist"], date(2025, 3, 18), "Pharmacist") == []


def test_visibility_follows_the_sites_of_each_role(
    team: Staff, sites: Sites, three_cycles: list[Cycle]
) -> None:
    uppsala_nurse = make_user("nurse.uppsala", Role.RESEARCH_NURSE, sites["Uppsala"])
    trial_services.register_patient(uppsala_nurse, sites["Uppsala"], "S01-UPP-001", "female")
    lund = items_of(team["nurse"], LAB_DAY, "Research nurse")
    assert {i.trial_id for i in lund} == {"S01-LUN-001", "S01-LUN-002"}
    uppsala = items_of(uppsala_nurse, LAB_DAY, "Research nurse")
    assert tasks(uppsala) == [
        ("S01-UPP-001", "Enter the screening record", uppsala[0].due.isoformat(), 0)
    ]
    assert items_of(team["uppsala"], LAB_DAY, "Investigator") == []
    # the all-site roles: overdue tasks of every site only, no worklist of a site role
    titles = [w.title for w in worklists(team["monitor"], LAB_DAY)]
    assert titles == ["Overdue at every site (read-only overview)"]
    overview = items_of(team["monitor"], LAB_DAY, titles[0])
    assert tasks(overview) == [("S01-LUN-002", "Enter pre-cycle labs for cycle 1", "2025-03-07", 3)]
    assert overview[0].site == "Lund"


def test_patient_list_columns(team: Staff, sites: Sites) -> None:
    treated = randomized(team, sites, 1)  # dTOC
    cycle = give(team, planned_cycle(team, treated), 7.5)
    services.record_dosimetry(
        team["physicist"], cycle, left_kidney_dose_gy=3.861330716659756, right_kidney_dose_gy=2.5
    )
    randomized(team, sites, 2)
    screened = trial_services.register_patient(team["nurse"], sites["Lund"], "S01-LUN-003", "male")
    trial_services.record_screening(team["nurse"], screened, eligible_screening(ecog=2))
    rows = {
        row.patient.trial_id: row
        for row in patient_rows(patients_for_list(Patient.objects.order_by("trial_id")))
    }
    first = rows["S01-LUN-001"]
    assert (first.status, first.current_cycle, first.next_cycle_date) == (
        "on treatment",
        "1 (administered)",
        None,
    )
    assert first.arm.startswith("dTOC: ")
    # the limit reads the mean: (3.8613 + 2.5) / 2 = 3.1807 Gy, / 30 Gy = 10.60 %
    assert (first.kidney_dose, first.percent_of_limit) == ("3.18 Gy (mean)", "10.6 %")
    assert first.kidney_limit_state == "within"
    second = rows["S01-LUN-002"]
    assert (second.status, second.current_cycle, second.kidney_dose) == ("randomized", "", "")
    third = rows["S01-LUN-003"]
    assert (third.status, third.arm) == ("screening", "")  # ineligible: never an arm


def test_home_page_shows_the_worklist_and_columns_in_few_queries(
    team: Staff, sites: Sites, django_assert_max_num_queries: object
) -> None:
    cycle = planned_cycle(team, randomized(team, sites, 1))
    Patient.objects.bulk_create(
        Patient(trial_id=f"S01-LUN-{number:03d}", site=sites["Lund"], sex="female")
        for number in range(100, 149)
    )
    client = signed_in(team["nurse"])
    client.get("/")  # session and protocol caches warmed
    # 20, and 6 for the forms due (web/pages/missing_data.with_entries)
    with django_assert_max_num_queries(26):  # type: ignore[operator]
        page = client.get("/?page=1")
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="worklist"' in html
    assert f'href="/patients/S01-LUN-001/treatment/cycles/{cycle.number}/"' in html
    assert "Enter pre-cycle labs for cycle 1" in html
    assert "2025-03-17" in html  # the next cycle's planned date in the list
    for heading in ("Status", "Arm", "Current cycle", "Next cycle", "Cumulative kidney dose"):
        assert heading in html


def test_patient_page_verdict_above_failing_and_missing_rows(team: Staff, sites: Sites) -> None:
    patient = trial_services.register_patient(team["nurse"], sites["Lund"], "S01-LUN-005", "male")
    record = eligible_screening(prior_prrt=True, ast_u_l_uln=None)
    trial_services.record_screening(team["nurse"], patient, record)
    html = signed_in(team["nurse"]).get("/patients/S01-LUN-005/").content.decode()
    verdict = "Not eligible: Earlier PRRT: yes (exclusion); missing AST ULN (U/L)"
    assert f'class="verdict eligible-no">{verdict}</p>' in html
    assert "not eligible · all inclusion criteria met" not in html  # issue 14
    rows = re.findall(r'<td class="mono">(\w+)</td>', html)
    assert rows[:2] == ["EX02", "IN17"]
    assert html.index("eligibility-verdict") < html.index('<td class="mono">EX02')


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_chromium_the_nurse_sees_her_tasks_and_the_verdict(
    live_server: Any, flushable_audit_trail: None, team: Staff, sites: Sites, tmp_path: Path
) -> None:
    planned_cycle(team, randomized(team, sites, 1))  # labs due 2025-03-10: overdue today
    ineligible = trial_services.register_patient(
        team["nurse"], sites["Lund"], "S01-LUN-005", "female"
    )
    record = eligible_screening(measured_gfr_ml_min_173=38, platelets_10e9_l=None)
    trial_services.record_screening(team["nurse"], ineligible, record)
    with chromium_page() as page:
        screenshot = Screenshots(page, tmp_path)
        sign_in(page, live_server.url, "nurse.lund")
        task = page.locator("#worklist a", has_text="Enter pre-cycle labs for cycle 1")
        expect(task).to_have_attribute("href", "/patients/S01-LUN-001/treatment/cycles/1/")
        expect(page.locator("#worklist tr.overdue")).to_contain_text("days overdue")
        expect(page.locator("table.patients")).to_contain_text("randomized")
        screenshot("home_nurse")
        page.click("table.patients a:text('S01-LUN-005')")
        expect(page.locator("#eligibility-verdict")).to_have_text(
            "Not eligible: GFR 38 mL/min/1.73 m² (inclusion: > 50); missing Platelets (10⁹/L)"
        )
        first_rows = page.locator("#eligibility tbody tr td.mono")
        expect(first_rows.nth(0)).to_have_text("IN12")
        expect(first_rows.nth(1)).to_have_text("IN14")
        screenshot("ineligible_patient")
    screenshot.check_written()
