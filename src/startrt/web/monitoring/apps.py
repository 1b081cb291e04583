from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Data queries and source-data verification by the trial's monitors."""

    name = "startrt.web.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"
