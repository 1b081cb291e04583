from __future__ import annotations

from django.apps import AppConfig


class EventsConfig(AppConfig):
    """Adverse events, tumour assessments, end of treatment, follow-up and deaths."""

    name = "startrt.web.events"
    label = "events"
    default_auto_field = "django.db.models.BigAutoField"
