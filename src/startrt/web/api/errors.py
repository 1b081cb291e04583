"""Errors of the JSON API as JSON: refused input 422 naming field, value and rule (the library's
InvalidInputError and the request schema's own refusals alike); wrong role 403; a patient that
does not exist or lies outside the user's sites 404; an edit based on an old version, or of a
signed (locked) record, or refused by a database lock or patient freeze (`monitoring.lock_guard`,
the service's check or the trigger's), 409; any other exception 500 {"detail": "internal error",
"id": ...}, its traceback logged under that id (never an HTML page; 404 and 405 outside the
operations are answered in JSON by `web/middleware.py`). The schema and its docs answer 401 (or
send a browser to the login page) until the user signs in (`docs_login_required`)."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI, Schema
from ninja.errors import ValidationError

from startrt.validation import InvalidInputError, echoed
from startrt.web.monitoring.lock_guard import DataLockedError, refusal_of
from startrt.web.signing.services import RecordLockedError
from startrt.web.trial.changes import StaleVersionError

logger = logging.getLogger("startrt.web.api")


class Problem(Schema):
    """One refused value: the field, the value given (null when not echoed) and the rule."""

    field: str
    value: Any
    rule: str


class Refusal(Problem):
    """Body of 422 and 409: the first refused field, a readable message and every problem."""

    message: str
    errors: list[Problem]


class Detail(Schema):
    """Body of 401, 403, 404 and 405."""

    detail: str


class InternalError(Detail):
    """Body of 500: "internal error" and the reference of the logged traceback."""

    id: str


def internal_error_body(
    request: HttpRequest | None = None, error: BaseException | None = None
) -> dict[str, str]:
    """Log the exception being handled (or `error`) with its traceback under a new reference,
    and answer that reference, never the error itself."""
    reference = uuid.uuid4().hex[:16]
    where = f" on {request.method} {request.path}" if request is not None else ""
    logger.error("internal error %s%s", reference, where, exc_info=error or True)
    return InternalError(detail="internal error", id=reference).model_dump()


ERROR_RESPONSES: dict[int, type[Schema]] = {
    401: Detail,
    403: Detail,
    404: Detail,
    409: Refusal,
    422: Refusal,
}


def _plain(value: object) -> Any:
    """`value` as JSON data; its repr when JSON cannot carry it (NaN, objects, deep nesting)."""
    try:
        return json.loads(json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        return repr(value)


def _refusal(problems: list[Problem], message: str) -> Refusal:
    return Refusal(**problems[0].model_dump(), message=message, errors=problems)


def _input_refusal(error: InvalidInputError) -> Refusal:
    """The library's refusal; an InvalidRecordError lists every refused field. A value is
    echoed cut at validation.ECHO_MAX_CHARS characters (`echoed`), as in the message."""
    problems = [
        Problem(field=str(echoed(item.field)), value=_plain(echoed(item.value)), rule=item.rule)
        for item in getattr(error, "errors", [error])
    ]
    return _refusal(problems, str(error))


def _schema_refusal(error: ValidationError) -> Refusal:
    """The request schema's refusal (types, patterns), before the library sees the input."""
    problems = [
        Problem(field=_field(item["loc"]), value=None, rule=item["msg"]) for item in error.errors
    ]
    return _refusal(problems, "; ".join(f"{item.field}: {item.rule}" for item in problems))


def _field(loc: tuple[str | int, ...]) -> str:
    """The field a schema refusal names: ninja's loc is (source, parameter[, field...]); the input
    itself is not kept by ninja, so these refusals carry value null."""
    parts = [str(part) for part in loc[1:]]
    return ".".join(parts[1:] or parts)


def install(api: NinjaAPI) -> None:
    """Register the handlers on `api` (the most specific exception class wins)."""

    def respond(request: HttpRequest, status: int, body: Schema) -> HttpResponse:
        return api.create_response(request, body.model_dump(), status=status)

    def refused(request: HttpRequest, error: InvalidInputError) -> HttpResponse:
        return respond(request, 422, _input_refusal(error))

    def stale(request: HttpRequest, error: StaleVersionError) -> HttpResponse:
        return respond(request, 409, _input_refusal(error))

    def schema_refused(request: HttpRequest, error: ValidationError) -> HttpResponse:
        return respond(request, 422, _schema_refusal(error))

    def forbidden(request: HttpRequest, error: PermissionDenied) -> HttpResponse:
        return respond(request, 403, Detail(detail=str(error) or "forbidden"))

    def not_found(request: HttpRequest, error: Http404) -> HttpResponse:
        return respond(request, 404, Detail(detail=str(error) or "not found"))

    def bad_request(request: HttpRequest, error: Exception) -> HttpResponse:
        """A request Django itself refuses (malformed multipart body, too many fields, too big):
        400 as Django answers it, in JSON."""
        return respond(request, 400, Detail(detail="bad request"))

    def internal(request: HttpRequest, error: Exception) -> HttpResponse:
        return api.create_response(request, internal_error_body(request, error), status=500)

    def database_refused(request: HttpRequest, error: DatabaseError) -> HttpResponse:
        """A data-lock trigger's refusal (database locked, patient frozen): 409; else 500."""
        refusal = refusal_of(error)
        if refusal is None:
            return internal(request, error)
        return respond(request, 409, _input_refusal(refusal))

    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (InvalidInputError, refused),
        (StaleVersionError, stale),
        (RecordLockedError, stale),
        (DataLockedError, stale),
        (DatabaseError, database_refused),
        (ValidationError, schema_refused),
        (PermissionDenied, forbidden),
        (Http404, not_found),
        (BadRequest, bad_request),
        (SuspiciousOperation, bad_request),
        (MultiPartParserError, bad_request),
        (Exception, internal),
    ]
    for exception, handler in handlers:
        api.add_exception_handler(exception, handler)


def docs_login_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The OpenAPI schema and its docs page for signed-in users only: the JSON schema answers 401
    (as every operation does), the docs page sends a browser to the login page."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        if request.path.endswith(".json"):
            return JsonResponse(Detail(detail="Unauthorized").model_dump(), status=401)
        return redirect_to_login(request.get_full_path())

    return guarded
