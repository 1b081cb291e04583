"""Schemathesis against the API's own OpenAPI schema, logged in with a session and a CSRF token
as a Lund nurse-investigator: whatever the generated input, no answer is a server error (5xx).

The schema is taken in-process from the NinjaAPI (at collection no user can sign in, and
/api/openapi.json needs one); it is the document /api/openapi.json serves (test_api checks).
Bounded: 20 examples per operation, derandomized, so it runs in seconds on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from ninja.responses import NinjaJSONEncoder
from schemathesis.checks import not_a_server_error

from startrt.web.api import api
from startrt.web.trial import services
from startrt.web.trial.models import Membership, Role, Site
from startrt.web.wsgi import application
from support.records import eligible_screening

CSRF_TOKEN = "Csrf0Token0For0The0Api0Fuzzing32"  # 32 letters/digits: a valid unmasked secret


@pytest.fixture
def same_connection() -> Iterator[None]:
    """Keep the test's database connection (and transaction) across WSGI requests, as Django's
    test client does: the request signals would otherwise close it."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def login(staff: dict[str, User], sites: dict[str, Site], same_connection: None) -> dict[str, str]:
    """Session and CSRF cookies of a Lund nurse-investigator; one screened patient exists."""
    user = staff["investigator"]
    Membership.objects.create(user=user, site=sites["Lund"], role=Role.RESEARCH_NURSE)
    patient = services.register_patient(user, sites["Lund"], "S01-LUN-001", "male")
    services.record_screening(user, patient, eligible_screening())
    client = Client()
    client.force_login(user)
    session = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    return {django_settings.SESSION_COOKIE_NAME: session, "csrftoken": CSRF_TOKEN}


def served_schema() -> dict[str, object]:
    """The OpenAPI document as /api/openapi.json serves it (JSON encoded and decoded)."""
    document: dict[str, object] = json.loads(
        json.dumps(api.get_openapi_schema(), cls=NinjaJSONEncoder)
    )
    return document


# loaded at collection (schemathesis' lazy fixture loader does not run under pytest 9)
schema = schemathesis.openapi.from_dict(served_schema())
schema.app = application  # the calls go through the WSGI application, in-process


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_causes_a_server_error(case: schemathesis.Case, login: dict[str, str]) -> None:
    case.call_and_validate(
        cookies=login, headers={"X-CSRFToken": CSRF_TOKEN}, checks=[not_a_server_error]
    )
