"""Adverse-event terms coded with CTCAE v5.0: the term's MedDRA code and System Organ Class, and
the name of the event for an "Other, specify" term.

Rows recorded before: a term spelled exactly as a CTCAE v5.0 term gets that term's code and SOC.
Any other text (a synonym, a misspelling, another case) is kept as entered, never rewritten here:
the row stays "not coded" (code and SOC empty) until a correction, with its reason and audit
entry, chooses a CTCAE term (the services refuse any change that does not)."""

from typing import Any

from django.db import migrations, models

from startrt.clinical.ctcae_terms import terms


def code_exact_terms(apps: Any, schema_editor: Any) -> None:
    AdverseEvent = apps.get_model("events", "AdverseEvent")
    by_term = {entry.term: entry for entry in terms()}
    for event in AdverseEvent.objects.filter(meddra_code=""):
        entry = by_term.get(event.term)
        if entry is not None:
            event.meddra_code, event.soc = entry.meddra_code, entry.soc
            event.save(update_fields=["meddra_code", "soc"])


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_end_of_treatment_reasons"),
    ]

    operations = [
        migrations.AddField(
            model_name="adverseevent",
            name="meddra_code",
            field=models.CharField(blank=True, max_length=8, default=""),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="adverseevent",
            name="other_specify",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AddField(
            model_name="adverseevent",
            name="soc",
            field=models.CharField(blank=True, max_length=100, default=""),
            preserve_default=False,
        ),
        migrations.AddConstraint(
            model_name="adverseevent",
            constraint=models.CheckConstraint(
                condition=models.Q(("other_specify", ""))
                | models.Q(("term__endswith", " - Other, specify")),
                name="ae_other_specify_only_for_other_terms",
            ),
        ),
        migrations.RunPython(code_exact_terms, migrations.RunPython.noop),
    ]
