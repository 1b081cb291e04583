from __future__ import annotations

from django.apps import AppConfig


class PagesConfig(AppConfig):
    """Server-rendered pages (templates + htmx)."""

    name = "startrt.web.pages"
    label = "pages"
