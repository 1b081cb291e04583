"""The physicist's override checked against the planner's proposal and the 30 Gy renal limit
(issue 10: 15 GBq planned for a patient already at 30.25 Gy, unchecked and unrecorded): a
deviation is recorded with its reason, and the cycle is neither released nor given until the
investigator signs it with the password; nurses and physicists cannot sign. Shown on the
course page, in the API and in the analysis dataset.

START-01 v1.0: 7.5 GBq cycles, cumulative mean-kidney absorbed dose <= 30 Gy."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client

from startrt.validation import InvalidInputError
from startrt.web.exports.analysis_dataset import trial_dataset
from startrt.web.exports.csv_export import export_csv
from startrt.web.exports.odm_export import export_odm
from startrt.web.signing import services as signing
from startrt.web.signing.models import Meaning, Signature
from startrt.web.treatment import services
from startrt.web.treatment.models import Cycle, Deviation, PlanProposal
from startrt.web.trial.models import AuditEntry, Decision, Patient
from web.test_treatment import (
    PASSWORD,
    Sites,
    Staff,
    at,
    give,
    labs_go,
    planned_cycle,
    randomized,
    release,
    request_by,
)

PAGE = "/patients/S01-LUN-001/treatment/"
API = "/api/patients/S01-LUN-001"


def after_cycles(team: Staff, patient: Patient, *kidney_gy: float) -> PlanProposal:
    """Full cycles of 7.5 GBq with the given mean kidney doses, then the next proposal."""
    for dose in kidney_gy:
        cycle = give(team, planned_cycle(team, patient), 7.5)
        services.record_dosimetry(
            team["physicist"], cycle, left_kidney_dose_gy=dose, right_kidney_dose_gy=dose
        )
    return services.propose_next_cycle(team["physicist"], patient)


def override(team: Staff, proposal: PlanProposal, activity_gbq: float, reason: str) -> Cycle:
    services.override_proposal(
        team["physicist"],
        proposal,
        reason=reason,
        activity_gbq=activity_gbq,
        expected_version=proposal.version,
    )
    return Cycle.objects.get(patient=proposal.patient, number=proposal.for_cycle)


def sign(user: User, deviation: Deviation, password: str = PASSWORD) -> Deviation:
    return services.sign_deviation(
        request_by(user),
        deviation,
        password=password,
        expected_version=deviation.version,
    )


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    return randomized(team, sites, 1)


def test_above_the_proposal_the_cycle_waits_for_the_investigators_signature(
    team: Staff, patient: Patient
) -> None:
    # after cycle 1: 4.5 Gy at 0.6 Gy/GBq; the planner proposes a full 7.5 GBq (9.0 Gy)
    proposal = after_cycles(team, patient, 4.5)
    assert (proposal.plan["action"], proposal.plan["activity_gbq"]) == ("full", 7.5)
    reason = "large tumour burden: 8 GBq agreed at the board"
    cycle = override(team, proposal, 8.0, reason)
    assert (cycle.status, cycle.planned_activity_gbq) == ("planned", 8.0)
    deviation = Deviation.objects.get(cycle=cycle)
    assert (deviation.kind, deviation.reason, deviation.recorded_by) == (
        "activity",
        reason,
        "physicist.lund",
    )
    assert deviation.description == "8 GBq is above the planner's 7.5 GBq (full)"
    assert deviation.predicted_cumulative_kidney_gy == 9.3  # 4.5 + 0.6 x 8
    assert deviation.decision["exceeded"] == ["above_proposal"]
    assert deviation.decision["inputs"]["plan"] == proposal.plan
    assert deviation.awaiting_signature
    # not released, so not given: the release is refused until the deviation is signed
    labs_go(team, cycle)
    with pytest.raises(InvalidInputError, match="awaiting the investigator's signature"):
        release(team["investigator"], cycle)
    assert not Signature.objects.filter(kind="treatment.cycle", record_id=str(cycle.pk)).exists()
    # nurses and physicists cannot sign; a wrong password signs nothing
    for role in ("nurse", "physicist", "pharmacist"):
        with pytest.raises(PermissionDenied):
            sign(team[role], deviation)
    with pytest.raises(signing.SignatureRefusedError, match="password"):
        sign(team["investigator"], deviation, password="wrong")
    deviation.refresh_from_db()
    assert (deviation.signed_by, deviation.signed_at, deviation.version) == ("", None, 1)
    assert not Signature.objects.filter(kind="treatment.deviation").exists()
    signed = sign(team["investigator"], deviation)
    assert signed.signed_by == "investigator.lund"
    assert signed.signed_at is not None
    assert not signed.awaiting_signature
    signature = Signature.objects.get(kind="treatment.deviation", record_id=str(deviation.pk))
    assert (signature.meaning, signature.signer_username) == (
        Meaning.APPROVAL,
        "investigator.lund",
    )
    entry = AuditEntry.objects.get(
        table="treatment_deviation", row_id=str(deviation.pk), action="update"
    )
    assert entry.reason == f"protocol deviation of cycle 2 signed: {reason}"
    with pytest.raises(InvalidInputError, match=r"was signed by investigator\.lund"):
        sign(team["investigator"], signed)
    # now the cycle is released and given as planned
    released = release(team["investigator"], Cycle.objects.get(pk=cycle.pk))
    given = services.record_administration(
        team["nurse"],
        released,
        activity_gbq=8.0,
        lot="LU-2025-18",
        infusion_start=at(released.planned_date),
        infusion_end=at(released.planned_date, 9, 30),
        expected_version=released.version,
    )
    assert given.status == Cycle.Status.ADMINISTERED


def test_a_plan_past_30_gy_at_30_25_gy_already_is_flagged(team: Staff, patient: Patient) -> None:
    # 15 + 15.25 = 30.25 Gy after two cycles (2.03333 Gy/GBq): the planner stops
    proposal = after_cycles(team, patient, 15.0, 15.25)
    assert (proposal.plan["action"], proposal.plan["cumulative_kidney_gy"]) == ("stop", 30.25)
    cycle = override(team, proposal, 15.0, "patient's wish after informed discussion")
    deviation = Deviation.objects.get(cycle=cycle)
    # 30.25 + 2.03333 x 15 = 60.75 Gy
    assert deviation.predicted_cumulative_kidney_gy == 60.75
    assert deviation.decision["exceeded"] == ["above_proposal", "kidney_limit"]
    assert "60.75 Gy, exceeds the limit of 30 Gy" in deviation.description
    stored = Decision.objects.filter(patient=patient, kind="activity_check").get()
    assert stored.record == deviation.decision
    labs_go(team, cycle)
    with pytest.raises(InvalidInputError, match=f"sign deviation {deviation.pk} first"):
        release(team["investigator"], cycle)


def test_an_override_within_the_proposal_and_the_limit_is_no_deviation(
    team: Staff, patient: Patient
) -> None:
    proposal = after_cycles(team, patient, 4.5)
    cycle = override(team, proposal, 5.0, "platelets recovering slowly")
    assert not Deviation.objects.exists()
    check = Decision.objects.get(patient=patient, kind="activity_check")
    assert check.record["exceeded"] == []
    assert check.record["predicted_cumulative_kidney_gy"] == 7.5  # 4.5 + 0.6 x 5
    labs_go(team, cycle)
    assert release(team["investigator"], cycle).released_by == "investigator.lund"


def test_a_cancelled_cycle_withdraws_its_deviation(team: Staff, patient: Patient) -> None:
    cycle = override(team, services.propose_next_cycle(team["physicist"], patient), 9.0, "r")
    deviation = Deviation.objects.get(cycle=cycle)  # 9 GBq above the first full 7.5 GBq
    services.cancel_cycle(
        team["investigator"], cycle, reason="patient withdrew", expected_version=cycle.version
    )
    deviation.refresh_from_db()
    assert deviation.withdrawn_reason == "cycle 1 cancelled: patient withdrew"
    assert not Deviation.objects.standing().exists()
    with pytest.raises(InvalidInputError, match="was withdrawn: nothing to sign"):
        sign(team["investigator"], deviation)


def test_the_course_page_shows_the_deviation_and_the_investigator_signs_it(
    team: Staff, patient: Patient
) -> None:
    cycle = override(team, after_cycles(team, patient, 4.5), 8.0, "agreed at the board")
    deviation = Deviation.objects.get(cycle=cycle)
    nurse = Client()
    nurse.force_login(team["nurse"])
    cycle_page = f"{PAGE}cycles/{cycle.number}/"
    html = nurse.get(cycle_page).content.decode()
    assert "Protocol deviation: 8 GBq is above the planner&#x27;s 7.5 GBq (full)" in html
    assert "Reason: agreed at the board" in html
    assert "Awaiting the investigator's signature" in html
    assert "sign-deviation" not in html  # no form for a nurse
    url = f"{PAGE}deviations/{deviation.pk}/sign/"
    data = {"expected_version": "1", "password": PASSWORD}
    assert nurse.post(url, data).status_code == 403
    investigator = Client()
    investigator.force_login(team["investigator"])
    waiting = investigator.get(cycle_page).content.decode()
    assert 'class="sign-deviation"' in waiting
    assert 'class="release"' not in waiting  # the release follows the signature
    refused = investigator.post(url, {**data, "password": "wrong"})
    assert refused.status_code == 422
    signed = investigator.post(url, data)
    assert (signed.status_code, signed["Location"]) == (302, f"{cycle_page}#deviations")
    html = investigator.get(cycle_page).content.decode()
    assert "Signed by investigator.lund on" in html
    assert "Next step: <strong>Enter the pre-cycle labs.</strong>" in html  # then the release
    assert "Awaiting the investigator" not in html
    labs_go(team, Cycle.objects.get(pk=cycle.pk))
    assert 'class="release"' in investigator.get(cycle_page).content.decode()


def test_the_api_lists_the_deviation_and_only_an_investigator_signs_it(
    team: Staff, patient: Patient
) -> None:
    cycle = override(team, after_cycles(team, patient, 4.5), 8.0, "agreed at the board")
    deviation = Deviation.objects.get(cycle=cycle)
    physicist, investigator = Client(), Client()
    physicist.force_login(team["physicist"])
    investigator.force_login(team["investigator"])
    (listed,) = physicist.get(f"{API}/deviations").json()
    assert (listed["cycle"], listed["kind"], listed["awaiting_signature"]) == (2, "activity", True)
    (_, second) = physicist.get(f"{API}/cycles").json()
    assert second["deviations"][0]["reason"] == "agreed at the board"
    url = f"{API}/deviations/{deviation.pk}/sign"
    body = {"expected_version": 1, "password": PASSWORD}
    assert physicist.post(url, body, content_type="application/json").status_code == 403
    assert (
        investigator.post(f"{API}/deviations/999/sign", body, "application/json").status_code == 404
    )
    signed = investigator.post(url, body, content_type="application/json")
    assert signed.status_code == 200
    assert (signed.json()["signed_by"], signed.json()["awaiting_signature"]) == (
        "investigator.lund",
        False,
    )
    stale = investigator.post(url, body, content_type="application/json")
    assert stale.status_code == 409


def test_the_analysis_dataset_carries_the_deviation_with_its_signer(
    team: Staff, patient: Patient
) -> None:
    cycle = override(team, after_cycles(team, patient, 15.0, 15.25), 15.0, "patient's wish")
    deviation = sign(team["investigator"], Deviation.objects.get(cycle=cycle))
    assert deviation.signed_at is not None
    dataset = trial_dataset(deviation.signed_at.date())
    (row,) = dataset.deviations.to_dict("records")
    assert (row["trial_id"], row["cycle"], row["kind"]) == ("S01-LUN-001", 3, "activity")
    assert (row["reason"], row["signed_by"]) == ("patient's wish", "investigator.lund")
    assert row["predicted_cumulative_kidney_gy"] == 60.75
    assert row["planned_activity_gbq"] == 15.0


def test_the_exports_carry_the_deviation(team: Staff, patient: Patient, tmp_path: Path) -> None:
    cycle = override(team, after_cycles(team, patient, 4.5), 8.0, "agreed at the board")
    sign(team["investigator"], Deviation.objects.get(cycle=cycle))
    export_csv(team["monitor"], tmp_path)
    with (tmp_path / "treatment_deviation.csv").open(encoding="utf-8") as handle:
        (row,) = csv.DictReader(handle)
    assert (row["trial_id"], row["kind"], row["reason"]) == (
        "S01-LUN-001",
        "activity",
        "agreed at the board",
    )
    assert (row["recorded_by"], row["signed_by"]) == ("physicist.lund", "investigator.lund")
    assert json.loads(row["decision"])["exceeded"] == ["above_proposal"]
    odm = export_odm(team["monitor"]).decode()
    assert 'Value="agreed at the board"' in odm
