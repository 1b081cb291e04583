"""Middleware of the trial web application.

- `NoStoreMiddleware`: `Cache-Control: no-store` on every answer but the static files, so no
  browser or proxy keeps a clinical page, an API answer or a CSV download.
- `ApiJsonErrorsMiddleware`: under /api/, an error that did not come from the API's own
  handlers (an unknown path 404, a method the operation does not take 405, Django's own 400 or
  403) is answered in JSON as the API's other errors are, never as Django's HTML page.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

Handler = Callable[[HttpRequest], HttpResponseBase]

API_PREFIX = "/api/"


def static_prefix() -> str:
    """STATIC_URL as a path ("static/" -> "/static/")."""
    return "/" + str(settings.STATIC_URL).lstrip("/")


class NoStoreMiddleware:
    """`Cache-Control: no-store` on everything outside STATIC_URL (a view's own no-store
    directives, e.g. Django's never_cache, are kept)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response
        self.static = static_prefix()

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not request.path.startswith(self.static) and "no-store" not in response.get(
            "Cache-Control", ""
        ):
            response["Cache-Control"] = "no-store"
        return response


class ApiJsonErrorsMiddleware:
    """Error answers (4xx, 5xx) under /api/ in JSON ({"detail": "not found"}, the status's
    phrase); a 405 keeps its Allow header."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path.startswith(API_PREFIX)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        try:
            detail = HTTPStatus(response.status_code).phrase.lower()
        except ValueError:
            detail = "error"
        answer: HttpResponse = JsonResponse({"detail": detail}, status=response.status_code)
        if "Allow" in response:
            answer["Allow"] = response["Allow"]
        return answer
