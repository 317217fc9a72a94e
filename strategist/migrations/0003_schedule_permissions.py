"""Risk officers edit the Strategist's schedule in admin (django-celery-beat's models); viewers read it."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from core.roles import SCHEDULE_APP, SCHEDULE_PERMISSIONS


def grant(apps, schema_editor):
    config = apps.get_app_config(SCHEDULE_APP)
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission = apps.get_model("auth", "Permission").objects.filter(content_type__app_label=SCHEDULE_APP)
    for role, codenames in SCHEDULE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.add(*permission.filter(codename__in=codenames))


def revoke(apps, schema_editor):
    permission = apps.get_model("auth", "Permission").objects.filter(content_type__app_label=SCHEDULE_APP)
    for group in apps.get_model("auth", "Group").objects.filter(name__in=list(SCHEDULE_PERMISSIONS)):
        group.permissions.remove(*permission)


class Migration(migrations.Migration):
    dependencies = [("strategist", "0002_schedule"), ("policies", "0008_strategist_role")]
    operations = [migrations.RunPython(grant, revoke)]
