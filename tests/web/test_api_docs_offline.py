"""Offline-safe (issue 14, item 8): the API docs (/api/docs, Swagger UI) render the API's operations
in headless Chromium with every request to another host refused: the docs' scripts and styles are
the application's own static files, and nothing breaks the Content-Security-Policy. No template or
stylesheet of the package names an asset on another host."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import ConsoleMessage, Page, Route, expect

import startrt
from web.test_browser import chromium_page, sign_in

PACKAGE = Path(startrt.__file__).parent
ASSET_FILES = ("*.html", "*.html.j2", "*.css", "*.js")
# an address on another host (absolute http(s) or protocol-relative) in a src/href/srcset/action/
# poster attribute, a CSS url() or an @import: offline it fails (xmlns="http://..." names no file)
REMOTE_ASSET = re.compile(
    r"""(?:\b(?:src|href|srcset|poster|action)\s*=\s*["']?|url\(\s*["']?|@import\s+["'])"""
    r"(?:https?:)?//",
    re.IGNORECASE,
)


def refuse_other_hosts(page: Page, base_url: str) -> tuple[list[str], list[str]]:
    """Route every request of `page`'s context: to the live server's host (or a data: URI) it
    goes through, to any other host it fails as if offline. Returns the lists the loaded and the
    refused addresses are appended to."""
    local_host = urlsplit(base_url).hostname
    loaded: list[str] = []
    refused: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == local_host or url.startswith("data:"):
            loaded.append(url)
            route.continue_()
        else:
            refused.append(url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_local)
    return loaded, refused


def test_no_template_or_stylesheet_names_an_asset_on_another_host() -> None:
    files = sorted(path for pattern in ASSET_FILES for path in PACKAGE.rglob(pattern))
    remote = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if REMOTE_ASSET.search(line)
    ]
    assert len(files) >= 30  # the pages' templates, the stylesheets and the report template
    assert remote == []


@pytest.mark.parametrize(
    "line",
    [
        '<script src="https://cdn.example.org/swagger-ui-bundle.js"></script>',
        "<link rel=stylesheet href=//cdn.example.org/a.css>",
        "body { background: url('http://example.org/a.png') }",
        '@import "https://fonts.example.org/css";',
    ],
)
def test_the_scan_finds_a_remote_asset(line: str) -> None:
    assert REMOTE_ASSET.search(line)


@pytest.mark.parametrize(
    "line",
    [
        '<svg xmlns="http://www.w3.org/2000/svg" role="img">',
        '<link rel="stylesheet" href="/static/pages/startrt.css">',
        "<p>See https://example.org for the protocol.</p>",
    ],
)
def test_the_scan_lets_local_assets_and_text_pass(line: str) -> None:
    assert not REMOTE_ASSET.search(line)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_api_docs_render_offline(
    live_server: Any, flushable_audit_trail: None, staff: dict[str, User], tmp_path: Path
) -> None:
    base_url = live_server.url
    console: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            console.append(message.text)

    with chromium_page() as page:
        loaded, refused = refuse_other_hosts(page, base_url)
        page.on("console", note)
        sign_in(page, base_url, "monitor")
        page.goto(f"{base_url}/api/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("startrt")
        operations = page.locator(".opblock")
        expect(operations.first).to_be_visible()
        expect(
            page.locator(".opblock-summary-path[data-path='/api/patients']").first
        ).to_be_visible()
        operation_count = operations.count()
        page.locator(".opblock-summary-path[data-path='/api/patients']").first.click()
        expect(page.locator(".opblock.is-open .parameters-container")).to_be_visible()
        shot = tmp_path / "api_docs_offline.png"
        page.screenshot(path=shot)  # the visible part: the title and the first operations

    assert refused == []
    assert any(url.endswith("/static/ninja/swagger-ui-bundle.js") for url in loaded)
    assert any(url.endswith("/static/ninja/swagger-ui.css") for url in loaded)
    assert any(url.endswith("/static/pages/api_docs.css") for url in loaded)
    assert operation_count >= 20
    assert [text for text in console if "Content Security Policy" in text] == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(shot, console)
