from __future__ import annotations

from django.apps import AppConfig


class TreatmentConfig(AppConfig):
    """The treatment course: cycles, pre-cycle labs, capecitabine, dosimetry, cycle plans."""

    name = "startrt.web.treatment"
    label = "treatment"
    default_auto_field = "django.db.models.BigAutoField"
