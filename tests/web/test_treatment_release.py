"""A cycle's release is signed with the password and locks the cycle's plan until a reasoned
unlock; rescheduling is checked against the protocol window (refused outside it unless
confirmed as a deviation, kept with its reason); cancelling needs a reason.

START-01 v1.0: 10-week interval, window +/- 2 weeks; cycle 1's window is around the screening
record's planned start (17 March 2025): 3 March to 31 March 2025."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied

from startrt.validation import InvalidInputError
from startrt.web.signing import services as signing
from startrt.web.signing.models import Meaning, Signature
from startrt.web.treatment import services
from startrt.web.treatment.models import Cycle
from startrt.web.trial.changes import StaleVersionError
from startrt.web.trial.models import AuditEntry, Patient
from web.test_treatment import (
    FIRST_CYCLE,
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


@pytest.fixture
def patient(team: Staff, sites: Sites) -> Patient:
    return randomized(team, sites, 1)


def move(team: Staff, cycle: Cycle, day: date, **options: bool) -> Cycle:
    return services.reschedule_cycle(
        team["investigator"],
        cycle,
        planned_date=day,
        reason="patient on holiday",
        expected_version=cycle.version,
        **options,
    )


def test_the_release_is_signed_and_locks_the_plan_until_a_reasoned_unlock(
    team: Staff, patient: Patient
) -> None:
    cycle = planned_cycle(team, patient)
    labs_go(team, cycle)
    with pytest.raises(signing.SignatureRefusedError, match="password"):
        release(team["investigator"], cycle, password="wrong")
    cycle.refresh_from_db()
    assert (cycle.released_by, cycle.version) == ("", 1)
    assert not Signature.objects.exists()
    with pytest.raises(PermissionDenied):  # the right password, the wrong role
        release(team["nurse"], cycle)
    released = release(team["investigator"], cycle)
    signature = Signature.objects.get()
    assert (signature.kind, signature.record_id) == ("treatment.cycle", str(cycle.pk))
    assert (signature.meaning, signature.signer_username) == (
        Meaning.RESPONSIBILITY,
        "investigator.lund",
    )
    assert services.release_locked(released)
    with pytest.raises(signing.RecordLockedError, match=r"signed \(responsibility\)"):
        move(team, released, date(2025, 3, 20))
    with pytest.raises(signing.RecordLockedError):
        services.cancel_cycle(
            team["investigator"], released, reason="patient withdrew", expected_version=2
        )
    # the administration the release authorizes is recorded on the locked cycle, and the
    # signature still matches: it covers the plan as released, not the administration
    given = give_released(team, released)
    assert given.status == Cycle.Status.ADMINISTERED
    assert signing.content_unchanged(signature)


def give_released(team: Staff, cycle: Cycle) -> Cycle:
    return services.record_administration(
        team["nurse"],
        cycle,
        activity_gbq=7.4,
        lot="LU-1",
        infusion_start=at(cycle.planned_date),
        infusion_end=at(cycle.planned_date, 9, 30),
        inpatient_days=1.5,
        expected_version=cycle.version,
    )


def test_after_an_unlock_a_new_plan_withdraws_the_release(team: Staff, patient: Patient) -> None:
    cycle = planned_cycle(team, patient)
    labs_go(team, cycle)
    cycle = release(team["investigator"], cycle)
    with pytest.raises(InvalidInputError, match="reason"):
        services.unlock_release(
            request_by(team["investigator"]), cycle, password=PASSWORD, reason=" "
        )
    with pytest.raises(PermissionDenied):  # a nurse neither signed nor is an investigator
        services.unlock_release(request_by(team["nurse"]), cycle, password=PASSWORD, reason="x")
    services.unlock_release(
        request_by(team["investigator"]), cycle, password=PASSWORD, reason="date moved"
    )
    assert not services.release_locked(cycle)
    with pytest.raises(InvalidInputError, match="carries no active signature"):
        services.unlock_release(
            request_by(team["investigator"]), cycle, password=PASSWORD, reason="again"
        )
    moved = move(team, Cycle.objects.get(pk=cycle.pk), date(2025, 3, 24))
    assert (moved.planned_date, moved.released_by, moved.released_at) == (
        date(2025, 3, 24),
        "",
        None,
    )
    entry = AuditEntry.objects.filter(table="treatment_cycle", action="update").last()
    assert entry is not None
    assert (entry.reason, entry.old["released_by"], entry.new["planned_date"]) == (
        "patient on holiday",
        "investigator.lund",
        "2025-03-24",
    )
    with pytest.raises(InvalidInputError, match="not released"):
        give_released(team, moved)
    again = release(team["investigator"], moved)  # the labs' 'go' still stands: sign again
    assert again.released_by == "investigator.lund"
    assert Signature.objects.filter(unlocked_at__isnull=True).count() == 1


def test_a_reschedule_outside_the_window_is_refused_unless_confirmed_as_a_deviation(
    team: Staff, patient: Patient
) -> None:
    cycle = planned_cycle(team, patient)  # 17 March 2025; window 3 to 31 March
    inside = move(team, cycle, date(2025, 3, 31))  # the last day of the window
    assert (inside.planned_date, inside.window_deviation) == (date(2025, 3, 31), "")
    with pytest.raises(InvalidInputError) as refused:
        move(team, inside, date(2025, 4, 1))
    assert (refused.value.field, refused.value.value) == ("planned_date", "2025-04-01")
    assert "is 1 day after its window 2025-03-03 to 2025-03-31" in refused.value.rule
    assert "accept_deviation" in refused.value.rule
    late = move(team, inside, date(2025, 4, 1), accept_deviation=True)
    assert late.window_deviation == (
        "Cycle 1 on 2025-04-01 is 1 day after its window 2025-03-03 to 2025-03-31 "
        "(target 2025-03-17)."
    )
    with pytest.raises(StaleVersionError):
        services.reschedule_cycle(
            team["investigator"],
            late,
            planned_date=FIRST_CYCLE,
            reason="back",
            expected_version=late.version - 1,
        )
    back = move(team, late, FIRST_CYCLE)  # back in the window: no deviation any more
    assert back.window_deviation == ""
    # a year off the target is a typing error, deviation or not: 17 March 2025 + 367 days
    with pytest.raises(InvalidInputError, match="must lie within 366 days of the target"):
        move(team, back, date(2026, 3, 19), accept_deviation=True)
    year_later = move(team, back, date(2026, 3, 18), accept_deviation=True)  # 366 days
    back = move(team, year_later, FIRST_CYCLE)
    with pytest.raises(InvalidInputError, match="a reschedule needs a reason"):
        services.reschedule_cycle(
            team["investigator"],
            back,
            planned_date=FIRST_CYCLE,
            reason="",
            expected_version=back.version,
        )
    with pytest.raises(PermissionDenied):
        services.reschedule_cycle(
            team["nurse"], back, planned_date=FIRST_CYCLE, reason="r", expected_version=4
        )


def test_the_next_cycles_window_follows_the_given_cycle(team: Staff, patient: Patient) -> None:
    services.record_dosimetry(
        team["physicist"],
        give(team, planned_cycle(team, patient), 7.5),
        left_kidney_dose_gy=4,
        right_kidney_dose_gy=5,
    )
    cycle = planned_cycle(team, patient)  # given 17 March + 10 weeks = 26 May, +/- 14 days
    check = services.window_check(cycle, date(2025, 5, 11))
    assert check is not None
    assert (check.earliest, check.latest, check.within, check.days_early) == (
        date(2025, 5, 12),
        date(2025, 6, 9),
        False,
        1,
    )
    with pytest.raises(InvalidInputError, match="is 1 day before its window"):
        move(team, cycle, date(2025, 5, 11))
    with pytest.raises(InvalidInputError, match="must be after cycle 1"):
        move(team, cycle, FIRST_CYCLE, accept_deviation=True)


def test_cancelling_needs_a_reason_and_ends_the_course(team: Staff, patient: Patient) -> None:
    cycle = planned_cycle(team, patient)
    with pytest.raises(InvalidInputError, match="a cancellation needs a reason"):
        services.cancel_cycle(team["investigator"], cycle, reason="  ", expected_version=1)
    with pytest.raises(PermissionDenied):
        services.cancel_cycle(team["physicist"], cycle, reason="r", expected_version=1)
    cancelled = services.cancel_cycle(
        team["investigator"], cycle, reason="progression", expected_version=1
    )
    assert cancelled.status == Cycle.Status.CANCELLED
    with pytest.raises(InvalidInputError, match="is cancelled, not planned"):
        move(team, cancelled, FIRST_CYCLE)
    with pytest.raises(InvalidInputError, match="the course ended"):
        services.propose_next_cycle(team["physicist"], patient)
