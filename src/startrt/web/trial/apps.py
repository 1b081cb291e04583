from __future__ import annotations

from django.apps import AppConfig


class TrialConfig(AppConfig):
    """The trial's data: sites, roles, patients, screening, randomization, audit trail."""

    name = "startrt.web.trial"
    label = "trial"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import pre_migrate

        from startrt.web.trial.migration_guard import refuse_destructive_migration

        # refuses unapplying a trial app's migration (migration_guard)
        pre_migrate.connect(refuse_destructive_migration, dispatch_uid="startrt-migration-guard")
