"""The patient page's count of open data queries."""

from __future__ import annotations

from django import template

from startrt.web.monitoring.models import Query
from startrt.web.trial.models import Patient

register = template.Library()


@register.filter
def open_queries(patient: Patient) -> int:
    """How many of the patient's data queries are open (waiting for the site)."""
    return Query.objects.filter(patient=patient, status=Query.Status.OPEN).count()
