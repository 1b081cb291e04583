from __future__ import annotations

from django.apps import AppConfig


class MedicationsConfig(AppConfig):
    """Concomitant medications and the protocol deviations of prohibited therapies."""

    name = "startrt.web.medications"
    label = "medications"
    default_auto_field = "django.db.models.BigAutoField"
