"""The auto-approval envelope (narrower than the envelope; docs/strategist.md) and the record of the envelope's
seeding from the officers' baseline on first run."""

from django.db import migrations, models

import strategist.models


class Migration(migrations.Migration):
    dependencies = [
        ("strategist", "0003_schedule_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="strategistsettings",
            name="auto_approve_max_min_confidence",
            field=models.FloatField(default=0.9, help_text="auto-approval: no min_confidence above this (0-1)"),
        ),
        migrations.AddField(
            model_name="strategistsettings",
            name="auto_approve_min_fraction",
            field=models.FloatField(
                default=0.5,
                help_text="auto-approval: no max_* limit may be cut below this fraction of the officers' baseline (0-1]",
            ),
        ),
        migrations.AddField(
            model_name="strategistsettings",
            name="auto_approve_states",
            field=models.JSONField(
                blank=True,
                default=strategist.models._default_auto_states,
                help_text='auto-approval: states it may set on a strategy or symbol (never the global one), e.g. ["reducing"]',
            ),
        ),
        migrations.AddField(
            model_name="strategistsettings",
            name="seeded_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="strategistsettings",
            name="seeded_from_version",
            field=models.PositiveIntegerField(
                blank=True, editable=False, help_text="the officers' baseline the envelope was seeded from", null=True
            ),
        ),
    ]
