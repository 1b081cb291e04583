"""The demo's monitoring visit (`startrt.demo.monitoring`) on six randomized patients: counted
by hand, patients 1, 3, 5 verified, screening weights of 2, 4, 6 queried."""

from __future__ import annotations

from startrt.demo.monitoring import monitoring_visit
from startrt.web.monitoring import services as monitoring
from startrt.web.monitoring.models import Query
from startrt.web.trial.models import AuditEntry, Patient
from web.test_treatment import Sites, Staff, randomized


def test_the_visit_verifies_every_other_patient_and_leaves_queries_in_each_state(
    team: Staff, sites: Sites
) -> None:
    patients = [randomized(team, sites, number) for number in range(1, 7)]
    records = {p.trial_id: len(monitoring.records_of(p)) for p in patients}
    visit = monitoring_visit(team["monitor"], {"Lund": team["nurse"]})

    expected_verified = sum(records[f"S01-LUN-00{n}"] for n in (1, 3, 5))
    assert visit == type(visit)(expected_verified, 1, 1, 1)
    by_patient = {
        query.patient.trial_id: query.status for query in Query.objects.select_related("patient")
    }
    assert by_patient == {"S01-LUN-002": "open", "S01-LUN-004": "answered", "S01-LUN-006": "closed"}
    for patient in Patient.objects.all():
        verified = [seen for _, _, seen in monitoring.records_of(patient)]
        assert all(verified) == (patient.trial_id in {"S01-LUN-001", "S01-LUN-003", "S01-LUN-005"})
    # every step audited: 3 raised, 2 answered, 1 closed, and one entry per verification
    steps = AuditEntry.objects.filter(table="monitoring_query")
    assert steps.count() == 6
