"""The stored eligibility decisions of the patients who failed screening: what the enrolment
dashboard counts by criterion and the analysis dataset lists (`screen_failures`)."""

from __future__ import annotations

from django.db.models import Max, QuerySet

from startrt.protocol.eligibility import EligibilityDecision
from startrt.web.trial.models import Decision, Patient


def latest_failing_decisions(patients: QuerySet[Patient]) -> dict[str, EligibilityDecision]:
    """The latest stored eligibility decision of each of `patients` whose screening is not
    eligible, by trial id, in one query (the latest decision's id per patient as a subquery)."""
    latest = (
        Decision.objects.filter(
            kind="eligibility", patient__in=patients, patient__screening__eligible=False
        )
        .values("patient")
        .annotate(last=Max("id"))
        .values("last")
    )
    records = Decision.objects.filter(id__in=latest).order_by("patient_id")
    return {
        trial_id: EligibilityDecision.model_validate(record)
        for trial_id, record in records.values_list("patient__trial_id", "record")
    }
