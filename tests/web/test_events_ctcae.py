"""Adverse events coded with CTCAE v5.0 through the services (SQLite by default; PostgreSQL with
STARTRT_DATABASE_URL): the term, its grades and "Other, specify" checked against the table,
the code and System Organ Class stored, the rows recorded before coding migrated."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction
from django.test import Client

from startrt.web.events import services
from startrt.web.events.models import AdverseEvent
from startrt.web.trial.models import AuditEntry
from web.conftest import Randomized
from web.test_events import Staff, adverse_event, refused

OTHER_GI = "Gastrointestinal disorders - Other, specify"


def test_the_term_s_code_and_soc_are_stored_and_audited(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    event = services.report_adverse_event(
        staff["nurse"],
        patient,
        adverse_event(
            term="Platelet count decreased",
            ctcae_grade=4,
            serious=True,
            seriousness_criteria=["life_threatening"],
            outcome="recovering",
            resolved_date=None,
        ),
    )
    # MedDRA code and SOC as CTCAE v5.0 lists "Platelet count decreased"
    assert (event.meddra_code, event.soc, event.other_specify) == ("10035528", "Investigations", "")
    insert = AuditEntry.objects.get(table="events_adverseevent", action="insert")
    assert (insert.new["meddra_code"], insert.new["soc"]) == ("10035528", "Investigations")
    changed = services.change_adverse_event(
        staff["nurse"],
        event,
        adverse_event(term=OTHER_GI, other_specify="Bile reflux", ctcae_grade=2),
        reason="not a platelet count: source notes describe bile reflux",
        expected_version=1,
    )
    assert (changed.term, changed.other_specify) == (OTHER_GI, "Bile reflux")
    assert (changed.meddra_code, changed.soc) == ("10017947", "Gastrointestinal disorders")
    update = AuditEntry.objects.get(table="events_adverseevent", action="update")
    assert (update.old["soc"], update.new["soc"]) == (
        "Investigations",
        "Gastrointestinal disorders",
    )


def test_terms_grades_and_other_specify_are_refused_as_the_table_says(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    nurse = staff["nurse"]
    with refused("term"):  # a MedDRA term, not a CTCAE v5.0 term
        services.report_adverse_event(nurse, patient, adverse_event(term="Thrombocytopenia"))
    with refused("term"):
        services.report_adverse_event(nurse, patient, adverse_event(term="nausea"))
    with refused("ctcae_grade"):  # CTCAE v5.0: alopecia has grades 1 and 2 only
        services.report_adverse_event(nurse, patient, adverse_event(term="Alopecia", ctcae_grade=3))
    with refused("ctcae_grade"):  # nausea: grades 1-3
        services.report_adverse_event(nurse, patient, adverse_event(ctcae_grade=4))
    with refused("other_specify"):  # the event must be named
        services.report_adverse_event(nurse, patient, adverse_event(term=OTHER_GI))
    with refused("other_specify"):  # only "Other, specify" terms take a name
        services.report_adverse_event(nurse, patient, adverse_event(other_specify="queasy"))
    assert not AdverseEvent.objects.exists()
    assert not AuditEntry.objects.filter(table="events_adverseevent").exists()
    event = services.report_adverse_event(nurse, patient, adverse_event())
    with refused("ctcae_grade"):  # a correction is checked by the same rules
        services.change_adverse_event(
            nurse, event, adverse_event(ctcae_grade=5), reason="x", expected_version=1
        )
    assert AdverseEvent.objects.get(pk=event.pk).ctcae_grade == 2


def test_the_database_refuses_a_name_for_a_term_that_takes_none(
    staff: Staff, randomized: Randomized
) -> None:
    event = services.report_adverse_event(staff["nurse"], randomized(False), adverse_event())
    with transaction.atomic(), pytest.raises(IntegrityError):
        AdverseEvent.objects.filter(pk=event.pk).update(other_specify="queasy")


def test_migration_codes_exactly_spelled_terms_and_keeps_others_as_entered(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    stored = [
        services.report_adverse_event(staff["nurse"], patient, adverse_event(term=term))
        for term in ("Nausea", "Nausea", "Nausea")
    ]
    # as rows recorded before coding: free text, no code
    for event, text in zip(stored, ("Nausea", "nausea", "Feeling sick"), strict=True):
        AdverseEvent.objects.filter(pk=event.pk).update(term=text, meddra_code="", soc="")
    migration = importlib.import_module(
        "startrt.web.events.migrations.0003_coded_adverse_event_terms"
    )
    migration.code_exact_terms(apps, None)
    rows = AdverseEvent.objects.order_by("pk").values_list("term", "meddra_code", "soc")
    assert list(rows) == [
        ("Nausea", "10028813", "Gastrointestinal disorders"),
        ("nausea", "", ""),  # kept as entered: a correction chooses the term
        ("Feeling sick", "", ""),
    ]
    uncoded = AdverseEvent.objects.get(pk=stored[2].pk)
    with refused("term"):  # a change must choose a CTCAE term
        services.change_adverse_event(
            staff["nurse"],
            uncoded,
            adverse_event(term="Feeling sick"),
            reason="grade",
            expected_version=1,
        )
    coded = services.change_adverse_event(
        staff["nurse"], uncoded, adverse_event(), reason="coded", expected_version=1
    )
    assert (coded.term, coded.meddra_code) == ("Nausea", "10028813")


def test_the_api_refuses_a_grade_the_term_lacks_and_returns_the_coding(
    staff: Staff, randomized: Randomized
) -> None:
    patient = randomized(False)
    client = Client()
    client.force_login(staff["nurse"])
    url = f"/api/patients/{patient.trial_id}/adverse-events"
    hand_foot = adverse_event(term="Palmar-plantar erythrodysesthesia syndrome", ctcae_grade=4)
    refusal = client.post(url, {"record": hand_foot}, content_type="application/json")
    assert refusal.status_code == 422
    assert (refusal.json()["field"], refusal.json()["value"]) == ("ctcae_grade", 4)
    hand_foot["ctcae_grade"] = 3  # its highest grade in CTCAE v5.0
    created = client.post(url, {"record": hand_foot}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert (body["meddra_code"], body["soc"], body["other_specify"]) == (
        "10054524",
        "Skin and subcutaneous tissue disorders",
        "",
    )
