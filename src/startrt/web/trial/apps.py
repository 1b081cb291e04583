from __future__ import annotations

from django.apps import AppConfig


class TrialConfig(AppConfig):
    """The trial's data: sites, roles, patients, screening, randomization, audit trail."""

    name = "startrt.web.trial"
    label = "trial"
    default_auto_field = "django.db.models.BigAutoField"
