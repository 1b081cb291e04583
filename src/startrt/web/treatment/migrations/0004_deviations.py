"""One representation of a cycle's protocol deviations: the `Deviation` table (a date outside
the window, or a planned activity the investigator signs). The window deviations cycles kept
as text move into it, with who recorded them, when and why from the audit trail."""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models

UNKNOWN = "not in the audit trail (recorded before migration treatment 0004)"


def window_deviations_to_rows(apps: Any, schema_editor: Any) -> None:
    Cycle = apps.get_model("treatment", "Cycle")
    Deviation = apps.get_model("treatment", "Deviation")
    AuditEntry = apps.get_model("trial", "AuditEntry")
    for cycle in Cycle.objects.exclude(window_deviation="").order_by("pk"):
        entry = (
            AuditEntry.objects.filter(
                table="treatment_cycle",
                row_id=str(cycle.pk),
                new__window_deviation=cycle.window_deviation,
            )
            .order_by("at", "pk")
            .last()
        )
        deviation = Deviation.objects.create(
            patient_id=cycle.patient_id,
            cycle=cycle,
            kind="window",
            description=cycle.window_deviation,
            reason=entry.reason if entry is not None and entry.reason else UNKNOWN,
            recorded_by="" if entry is None else entry.username,
        )
        if entry is not None:
            Deviation.objects.filter(pk=deviation.pk).update(recorded_at=entry.at)


def window_rows_to_text(apps: Any, schema_editor: Any) -> None:
    Cycle = apps.get_model("treatment", "Cycle")
    Deviation = apps.get_model("treatment", "Deviation")
    standing = Deviation.objects.filter(kind="window", withdrawn_at__isnull=True)
    for deviation in standing.order_by("recorded_at", "pk"):
        Cycle.objects.filter(pk=deviation.cycle_id).update(window_deviation=deviation.description)


class Migration(migrations.Migration):
    dependencies = [
        ("treatment", "0003_dose_field_names"),
        ("trial", "0003_consent_version"),
    ]

    operations = [
        migrations.CreateModel(
            name="Deviation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[("window", "window"), ("activity", "activity")], max_length=16
                    ),
                ),
                ("description", models.TextField()),
                ("reason", models.TextField()),
                ("planned_activity_gbq", models.FloatField(blank=True, null=True)),
                ("predicted_cumulative_kidney_gy", models.FloatField(blank=True, null=True)),
                ("decision", models.JSONField(blank=True, default=dict)),
                ("recorded_by", models.CharField(max_length=150)),
                ("recorded_at", models.DateTimeField(auto_now_add=True)),
                ("signed_by", models.CharField(blank=True, max_length=150)),
                ("signed_at", models.DateTimeField(blank=True, null=True)),
                ("withdrawn_at", models.DateTimeField(blank=True, null=True)),
                ("withdrawn_reason", models.TextField(blank=True)),
                ("version", models.PositiveIntegerField(default=1)),
                (
                    "cycle",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deviations",
                        to="treatment.cycle",
                    ),
                ),
                (
                    "patient",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deviations",
                        to="trial.patient",
                    ),
                ),
                (
                    "proposal",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="deviations",
                        to="treatment.planproposal",
                    ),
                ),
            ],
            options={
                "ordering": ["patient", "recorded_at", "id"],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("reason", ""), _negated=True),
                            models.Q(("description", ""), _negated=True),
                        ),
                        name="deviation_described",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("signed_at__isnull", True), ("signed_by", "")),
                            models.Q(
                                ("signed_at__isnull", False),
                                models.Q(("signed_by", ""), _negated=True),
                            ),
                            _connector="OR",
                        ),
                        name="deviation_signed_by_and_at",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("withdrawn_at__isnull", True), ("withdrawn_reason", "")),
                            models.Q(
                                ("withdrawn_at__isnull", False),
                                models.Q(("withdrawn_reason", ""), _negated=True),
                            ),
                            _connector="OR",
                        ),
                        name="deviation_withdrawn_with_reason",
                    ),
                ],
            },
        ),
        migrations.RunPython(window_deviations_to_rows, window_rows_to_text),
        migrations.RemoveField(model_name="cycle", name="window_deviation"),
    ]
