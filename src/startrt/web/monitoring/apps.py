from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Data queries and source-data verification by the trial's monitors; freeze and lock."""

    name = "startrt.web.monitoring"
    label = "monitoring"
    verbose_name = "Monitoring"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from startrt.web.monitoring.lock_guard import install

        # the data-lock triggers on every clinical table there is after each migrate
        post_migrate.connect(install, sender=self, dispatch_uid="startrt-data-lock-triggers")
