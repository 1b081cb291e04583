"""The API docs (/api/docs, Swagger UI) render the API's operations in headless Chromium with every
request to another host refused: the docs' scripts and styles are the application's own static
files, and nothing breaks the Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import ConsoleMessage, Route, expect

from web.test_browser import chromium_page, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_offline(
    live_server: Any, flushable_audit_trail: None, staff: dict[str, User], tmp_path: Path
) -> None:
    base_url = live_server.url
    local_host = urlsplit(base_url).hostname
    refused: list[str] = []
    loaded: list[str] = []
    console: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname == local_host or url.startswith("data:"):
            loaded.append(url)
            route.continue_()
        else:
            refused.append(url)
            route.abort("internetdisconnected")

    def note(message: ConsoleMessage) -> None:
        if message.type in {"error", "warning"}:
            console.append(message.text)

    with chromium_page() as page:
        page.context.route("**/*", only_local)
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
    assert operation_count >= 20
    assert [text for text in console if "Content Security Policy" in text] == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(shot, console)
