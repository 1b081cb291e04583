"""The pre-cycle lab form (labels from `startrt.fields`; reference limits prefilled from the
site's ranges in force, still editable per panel) and the page of a site's laboratory reference
ranges: every member of the site reads it, its investigators and the administrators set them."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods

from startrt import fields
from startrt.validation import InvalidInputError
from startrt.web.pages.forms import date_field, datetime_field
from startrt.web.pages.views import refusal
from startrt.web.treatment import lab_ranges
from startrt.web.treatment.lab_grades import GFR_FIELDS, GRADED_LABS, PANEL_FIELDS
from startrt.web.trial.models import Site
from startrt.web.trial.permissions import require_role, roles_at


def _number(name: str) -> forms.FloatField:
    return forms.FloatField(required=False, label=fields.label(name))


class LabsForm(forms.Form):
    """A lab panel: each graded value beside the limit it is graded against, cystatin C and a
    measured GFR (the eGFR is computed from the patient's age and sex). With `site`, the limits
    are prefilled from the site's reference ranges in force today."""

    drawn_at = datetime_field(label=fields.label("drawn_at"))

    def __init__(self, *args: Any, site: Site | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in PANEL_FIELDS:
            self.fields[name] = _number(name)
        for test, (_, side) in GRADED_LABS.items():  # shown as "LLN" / "ULN" in the test's row
            limit = f"{test}_{side}"
            self.fields[limit].widget.attrs["aria-label"] = fields.label(limit)
        self.limits_note = ""
        if site is None:
            return
        limits = lab_ranges.panel_limits(site, timezone.localdate())
        shown = {name: fields.format_value(name, value) for name, value in limits.items()}
        self.initial = {**shown, **self.initial}
        self.limits_note = format_html(
            'Reference limits prefilled from {}\'s <a href="{}">reference ranges</a>{}; edit '
            "them for this panel if its laboratory reported others.",
            site.name,
            reverse("pages:lab_ranges", args=[site.code]),
            "" if limits else " (none set yet)",
        )

    def test_rows(self) -> list[dict[str, Any]]:
        """Per graded test: its result field, its limit field and which limit (LLN / ULN)."""
        return [
            {"value": self[test], "limit": self[f"{test}_{side}"], "side": side.upper()}
            for test, (_, side) in GRADED_LABS.items()
        ]

    def gfr_fields(self) -> list[forms.BoundField]:
        """Cystatin C and a measured GFR (creatinine is a graded test)."""
        return [self[name] for name in GFR_FIELDS]

    @staticmethod
    def panel_values(data: dict[str, Any]) -> dict[str, Any]:
        """The values entered (cleaned data), without the empty ones and the draw time."""
        return {name: data[name] for name in PANEL_FIELDS if data.get(name) is not None}


class LabRangesForm(forms.Form):
    """A site's reference ranges: for each graded test its LLN and ULN (the service requires
    the one it is graded against), in force from `valid_from`."""

    valid_from = date_field(label="In force from")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for test in GRADED_LABS:
            for limit in ("lln", "uln"):
                name = f"{test}_{limit}"
                self.fields[name] = _number(name)
                # in a table cell, labelled for assistive technology
                self.fields[name].widget.attrs.update(
                    {"aria-label": fields.label(name), "size": "8"}
                )

    def entries(self) -> list[lab_ranges.RangeEntry]:
        """The tests given a limit (a test left empty keeps its range, or has none)."""
        data = self.cleaned_data
        given = (
            lab_ranges.RangeEntry(test, data[f"{test}_lln"], data[f"{test}_uln"])
            for test in GRADED_LABS
        )
        return [entry for entry in given if (entry.lower_limit, entry.upper_limit) != (None, None)]


def _initial(in_force: dict[str, Any]) -> dict[str, Any]:
    initial: dict[str, Any] = {"valid_from": timezone.localdate()}
    for test, row in in_force.items():
        for name, value in ((f"{test}_lln", row.lower_limit), (f"{test}_uln", row.upper_limit)):
            if value is not None:
                initial[name] = fields.format_value(name, value)
    return initial


@require_http_methods(["GET", "POST"])
@login_required
def site_lab_ranges(request: HttpRequest, code: str) -> HttpResponse:
    site = get_object_or_404(Site, code=code)
    roles = roles_at(request.user, site)
    if not roles:
        raise Http404("not a site of yours")
    may_set = bool(roles & {role.value for role in lab_ranges.RANGE_SETTERS})
    in_force = lab_ranges.ranges_in_force(site, timezone.localdate())
    form = LabRangesForm(initial=_initial(in_force))
    status = 200
    if request.method == "POST":
        require_role(request.user, site, *lab_ranges.RANGE_SETTERS)
        form = LabRangesForm(request.POST, initial=_initial(in_force))
        status = 422
        if form.is_valid():
            try:
                written = lab_ranges.set_lab_ranges(
                    request.user, site, form.entries(), valid_from=form.cleaned_data["valid_from"]
                )
            except InvalidInputError as error:
                status = refusal(form, error)
            else:
                count = len(written)
                messages.success(
                    request,
                    f"Saved {count} reference range{'' if count == 1 else 's'}"
                    if count
                    else "No range changed: nothing saved",
                )
                return redirect("pages:lab_ranges", code=site.code)
    rows = [
        {
            "test": test,
            "side": side,
            "range": in_force.get(test),
            "lln": form[f"{test}_lln"],
            "uln": form[f"{test}_uln"],
        }
        for test, (_, side) in GRADED_LABS.items()
    ]
    context = {"site": site, "form": form, "rows": rows, "may_set": may_set}
    return render(request, "pages/lab_ranges.html", context, status=status)
