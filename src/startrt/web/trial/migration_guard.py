"""Unapplying a migration of a trial app destroys trial data or its protection (`migrate trial
0001` drops the audit trail's triggers and every later table): refused, whoever runs `migrate`
(`startrt manage migrate`, `startrt serve`, call_command), unless the environment sets
STARTRT_ALLOW_DESTRUCTIVE_MIGRATION=1 for that run.

Connected to Django's pre_migrate signal by the trial app, so the refusal comes before the
first change; `migrate --plan` still shows what would be done."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import CommandError

OVERRIDE_ENV = "STARTRT_ALLOW_DESTRUCTIVE_MIGRATION"
TRIAL_APPS = frozenset(
    {"trial", "treatment", "events", "signing", "monitoring", "medications", "safety"}
)


def refuse_destructive_migration(plan: list[tuple[Any, bool]] | None = None, **_: Any) -> None:
    """The pre_migrate receiver: refuse a plan unapplying a trial app's migration."""
    if os.environ.get(OVERRIDE_ENV) == "1":
        return
    backwards = [
        f"{migration.app_label}.{migration.name}"
        for migration, reverse in plan or []
        if reverse and migration.app_label in TRIAL_APPS
    ]
    if backwards:
        raise CommandError(
            f"refused: migrating backwards would unapply {', '.join(backwards)} and destroy "
            "trial data or the audit trail's protection; set "
            f"{OVERRIDE_ENV}=1 for this run if that is really meant (take a backup first)"
        )
