"""Decisions made through the services apply the protocol version in force on the day they are
made and are stored under it: the registry reads a test folder holding START-01 v1.0 and an
amendment v1.1 (effective 2025-03-01; inclusion from GFR > 45 instead of > 50)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth.models import User

from startrt.protocol import definition
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.validation import InvalidInputError
from startrt.web.trial import services
from startrt.web.trial.models import Decision, RandomizationList, Screening, Site
from support.protocols import AMENDMENT_EFFECTIVE, amended_folder
from support.records import eligible_screening

DAY_BEFORE = AMENDMENT_EFFECTIVE - timedelta(days=1)


@pytest.fixture
def amended(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(definition, "PROTOCOL_FOLDER", amended_folder(tmp_path / "protocols"))


@contextmanager
def on(day: date) -> Iterator[None]:
    """The services see noon (UTC) of `day` as now."""
    with time_machine.travel(datetime.combine(day, time(12), UTC), tick=False):
        yield


def screening(day: date, **changes: object) -> dict[str, object]:
    """An eligible (FDG-PET positive) screening on `day`, progression 120 days before."""
    return eligible_screening(
        screening_date=day.isoformat(),
        progression_imaging_date=(day - timedelta(days=120)).isoformat(),
        fdg_pet_positive=True,
        **changes,
    )


def test_each_decision_is_stored_under_the_version_in_force_on_its_day(
    staff: dict[str, User], sites: dict[str, Site], amended: None
) -> None:
    nurse, lund = staff["nurse"], sites["Lund"]
    with on(DAY_BEFORE):
        listing = generate_block_list(
            seed=4242, n_per_stratum=4, strata=protocol_strata(services.current_protocol())
        )
        services.load_randomization_list(staff["statistician"], lund, "main", listing)
        low_gfr = services.register_patient(nurse, lund, "S01-LUN-001", "male")
        first = services.record_screening(
            nurse, low_gfr, screening(DAY_BEFORE, measured_gfr_ml_min_173=48)
        )
        eligible = services.register_patient(nurse, lund, "S01-LUN-002", "male")
        services.record_screening(nurse, eligible, screening(DAY_BEFORE))
    assert (first.eligible, first.protocol) == (False, "START-01 v1.0")  # GFR must be > 50
    assert RandomizationList.objects.get().protocol == "START-01 v1.0"

    with on(AMENDMENT_EFFECTIVE):
        # a corrected screening is a new decision: under v1.1, GFR > 45 is enough
        corrected = services.record_screening(
            nurse,
            low_gfr,
            screening(AMENDMENT_EFFECTIVE, measured_gfr_ml_min_173=48),
            reason="repeated screening after amendment v1.1",
            expected_version=1,
        )
        services.randomize(staff["investigator"], eligible)
    assert (corrected.eligible, corrected.protocol) == (True, "START-01 v1.1")
    assert Screening.objects.get(patient=eligible).protocol == "START-01 v1.0"

    stored = [
        (d.patient.trial_id, d.kind, d.protocol, d.record["protocol"], d.made_at.date())
        for d in Decision.objects.select_related("patient").order_by("pk")
    ]
    assert stored == [
        ("S01-LUN-001", "eligibility", "START-01 v1.0", "START-01 v1.0", DAY_BEFORE),
        ("S01-LUN-002", "eligibility", "START-01 v1.0", "START-01 v1.0", DAY_BEFORE),
        ("S01-LUN-001", "eligibility", "START-01 v1.1", "START-01 v1.1", AMENDMENT_EFFECTIVE),
        ("S01-LUN-002", "arm_assignment", "START-01 v1.1", "START-01 v1.1", AMENDMENT_EFFECTIVE),
    ]


def test_a_consent_before_an_amendment_counts_from_the_trial_start(
    staff: dict[str, User], sites: dict[str, Site], amended: None
) -> None:
    with on(AMENDMENT_EFFECTIVE):
        patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
        consent = {"form_version": "1.0", "signed_on": DAY_BEFORE.isoformat()}
        assert services.record_consent(staff["nurse"], patient, consent).signed_on == DAY_BEFORE
        too_early = {"form_version": "0.9", "signed_on": "2022-10-31"}
        with pytest.raises(InvalidInputError, match=r"trial start \(2022-11-01\)"):
            services.record_consent(staff["nurse"], patient, too_early)


def test_before_the_trial_start_no_decision_is_made(
    staff: dict[str, User], sites: dict[str, Site], amended: None
) -> None:
    patient = services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    with on(date(2022, 10, 31)), pytest.raises(InvalidInputError) as refused:
        services.record_screening(staff["nurse"], patient, screening(date(2022, 10, 31)))
    assert (refused.value.field, refused.value.value) == ("date", "2022-10-31")
    assert not Decision.objects.exists()
