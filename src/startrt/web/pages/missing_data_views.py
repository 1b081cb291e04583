"""The missing-data report: the forms each randomized patient should have by today
(`protocol.expected_forms`) and has not, counted by site and form, and listed by patient with
the due day, the days overdue and a link to where each is entered; filtered by site and form.

Who sees it: every user holding a role, for the patients they may see (`visible_patients`):
the all-site roles (monitors, statisticians and any later all-site role) every site, a site's
own staff their site; a user without a role is refused (403).
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from startrt.protocol.expected_forms import FormKind
from startrt.web.pages.missing_data import MissingForm, missing_of, with_entries
from startrt.web.pages.views import paginate
from startrt.web.trial.models import Membership, Site
from startrt.web.trial.permissions import visible_patients
from startrt.web.trial.services import current_protocol


class MissingDataFilter(forms.Form):
    site = forms.ModelChoiceField(
        queryset=Site.objects.none(), required=False, empty_label="all", to_field_name="code"
    )
    kind = forms.ChoiceField(
        required=False, label="Form", choices=[("", "all"), *((k.value, k.label) for k in FormKind)]
    )


@dataclass(frozen=True)
class SiteCounts:
    """A site's missing forms, one count per form kind shown, and their total."""

    site: str
    counts: tuple[int, ...]
    total: int


def _by_site(
    sites: list[Site], kinds: list[FormKind], missing: list[MissingForm]
) -> list[SiteCounts]:
    rows = []
    for site in sites:
        own = [item.form.kind for item in missing if item.patient.site_id == site.pk]
        counts = tuple(own.count(kind) for kind in kinds)
        rows.append(SiteCounts(site.name, counts, sum(counts)))
    return rows


@require_http_methods(["GET"])
@login_required
def missing_data(request: HttpRequest) -> HttpResponse:
    if not Membership.objects.filter(user=request.user).exists():
        raise PermissionDenied("needs a role in the trial")
    patients = visible_patients(request.user)
    sites = Site.objects.filter(pk__in=patients.values("site")).order_by("name")
    filters = MissingDataFilter(request.GET or None)
    filters.fields["site"].queryset = sites
    kinds = list(FormKind)
    shown_sites = list(sites)
    if filters.is_valid():
        if filters.cleaned_data["site"] is not None:
            shown_sites = [filters.cleaned_data["site"]]
            patients = patients.filter(site=filters.cleaned_data["site"])
        if filters.cleaned_data["kind"]:
            kinds = [FormKind(filters.cleaned_data["kind"])]
    today, protocol = timezone.localdate(), current_protocol()
    missing = [
        item
        for item in missing_of(with_entries(patients), protocol, today)
        if item.form.kind in kinds
    ]
    context = {
        "filters": filters,
        "filtered": bool(request.GET),
        "today": today,
        "grace_days": protocol.expected_forms.grace_days,
        "kinds": kinds,
        "by_site": _by_site(shown_sites, kinds, missing),
        "total": len(missing),
        "page": paginate(request, missing),
    }
    return render(request, "pages/missing_data/report.html", context)
