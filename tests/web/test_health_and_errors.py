"""/health reads and writes the database (503 when it cannot); the API answers every error in JSON:
an unhandled exception as 500 {"detail": "internal error", "id": ...} with the traceback logged
under that id, unknown paths and methods under /api/ as 404 / 405."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import OperationalError, connection
from django.test import Client, RequestFactory

Staff = dict[str, User]


def failing(statement: str) -> Callable[..., Any]:
    """A database execute wrapper refusing every statement starting with `statement`."""

    def wrapper(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if sql.lstrip().upper().startswith(statement):
            raise OperationalError(f"attempt to {statement.lower()} a readonly database")
        return execute(sql, *args)

    return wrapper


@pytest.mark.django_db
def test_health_answers_ok_after_a_read_and_a_write_that_is_not_kept(client: Client) -> None:
    statements: list[str] = []

    def record(execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        statements.append(sql.lstrip().split()[0].upper())
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        reply = client.get("/health")
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}
    assert {"SELECT", "INSERT"} <= set(statements)
    assert not Session.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("statement", ["INSERT", "SELECT"])
def test_health_answers_503_when_the_database_cannot_be_written_or_read(
    client: Client, statement: str, caplog: pytest.LogCaptureFixture
) -> None:
    with connection.execute_wrapper(failing(statement)), caplog.at_level(logging.ERROR):
        reply = client.get("/health")
    assert reply.status_code == 503
    assert reply.json() == {
        "status": "unavailable",
        "detail": "the database cannot be read or written",
    }
    assert "readonly database" in caplog.text


@pytest.mark.django_db
def test_an_unhandled_api_error_is_json_with_a_logged_reference(
    staff: Staff, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr("startrt.web.api.trial.visible_patient", broken)
    client = Client()
    client.force_login(staff["nurse"])
    with caplog.at_level(logging.ERROR, logger="startrt.web.api"):
        reply = client.get("/api/patients/S01-LUN-001")
    assert reply.status_code == 500
    assert reply["Content-Type"].startswith("application/json")
    body = reply.json()
    assert set(body) == {"detail", "id"}
    assert body["detail"] == "internal error"
    assert "secret" not in reply.content.decode()
    [logged] = [record for record in caplog.records if body["id"] in record.getMessage()]
    assert "GET /api/patients/S01-LUN-001" in logged.getMessage()
    assert logged.exc_info is not None
    assert "secret internal detail" in caplog.text  # the traceback, in the log only


@pytest.mark.django_db
def test_unknown_api_paths_and_methods_answer_json(staff: Staff) -> None:
    client = Client()
    client.force_login(staff["monitor"])
    missing = client.get("/api/no-such-thing")
    assert missing.status_code == 404
    assert missing["Content-Type"] == "application/json"
    assert missing.json() == {"detail": "not found"}

    wrong_method = client.delete("/api/patients")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"detail": "method not allowed"}
    assert set(wrong_method["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}

    # the pages keep their own (HTML) 404
    page = client.get("/patients/S01-XXX-999/")
    assert page.status_code == 404
    assert not page["Content-Type"].startswith("application/json")


def test_a_500_outside_the_api_handlers_is_json_under_api(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Django's handler500 (an exception raised before the API's handlers, e.g. in a
    middleware): JSON with a logged reference under /api/."""
    from startrt.web.urls import server_error

    request = RequestFactory().get("/api/patients")
    try:
        raise RuntimeError("in a middleware")
    except RuntimeError:
        with caplog.at_level(logging.ERROR, logger="startrt.web.api"):
            reply = server_error(request)
    assert reply.status_code == 500
    assert reply["Content-Type"] == "application/json"
    assert reply.content.decode().startswith('{"detail": "internal error", "id": "')
    assert "in a middleware" in caplog.text


@pytest.mark.django_db
def test_a_request_django_refuses_is_a_json_400(staff: Staff) -> None:
    """A multipart body without its boundary: Django's own 400, answered in JSON."""
    client = Client(enforce_csrf_checks=True)  # the CSRF check reads the (broken) form
    client.force_login(staff["nurse"])
    token = "Csrf0Token0For0The0Api0Tests0032"
    client.cookies["csrftoken"] = token
    reply = client.generic(
        "POST",
        "/api/patients",
        b'{"site_code": "LUN"}',
        content_type="multipart/form-data",
        headers={"X-CSRFToken": token},
    )
    assert reply.status_code == 400
    assert reply.json() == {"detail": "bad request"}
