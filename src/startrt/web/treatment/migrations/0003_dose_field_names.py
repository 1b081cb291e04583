"""A cycle's doses take the course model's names (`protocol.course`): *_dose_gy."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("treatment", "0002_cycle_resources_and_deviations")]

    operations = [
        migrations.RemoveConstraint(model_name="dosimetryresult", name="kidney_doses_0_100_gy"),
        migrations.RenameField("dosimetryresult", "left_kidney_gy", "left_kidney_dose_gy"),
        migrations.RenameField("dosimetryresult", "right_kidney_gy", "right_kidney_dose_gy"),
        migrations.RenameField("dosimetryresult", "marrow_gy", "marrow_dose_gy"),
        migrations.AddConstraint(
            model_name="dosimetryresult",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("left_kidney_dose_gy__gte", 0),
                    ("left_kidney_dose_gy__lte", 100.0),
                    ("right_kidney_dose_gy__gte", 0),
                    ("right_kidney_dose_gy__lte", 100.0),
                ),
                name="kidney_doses_0_100_gy",
            ),
        ),
    ]
