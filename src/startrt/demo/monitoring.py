"""The demo's monitoring visit after the simulated trial: the monitor verifies the records of
every other randomized patient against the source (SDV) and raises data queries on three of
them, which the site answers; one answered query is closed. The pages then show queries open,
answered and closed, on the site's worklists and in the report, and SDV progress below 100 %."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import User

from startrt.web.monitoring import services
from startrt.web.monitoring.models import Query
from startrt.web.trial.models import Patient, Screening

QUERY_TEXT = "The weight differs from the clinic's record of the screening visit: please check."
ANSWER_TEXT = "Checked against the clinic's record: the weight entered is right."
CLOSING_NOTE = "Answer accepted, source seen."
WEIGHT = "record.weight_kg"  # the screening record's weight (a key of its JSON record)


@dataclass(frozen=True)
class MonitoringVisit:
    """What the visit left: records verified and queries by status."""

    records_verified: int
    queries_open: int
    queries_answered: int
    queries_closed: int


def monitoring_visit(monitor: User, nurses: dict[str, User]) -> MonitoringVisit:
    """Verify every other randomized patient's records; query three screening weights (one
    left open, one answered by the site's nurse, one answered and closed). `nurses` by site
    name."""
    randomized = list(
        Patient.objects.filter(allocation__isnull=False).select_related("site").order_by("pk")
    )
    verified = 0
    for patient in randomized[::2]:
        for _, record, _ in services.records_of(patient):
            services.verify(monitor, record, expected_version=record.version)
            verified += 1
    queries = [
        services.raise_query(monitor, Screening.objects.get(patient=patient), WEIGHT, QUERY_TEXT)
        for patient in randomized[1:7:2]
    ]
    for query in queries[1:]:
        nurse = nurses[query.patient.site.name]
        services.answer_query(nurse, query, ANSWER_TEXT, expected_version=query.version)
    closed = Query.objects.get(pk=queries[-1].pk)
    services.close_query(monitor, closed, CLOSING_NOTE, expected_version=closed.version)
    counts = {status: Query.objects.filter(status=status).count() for status in Query.Status}
    return MonitoringVisit(
        verified,
        counts[Query.Status.OPEN],
        counts[Query.Status.ANSWERED],
        counts[Query.Status.CLOSED],
    )
