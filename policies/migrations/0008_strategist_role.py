"""The Strategist's role: it may view and propose, nothing else (core.roles)."""

from django.db import migrations

from core.roles import ROLE_PERMISSIONS, STRATEGIST


def create_role(apps, schema_editor):
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name=STRATEGIST)
    group.permissions.set(
        apps.get_model("auth", "Permission").objects.filter(
            content_type__app_label="policies", codename__in=ROLE_PERMISSIONS[STRATEGIST]
        )
    )


def remove_role(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=STRATEGIST).delete()


class Migration(migrations.Migration):
    dependencies = [("policies", "0007_hash_existing_tokens")]
    operations = [migrations.RunPython(create_role, remove_role)]
