"""The time zone of a page: a patient's pages (every URL with a trial ID) run in the time zone
of the patient's site, from the protocol's site list, so that a time typed in a form (a lab
draw, an infusion) is read as the site's local time and a stored time is shown in it; the API
keeps UTC and ISO 8601 with offsets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import timezone

from startrt.web.trial.dates import site_time_zone
from startrt.web.trial.models import Patient

Handler = Callable[[HttpRequest], HttpResponseBase]


class SiteTimeZoneMiddleware:
    """Activates the patient's site's time zone for a page with a `trial_id` (outside /api/)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()

    def process_view(
        self, request: HttpRequest, view: Any, args: Any, kwargs: dict[str, Any]
    ) -> None:
        trial_id = kwargs.get("trial_id")
        if trial_id is None or request.path.startswith("/api/"):
            return
        patient = Patient.objects.select_related("site").filter(trial_id=trial_id).first()
        if patient is not None:  # an unknown one is the view's 404
            timezone.activate(site_time_zone(patient.site))
