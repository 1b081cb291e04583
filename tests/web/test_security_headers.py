"""Headers of every answer: a Content-Security-Policy without inline script or style (the templates
hold none), `Cache-Control: no-store` on pages, the API and CSV downloads (not on static files),
the stylesheet served by the application; the HTTPS settings off by default and turned on by
STARTRT_HTTPS=1 (Django's deployment checks pass), each also settable on its own."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from startrt.web import pages
from startrt.web.trial import services
from startrt.web.trial.models import Site

Staff = dict[str, User]
Sites = dict[str, Site]

TEMPLATES = Path(pages.__file__).parent / "templates"
INLINE = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(ld\+)?json)", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "style= attribute": re.compile(r"\sstyle\s*=", re.I),
    "on* handler": re.compile(r"\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def directives(reply: Any) -> dict[str, list[str]]:
    policy = reply["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


def test_no_template_holds_inline_script_style_or_handlers() -> None:
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert templates
    found = [
        f"{template.name}: {kind}"
        for template in templates
        for kind, pattern in INLINE.items()
        if pattern.search(template.read_text(encoding="utf-8"))
    ]
    assert found == []


@pytest.mark.django_db
def test_the_policy_allows_only_the_application_itself(client: Client) -> None:
    reply = client.get("/login/")
    assert reply.status_code == 200
    policy = directives(reply)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert "unsafe-inline" not in reply["Content-Security-Policy"]
    assert "unsafe-eval" not in reply["Content-Security-Policy"]
    assert reply["X-Frame-Options"] == "DENY"
    assert reply["X-Content-Type-Options"] == "nosniff"
    assert reply["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_the_stylesheet_is_a_static_file_of_the_application(client: Client) -> None:
    page = client.get("/login/").content.decode()
    assert "<style" not in page
    [href] = re.findall(r'<link rel="stylesheet" href="([^"]+)"', page)
    assert href == "/static/pages/startrt.css"
    sheet = client.get(href)
    assert sheet.status_code == 200
    assert sheet["Content-Type"].startswith("text/css")
    assert b"--accent" in b"".join(sheet.streaming_content)
    assert "no-store" not in sheet["Cache-Control"]
    assert client.get("/static/pages/../../settings.py").status_code == 404
    assert client.get("/static/pages/missing.css").status_code == 404
    assert client.post("/static/pages/startrt.css").status_code == 405


@pytest.mark.django_db
def test_clinical_answers_are_never_stored(staff: Staff, sites: Sites) -> None:
    services.register_patient(staff["nurse"], sites["Lund"], "S01-LUN-001", "male")
    client = Client()
    client.force_login(staff["investigator"])
    for url in [
        "/",
        "/patients/S01-LUN-001/",
        "/patients/S01-LUN-001/audit/",
        "/patients/S01-LUN-001/audit.csv",
        "/api/patients",
        "/api/patients/S01-LUN-001",
        "/api/openapi.json",
        "/api/docs",
        "/api/no-such-thing",
        "/health",
    ]:
        reply = client.get(url)
        assert reply.status_code in {200, 404}, url
        assert "no-store" in reply["Cache-Control"], url
        assert "Content-Security-Policy" in reply, url
    assert Client().get("/login/")["Cache-Control"].count("no-store") == 1


@pytest.mark.django_db
def test_https_is_off_by_default_for_local_use(client: Client, settings: Any) -> None:
    assert settings.SESSION_COOKIE_SECURE is False
    assert settings.CSRF_COOKIE_SECURE is False
    assert settings.SECURE_SSL_REDIRECT is False
    assert settings.SECURE_HSTS_SECONDS == 0
    assert settings.SECURE_PROXY_SSL_HEADER is None
    reply = client.get("/login/")
    assert reply.status_code == 200
    assert "Strict-Transport-Security" not in reply


@pytest.mark.django_db
def test_the_https_settings_at_work(client: Client, settings: Any) -> None:
    """What STARTRT_HTTPS=1 sets, through the middleware: plain HTTP redirected (not /health),
    HTTPS as told by the proxy's header gets HSTS and secure cookies."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = True
    plain = client.get("/login/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/login/"
    assert client.get("/health").status_code == 200
    secure = client.get("/login/", headers={"X-Forwarded-Proto": "https"})
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000"
    assert secure.cookies["csrftoken"]["secure"] is True


def deployment(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """`startrt manage check --deploy` and the HTTPS settings, in a fresh process."""
    script = (
        "import json, sys, django; from django.conf import settings;"
        "from django.core.management import call_command; django.setup();"
        "names = ['SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_SSL_REDIRECT',"
        " 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_PROXY_SSL_HEADER',"
        " 'CSRF_TRUSTED_ORIGINS'];"
        "print(json.dumps({name: getattr(settings, name) for name in names}));"
        "call_command('check', deploy=True, fail_level='WARNING')"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("STARTRT_") and key != "DJANGO_SETTINGS_MODULE"
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "startrt.web.settings",
        "STARTRT_DATA_DIR": str(tmp_path),
        "STARTRT_ALLOWED_HOSTS": "trial.example.org",
        **environment,
    }
    return subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_one_switch_turns_the_https_set_on(tmp_path: Path) -> None:
    local = deployment(tmp_path)
    assert json.loads(local.stdout.splitlines()[0]) == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_PROXY_SSL_HEADER": None,
        "CSRF_TRUSTED_ORIGINS": [],
    }
    assert local.returncode != 0  # Django's deployment checks list what is missing
    for warning in ["security.W004", "security.W008", "security.W012", "security.W016"]:
        assert warning in local.stderr

    https = deployment(tmp_path, STARTRT_HTTPS="1")
    # left to the site's owner (README): HSTS for every subdomain, and the browsers' preload list
    assert set(re.findall(r"security\.W\d+", https.stderr)) == {"security.W005", "security.W021"}
    assert json.loads(https.stdout.splitlines()[0]) == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "CSRF_TRUSTED_ORIGINS": ["https://trial.example.org"],
    }

    each = deployment(
        tmp_path,
        STARTRT_HTTPS="1",
        STARTRT_SECURE_SSL_REDIRECT="0",
        STARTRT_SECURE_HSTS_SECONDS="600",
        STARTRT_SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        STARTRT_SECURE_PROXY_SSL_HEADER="X-Scheme: https",
        STARTRT_CSRF_TRUSTED_ORIGINS="https://a.example.org, https://b.example.org",
    )
    chosen = json.loads(each.stdout.splitlines()[0])
    assert chosen["SECURE_SSL_REDIRECT"] is False
    assert chosen["SECURE_HSTS_SECONDS"] == 600
    assert chosen["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert chosen["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_SCHEME", "https"]
    assert chosen["CSRF_TRUSTED_ORIGINS"] == ["https://a.example.org", "https://b.example.org"]

    domain = deployment(
        tmp_path,
        STARTRT_HTTPS="1",
        STARTRT_SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        STARTRT_SECURE_HSTS_PRELOAD="1",
    )
    assert domain.returncode == 0, domain.stderr

    wrong = deployment(tmp_path, STARTRT_HTTPS="maybe")
    assert wrong.returncode != 0
    assert "STARTRT_HTTPS='maybe': use 1 or 0" in wrong.stderr
