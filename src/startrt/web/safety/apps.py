from django.apps import AppConfig


class SafetyConfig(AppConfig):
    """Serious adverse event reports to the sponsor's safety desk."""

    name = "startrt.web.safety"
    label = "safety"
    verbose_name = "Safety reporting"
