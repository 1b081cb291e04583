"""Adverse events, RECIST assessments, end of treatment, follow-up and death on the configured
database (SQLite by default; PostgreSQL with STARTRT_DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from startrt.protocol.vocabulary import EndOfTreatmentReason
from startrt.validation import InvalidInputError
from startrt.web.events import services
from startrt.web.events.models import AdverseEvent, Death, EndOfTreatment, TumourAssessment
from startrt.web.trial import services as trial
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import AuditEntry, Decision, Site
from web.conftest import Randomized

Staff = dict[str, User]
Sites = dict[str, Site]


def adverse_event(**changes: Any) -> dict[str, Any]:
    """A non-serious grade 2 event of a patient without capecitabine, resolved after a week."""
    data: dict[str, Any] = {
        "term": "Nausea",
        "ctcae_grade": 2,
        "onset_date": "2025-06-02",
        "resolved_date": "2025-06-09",
        "serious": False,
        "seriousness_criteria": [],
        "attribution_prrt": "possible",
        "attribution_capecitabine": "not_applicable",
        "outcome": "recovered",
    }
    data.update(changes)
    return data


@contextmanager
def refused(field: str) -> Iterator[None]:
    """The block raises InvalidInputError naming `field` (or an item of it: "field.0")."""
    with pytest.raises(InvalidInputError) as error:
        yield
    named = error.value.field
    assert named == field or named.startswith(f"{field}."), error.value


def test_adverse_event_entry_and_a_change_with_reason_and_version(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    event = services.report_adverse_event(staff["nurse"], patient, adverse_event())
    assert (event.ctcae_grade, event.version, event.serious) == (2, 1, False)
    insert = AuditEntry.objects.get(table="events_adverseevent", action="insert")
    assert (insert.username, insert.patient_trial_id) == ("nurse.lund", patient.trial_id)
    assert insert.new["term"] == "Nausea"
    with refused("reason"):
        services.change_adverse_event(
            staff["nurse"], event, adverse_event(ctcae_grade=3), reason=" ", expected_version=1
        )
    with pytest.raises(StaleVersionError, match="at version 1"):
        services.change_adverse_event(
            staff["nurse"], event, adverse_event(ctcae_grade=3), reason="x", expected_version=0
        )
    changed = services.change_adverse_event(
        staff["investigator"],
        event,
        adverse_event(ctcae_grade=3),
        reason="grade per source notes: 3",
        expected_version=1,
    )
    assert (changed.ctcae_grade, changed.version) == (3, 2)
    update = AuditEntry.objects.get(table="events_adverseevent", action="update")
    assert (update.reason, update.username) == ("grade per source notes: 3", "investigator.lund")
    assert (update.old["ctcae_grade"], update.new["ctcae_grade"]) == (2, 3)
    assert (update.old["version"], update.new["version"]) == (1, 2)
    # a second edit from the stale version 1 is refused: nothing silently overwritten
    with pytest.raises(StaleVersionError, match="at version 2"):
        services.change_adverse_event(
            staff["nurse"], event, adverse_event(ctcae_grade=1), reason="x", expected_version=1
        )
    assert AdverseEvent.objects.get(pk=event.pk).ctcae_grade == 3
    with pytest.raises(PermissionDenied):  # monitors read, never write
        services.report_adverse_event(staff["monitor"], patient, adverse_event())


def test_a_serious_event_needs_a_seriousness_criterion(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    with refused("seriousness_criteria"):
        services.report_adverse_event(staff["nurse"], patient, adverse_event(serious=True))
    with refused("seriousness_criteria"):
        services.report_adverse_event(
            staff["nurse"], patient, adverse_event(seriousness_criteria=["hospitalisation"])
        )
    with refused("seriousness_criteria"):
        services.report_adverse_event(
            staff["nurse"],
            patient,
            adverse_event(serious=True, seriousness_criteria=["hospitalisation"] * 2),
        )
    with refused("seriousness_criteria"):  # not a criterion of ICH E2A
        services.report_adverse_event(
            staff["nurse"], patient, adverse_event(serious=True, seriousness_criteria=["severe"])
        )
    event = services.report_adverse_event(
        staff["nurse"],
        patient,
        adverse_event(ctcae_grade=3, serious=True, seriousness_criteria=["hospitalisation"]),
    )
    assert event.seriousness_criteria == ["hospitalisation"]
    assert AdverseEvent.objects.get(pk=event.pk).seriousness_criteria == ["hospitalisation"]


def test_event_dates_are_plausible(staff: Staff, randomized: Randomized) -> None:
    patient = randomized(False)
    today = timezone.localdate()
    with pytest.raises(InvalidInputError, match="must not be before onset_date") as error:
        services.report_adverse_event(
            staff["nurse"], patient, adverse_event(resolved_date="2025-06-01")
        )
    assert (error.value.field, error.value.value) == ("resolved_date", "2025-06-01")
    same_day = services.report_adverse_event(  # resolved on the day of onset: accepted
        staff["nurse"], patient, adverse_event(resolved_date="2025-06-02")
    )
    assert same_day.resolved_date == same_day.onset_date
    with refused("onset_date"):
        services.report_adverse_event(
            staff["nurse"],
            patient,
            adverse_event(onset_date=(today + timedelta(days=2)).isoformat(), resolved_date=None),
        )
    ongoing = adverse_event(onset_date=today.isoformat(), resolved_date=None, outcome="recovering")
    assert services.report_adverse_event(staff["nurse"], patient, ongoing).onset_date == today
    with refused("resolved_date"):  # recovered needs the resolution date
        services.report_adverse_event(staff["nurse"], patient, adverse_event(resolved_date=None))
    with refused("onset_date"):
        services.report_adverse_event(staff["nurse"], patient, adverse_event(onset_date="02/06"))


def test_attribution_follows_the_arm(staff: Staff, sites: Sites, randomized: Randomized) -> None:
    standard, cap_dtoc = randomized(False), randomized(True)
    with refused("attribution_capecitabine"):
        services.report_adverse_event(
            staff["nurse"], standard, adverse_event(attribution_capecitabine="possible")
        )
    with refused("attribution_capecitabine"):
        services.report_adverse_event(staff["nurse"], cap_dtoc, adverse_event())
    with refused("attribution_prrt"):
        services.report_adverse_event(
            staff["nurse"],
            cap_dtoc,
            adverse_event(attribution_prrt="not_applicable", attribution_capecitabine="probable"),
        )
    event = services.report_adverse_event(
        staff["nurse"], cap_dtoc, adverse_event(attribution_capecitabine="probable")
    )
    assert (event.attribution_prrt, event.attribution_capecitabine) == ("possible", "probable")
    screened = trial.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-099", "male")
    with refused("patient"):
        services.report_adverse_event(staff["nurse"], screened, adverse_event())


def test_a_fatal_event_needs_the_death_record(staff: Staff, randomized: Randomized) -> None:
    patient = randomized(False)
    today = timezone.localdate()
    fatal = adverse_event(
        term="Sepsis",
        ctcae_grade=5,
        onset_date=(today - timedelta(days=3)).isoformat(),
        resolved_date=None,
        serious=True,
        seriousness_criteria=["death", "hospitalisation"],
        outcome="fatal",
    )
    with refused("ctcae_grade"):
        services.report_adverse_event(staff["nurse"], patient, fatal)
    death = services.record_death(
        staff["investigator"],
        patient,
        {"date": today.isoformat(), "cause": "Sepsis", "related_to_treatment": True},
    )
    event = services.report_adverse_event(staff["nurse"], patient, fatal)
    assert (event.ctcae_grade, event.outcome) == (5, "fatal")
    with refused("outcome"):
        services.report_adverse_event(staff["nurse"], patient, {**fatal, "outcome": "unknown"})
    with refused("seriousness_criteria"):
        services.report_adverse_event(
            staff["nurse"], patient, {**fatal, "seriousness_criteria": ["hospitalisation"]}
        )
    with refused("serious"):
        services.report_adverse_event(
            staff["nurse"], patient, {**fatal, "serious": False, "seriousness_criteria": []}
        )
    # the death cannot be moved before an event already recorded
    with pytest.raises(InvalidInputError, match="onset_date") as error:
        services.record_death(
            staff["investigator"],
            patient,
            {"date": (today - timedelta(days=4)).isoformat(), "cause": "Sepsis"}
            | {"related_to_treatment": True},
            reason="date of death per death certificate",
            expected_version=1,
        )
    assert error.value.field == "date"
    assert Death.objects.get(pk=death.pk).version == 1


def lesion(lesion_id: str, organ: str, diameter_mm: float | None) -> dict[str, Any]:
    return {
        "id": lesion_id,
        "organ": organ,
        "lymph_node": organ == "mediastinum",
        "diameter_mm": diameter_mm,
        "target": diameter_mm is not None,
    }


def series_data(*follow_ups: dict[str, float]) -> dict[str, Any]:
    """Three targets (liver 50 mm, lung 30 mm, lymph node short axis 20 mm: sum 100 mm) and one
    non-target (bone, present throughout), with the given target measurements per follow-up."""
    dates = ["2025-04-14", "2025-07-14", "2025-10-13"]
    return {
        "baseline": {
            "date": "2025-01-13",
            "lesions": [
                lesion("L1", "liver", 50),
                lesion("L2", "lung", 30),
                lesion("N1", "mediastinum", 20),
                lesion("B1", "bone", None),
            ],
        },
        "follow_up": [
            {
                "date": dates[index],
                "target_mm": measurements,
                "non_target": {"B1": "present"},
                "new_lesions": False,
            }
            for index, measurements in enumerate(follow_ups)
        ],
    }


# FU1: 35 + 20 + 15 = 70 mm = baseline 100 mm - 30 % exactly -> PR (-30 % is PR).
PR_AT_MINUS_30 = {"L1": 35, "L2": 20, "N1": 15}
# FU2: 45 + 24 + 15 = 84 mm = nadir 70 mm + 14 mm = +20 % exactly and >= 5 mm -> PD.
PD_AT_PLUS_20 = {"L1": 45, "L2": 24, "N1": 15}
# FU2 corrected: 44 + 24 + 15 = 83 mm = nadir + 13 mm = +18.57 % (< 20 %); vs baseline -17 %
# (> -30 %) -> SD.
SD_BELOW_20 = {"L1": 44, "L2": 24, "N1": 15}


def test_recist_assessments_compute_pr_then_pd(staff: Staff, randomized: Randomized) -> None:
    patient = randomized(False)
    first = services.record_tumour_assessment(staff["nurse"], patient, series_data(PR_AT_MINUS_30))
    (fu1,) = first.response["assessments"]
    assert (fu1["sum_mm"], fu1["nadir_mm"], fu1["change_from_baseline_pct"]) == (70, 100, -30)
    assert (fu1["target"], fu1["non_target"], fu1["overall"]) == ("PR", "non-CR/non-PD", "PR")
    assert (str(first.assessment_date), first.response["best_overall"]) == ("2025-04-14", "PR")

    second = services.record_tumour_assessment(
        staff["nurse"], patient, series_data(PR_AT_MINUS_30, PD_AT_PLUS_20)
    )
    fu2 = second.response["assessments"][1]
    assert (fu2["sum_mm"], fu2["nadir_mm"], fu2["change_from_nadir_pct"]) == (84, 70, 20)
    assert (fu2["change_from_baseline_pct"], fu2["overall"]) == (-16, "PD")
    assert second.response["best_overall"] == "PR"  # best response up to the first PD
    assert TumourAssessment.objects.filter(patient=patient).count() == 2
    decisions = Decision.objects.filter(patient=patient, kind="tumour_response").order_by("pk")
    assert [d.record["response"]["assessments"][-1]["overall"] for d in decisions] == ["PR", "PD"]
    assert decisions.last().record["inputs"]["series"] == second.series

    # correcting the latest time point needs a reason and its version
    corrected_data = series_data(PR_AT_MINUS_30, SD_BELOW_20)
    with pytest.raises(StaleVersionError, match="at version 1"):
        services.record_tumour_assessment(
            staff["nurse"], patient, corrected_data, reason="x", expected_version=2
        )
    with refused("reason"):
        services.record_tumour_assessment(
            staff["nurse"], patient, corrected_data, expected_version=1
        )
    corrected = services.record_tumour_assessment(
        staff["nurse"], patient, corrected_data, reason="L1 re-measured: 44 mm", expected_version=1
    )
    assert (corrected.pk, corrected.version) == (second.pk, 2)
    assert corrected.response["assessments"][1]["sum_mm"] == 83
    assert corrected.response["assessments"][1]["overall"] == "SD"
    update = AuditEntry.objects.get(table="events_tumourassessment", action="update")
    assert update.old["series"]["follow_up"][1]["target_mm"]["L1"] == 45
    assert update.new["series"]["follow_up"][1]["target_mm"]["L1"] == 44


def test_a_new_assessment_extends_the_recorded_series(staff: Staff, randomized: Randomized) -> None:
    patient = randomized(False)
    services.record_tumour_assessment(staff["nurse"], patient, series_data(PR_AT_MINUS_30))
    changed_fu1 = {**PR_AT_MINUS_30, "L1": 36}
    with refused("series"):  # FU1 changed on the way: a silent correction
        services.record_tumour_assessment(
            staff["nurse"], patient, series_data(changed_fu1, PD_AT_PLUS_20)
        )
    with refused("follow_up"):  # two new time points at once
        services.record_tumour_assessment(
            staff["nurse"],
            patient,
            series_data(PR_AT_MINUS_30, SD_BELOW_20, PD_AT_PLUS_20),
        )
    small_node = series_data(PR_AT_MINUS_30, PD_AT_PLUS_20)
    small_node["baseline"]["lesions"][2]["diameter_mm"] = 14  # a target node needs >= 15 mm
    with refused("baseline.lesions[2].diameter_mm"):  # the library's validation, path named
        services.record_tumour_assessment(staff["nurse"], patient, small_node)
    assert TumourAssessment.objects.filter(patient=patient).count() == 1


def test_end_of_treatment_and_death(staff: Staff, randomized: Randomized) -> None:
    patient = randomized(False)
    today = timezone.localdate()
    eot = {"date": today.isoformat(), "reason": "death", "details": ""}
    with refused("reason"):  # reason death needs the death record
        services.record_end_of_treatment(staff["investigator"], patient, eot)
    with refused("date"):  # randomized today: the end cannot be earlier
        services.record_end_of_treatment(
            staff["investigator"],
            patient,
            {**eot, "reason": "toxicity", "date": (today - timedelta(days=1)).isoformat()},
        )
    with refused("details"):
        services.record_end_of_treatment(staff["investigator"], patient, {**eot, "reason": "other"})
    with refused("date"):
        services.record_death(
            staff["investigator"],
            patient,
            {"date": (today + timedelta(days=2)).isoformat(), "cause": "NET progression"}
            | {"related_to_treatment": False},
        )
    death = services.record_death(
        staff["investigator"],
        patient,
        {"date": today.isoformat(), "cause": "NET progression", "related_to_treatment": False},
    )
    end = services.record_end_of_treatment(staff["investigator"], patient, eot)
    assert (end.reason, end.date, death.date) == ("death", today, today)
    with pytest.raises(StaleVersionError):  # a second entry is a change of version 1
        services.record_end_of_treatment(staff["investigator"], patient, eot)
    changed = services.record_death(
        staff["investigator"],
        patient,
        {"date": today.isoformat(), "cause": "Liver failure", "related_to_treatment": False},
        reason="cause per autopsy",
        expected_version=1,
    )
    assert (changed.pk, changed.version, changed.cause) == (death.pk, 2, "Liver failure")
    update = AuditEntry.objects.get(table="events_death", action="update")
    assert (update.old["cause"], update.new["cause"]) == ("NET progression", "Liver failure")

    with pytest.raises(InvalidInputError, match="end of treatment date"):
        services.record_death(
            staff["investigator"],
            patient,
            {
                "date": (today - timedelta(days=1)).isoformat(),
                "cause": "Liver failure",
                "related_to_treatment": False,
            },
            reason="date typo",
            expected_version=2,
        )


def test_follow_up_around_the_date_of_death(staff: Staff, randomized: Randomized) -> None:
    today = timezone.localdate()
    with time_machine.travel(today - timedelta(days=60), tick=False):  # before the dates below
        patient = randomized(False)

    def day(days_ago: int) -> str:
        return (today - timedelta(days=days_ago)).isoformat()

    services.record_death(
        staff["investigator"],
        patient,
        {"date": day(10), "cause": "NET progression", "related_to_treatment": False},
    )
    with refused("date"):  # alive after the date of death
        services.record_follow_up(
            staff["nurse"], patient, {"date": day(9), "status": "alive", "progression": False}
        )
    with refused("date"):  # dead at a contact before the date of death
        services.record_follow_up(
            staff["nurse"], patient, {"date": day(11), "status": "dead", "progression": False}
        )
    with refused("progression_date"):
        services.record_follow_up(
            staff["nurse"], patient, {"date": day(20), "status": "alive", "progression": True}
        )
    with refused("progression_date"):  # progression after the contact that reports it
        services.record_follow_up(
            staff["nurse"],
            patient,
            {"date": day(20), "status": "alive", "progression": True, "progression_date": day(19)},
        )
    progression = {"progression": True, "progression_date": day(30)}
    alive = services.record_follow_up(
        staff["nurse"], patient, {"date": day(20), "status": "alive", **progression}
    )
    dead = services.record_follow_up(
        staff["nurse"], patient, {"date": day(10), "status": "dead", **progression}
    )
    assert (alive.status, dead.status, dead.progression_date) == (
        "alive",
        "dead",
        alive.progression_date,
    )
    with refused("date"):  # one contact per day
        services.record_follow_up(
            staff["nurse"], patient, {"date": day(20), "status": "lost", "progression": False}
        )
    with pytest.raises(InvalidInputError, match="follow up date"):  # alive after that date
        services.record_death(
            staff["investigator"],
            patient,
            {"date": day(21), "cause": "NET progression", "related_to_treatment": False},
            reason="date per registry",
            expected_version=1,
        )
    with pytest.raises(StaleVersionError):
        services.change_follow_up(
            staff["nurse"],
            alive,
            {"date": day(20), "status": "lost", "progression": False},
            reason="no contact after all",
            expected_version=None,
        )
    lost = services.change_follow_up(
        staff["nurse"],
        alive,
        {"date": day(20), "status": "lost", "progression": False},
        reason="no contact after all",
        expected_version=1,
    )
    assert (lost.pk, lost.version, lost.status, lost.progression_date) == (
        alive.pk,
        2,
        "lost",
        None,
    )


def test_another_site_cannot_enter_or_read(staff: Staff, randomized: Randomized) -> None:
    patient = randomized(False)
    event = services.report_adverse_event(staff["nurse"], patient, adverse_event())
    uppsala = staff["uppsala"]
    today = timezone.localdate().isoformat()
    actions = [
        lambda: services.report_adverse_event(uppsala, patient, adverse_event()),
        lambda: services.change_adverse_event(
            uppsala, event, adverse_event(ctcae_grade=1), reason="x", expected_version=1
        ),
        lambda: services.record_tumour_assessment(uppsala, patient, series_data(PR_AT_MINUS_30)),
        lambda: services.record_end_of_treatment(
            uppsala, patient, {"date": today, "reason": "completed"}
        ),
        lambda: services.record_follow_up(
            uppsala, patient, {"date": today, "status": "alive", "progression": False}
        ),
        lambda: services.record_death(
            uppsala, patient, {"date": today, "cause": "x", "related_to_treatment": False}
        ),
    ]
    for action in actions:
        with pytest.raises(PermissionDenied, match="Lund"):
            action()
    assert list(services.visible(uppsala, AdverseEvent)) == []
    assert list(services.visible(staff["monitor"], AdverseEvent)) == [event]
    assert list(services.visible(staff["nurse"], AdverseEvent)) == [event]
    assert AdverseEvent.objects.get(pk=event.pk).version == 1


def test_end_of_treatment_reasons_are_the_library_vocabulary(
    staff: Staff, randomized: Randomized
) -> None:
    field = EndOfTreatment._meta.get_field("reason")
    assert list(field.choices or []) == EndOfTreatmentReason.choices()
    patient = randomized(True)
    today = timezone.localdate().isoformat()
    with refused("reason"):  # the simulation's former wording is not a reason
        services.record_end_of_treatment(
            staff["investigator"], patient, {"date": today, "reason": "renal limit"}
        )
    end = services.record_end_of_treatment(
        staff["investigator"], patient, {"date": today, "reason": "lost_to_follow_up"}
    )
    end.refresh_from_db()
    assert end.reason == EndOfTreatmentReason.LOST_TO_FOLLOW_UP
    assert end.get_reason_display() == "Lost to follow-up"
