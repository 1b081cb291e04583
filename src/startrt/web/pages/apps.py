from __future__ import annotations

from django.apps import AppConfig


class PagesConfig(AppConfig):
    """Server-rendered pages (Django templates)."""

    name = "startrt.web.pages"
    label = "pages"
