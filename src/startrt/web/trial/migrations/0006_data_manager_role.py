# The data manager role (all sites): its choice and the memberships it may hold without a site.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("trial", "0005_monitor_role_label"),
    ]

    operations = [
        migrations.AlterField(
            model_name="membership",
            name="role",
            field=models.CharField(
                choices=[
                    ("investigator", "Investigator"),
                    ("research_nurse", "Research nurse"),
                    ("physicist", "Medical physicist"),
                    ("pharmacist", "Pharmacist"),
                    ("monitor", "Monitor (all sites)"),
                    ("data_manager", "Data manager (all sites)"),
                    ("statistician", "Statistician"),
                    ("administrator", "Administrator"),
                ],
                max_length=32,
            ),
        ),
        migrations.RemoveConstraint(
            model_name="membership",
            name="site_roles_need_a_site",
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.CheckConstraint(
                condition=models.Q(site__isnull=False)
                | models.Q(role__in=["monitor", "data_manager", "statistician", "administrator"]),
                name="site_roles_need_a_site",
            ),
        ),
    ]
