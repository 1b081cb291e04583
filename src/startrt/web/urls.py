"""URL routes (pages and API come with the next parts of the web application)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


def health(request: HttpRequest) -> JsonResponse:
    """Liveness probe: the server answers."""
    return JsonResponse({"status": "ok"})


urlpatterns = [path("health", health)]
