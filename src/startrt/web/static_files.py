"""Static files served by the application itself (`startrt serve` has no separate web server):
the pages' stylesheet and the Swagger UI of the API docs, which django-ninja ships. Files are
found by Django's static-file finders (each app's `static/` folder; a path leaving it is refused
by the finders' safe join) and cached by browsers for an hour."""

from __future__ import annotations

import posixpath
from pathlib import Path

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponseNotAllowed
from django.http.response import HttpResponseBase
from django.views.static import serve

MAX_AGE_S = 3600


def static_file(request: HttpRequest, path: str) -> HttpResponseBase:
    """The static file at `path` (GET / HEAD), or 404."""
    if request.method not in {"GET", "HEAD"}:
        return HttpResponseNotAllowed(["GET", "HEAD"])
    normalized = posixpath.normpath(path).lstrip("/")
    if normalized.startswith("..") or not normalized or normalized == ".":
        raise Http404("no such static file")
    found = finders.find(normalized)
    if not isinstance(found, str):
        raise Http404("no such static file")
    file = Path(found)
    response = serve(request, file.name, document_root=str(file.parent))
    response["Cache-Control"] = f"public, max-age={MAX_AGE_S}"
    return response
