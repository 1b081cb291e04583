"""URL routes: the JSON API (OpenAPI at /api/openapi.json, docs at /api/docs) and the pages."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import include, path

from startrt.web.api import api


def health(request: HttpRequest) -> JsonResponse:
    """Liveness probe: the server answers."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("health", health),
    path("api/", api.urls),
    path("", include("startrt.web.pages.urls")),
]
