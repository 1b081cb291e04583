"""Fifty investigators randomizing at once get fifty distinct slots (PostgreSQL row locks)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.contrib.auth.models import User
from django.db import connection, connections

from startrt.protocol.definition import default_protocol
from startrt.protocol.randomization import generate_block_list
from startrt.protocol.stratification import protocol_strata
from startrt.web.trial import services
from startrt.web.trial.models import Patient, Site, Slot
from support.records import eligible_screening

PATIENTS = 50


@pytest.mark.django_db(transaction=True)
def test_concurrent_randomizations_take_distinct_slots(
    staff: dict[str, User], sites: dict[str, Site]
) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock concurrency runs on PostgreSQL (SQLite serialises every writer)")
    listing = generate_block_list(
        seed=7, n_per_stratum=PATIENTS + 10, strata=protocol_strata(default_protocol())
    )
    services.load_randomization_list(staff["statistician"], sites["Lund"], "main", listing)
    patients = []
    for number in range(1, PATIENTS + 1):
        patient = services.register_patient(
            staff["nurse"], sites["Lund"], f"S01-LUN-{number:03d}", "male"
        )
        services.record_screening(staff["nurse"], patient, eligible_screening())
        patients.append(patient)

    def randomize(patient: Patient) -> int:
        try:
            return services.randomize(staff["investigator"], patient).pk
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        slots = list(pool.map(randomize, patients))
    assert len(set(slots)) == PATIENTS
    taken = Slot.objects.filter(patient__isnull=False).order_by("sequence")
    # the first 50 positions of the one stratum, each exactly once
    assert [slot.sequence for slot in taken] == list(range(1, PATIENTS + 1))
    assert {slot.stratum for slot in taken} == {"site=Lund;fdg=negative"}
