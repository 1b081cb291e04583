"""URL routes: the JSON API (OpenAPI at /api/openapi.json, docs at /api/docs), the pages, the
static files (served by the application itself) and the health check."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path, re_path
from django.views import defaults

from startrt.web.api import api
from startrt.web.api.errors import internal_error_body
from startrt.web.static_files import static_file

logger = logging.getLogger(__name__)

HEALTH_PROBE_KEY = "startrt-health-probe"


def health(request: HttpRequest) -> JsonResponse:
    """Health check for a proxy or monitor (no sign-in): 200 {"status": "ok"} when the database
    answers a read and takes a write (a session row inserted in a transaction rolled back, so
    nothing is kept), otherwise 503 {"status": "unavailable", "detail": ...}."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM django_session")
            cursor.fetchone()
            cursor.execute(
                "INSERT INTO django_session (session_key, session_data, expire_date) "
                "VALUES (%s, %s, CURRENT_TIMESTAMP)",
                [HEALTH_PROBE_KEY, ""],
            )
            transaction.set_rollback(True)
    except DatabaseError as error:
        logger.error("health check: the database cannot be read or written: %s", error)
        return JsonResponse(
            {"status": "unavailable", "detail": "the database cannot be read or written"},
            status=503,
        )
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("health", health),
    path("api/", api.urls),
    re_path(r"^static/(?P<path>.+)$", static_file),
    path("", include("startrt.web.pages.urls")),
]


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 (an exception outside the API's own handlers, e.g. in a middleware): JSON
    under /api/ (the traceback is logged by Django under the same reference), else the page."""
    if request.path.startswith("/api/"):
        return JsonResponse(internal_error_body(), status=500)
    return defaults.server_error(request)


handler500 = server_error
