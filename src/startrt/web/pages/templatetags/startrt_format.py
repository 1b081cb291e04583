"""Template filters for people: a probability as a percentage; field values, labels and units
from `startrt.fields`."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.apps import apps

from startrt import fields
from startrt.protocol.vocabulary import SeriousnessCriterion
from startrt.web.signing.models import Signature
from startrt.web.trial.audit import record_name
from startrt.web.trial.dates import site_time as _site_time
from startrt.web.trial.models import Site

register = template.Library()


@register.filter
def percent(probability: float | None, decimals: int = 1) -> str:
    """0.0412 -> "4.1 %"; under half the last digit (0 included): "< 0.1 %"."""
    if probability is None:
        return "—"
    value = 100.0 * float(probability)
    smallest = 10.0**-decimals
    if value < smallest / 2:  # a modelled probability is never exactly 0
        return f"< {smallest:.{decimals}f} %"
    return f"{value:.{decimals}f} %"


@register.filter
def quantity(value: object, name: str) -> str:
    """A value of field `name` rounded for people: {{ dose|quantity:"left_kidney_dose_gy" }}."""
    return fields.format_value(name, value)


@register.filter
def quantity_with_unit(value: object, name: str) -> str:
    """As `quantity`, followed by the unit: "3.86 Gy"."""
    return fields.format_value(name, value, with_unit=True)


@register.filter
def field_label(name: str) -> str:
    """The label of field `name` with its unit: {{ "activity_gbq"|field_label }}."""
    return fields.label(name)


@register.filter
def site_time(moment: datetime | None, site: Site) -> str:
    """A stored (UTC) time in the site's time zone: {{ entry.at|site_time:patient.site }}
    -> "2026-03-01 15:05 CET"."""
    return _site_time(moment, site)


@register.filter
def signed_record(signature: Signature) -> str:
    """The record a signature signs, as people know it: "Cycle 2", "Screening"."""
    return record_name(apps.get_model(signature.kind), signature.record_id, {})


@register.filter
def seriousness(criteria: list[str]) -> str:
    """Stored seriousness criteria by their labels: ["death"] -> "Results in death"."""
    return ", ".join(SeriousnessCriterion(value).label for value in criteria)
