"""Beat sweeps for unacknowledged critical alerts every minute (a row risk officers can edit in admin)."""

from django.db import migrations

NAME = "alerting: escalate unacknowledged critical alerts"


def create(apps, schema_editor):
    task = apps.get_model("django_celery_beat", "PeriodicTask")
    if task.objects.filter(name=NAME).exists():
        return
    every, _ = apps.get_model("django_celery_beat", "IntervalSchedule").objects.get_or_create(
        every=60, period="seconds"
    )
    task.objects.create(name=NAME, task="alerting.escalate", interval=every, kwargs="{}", enabled=True)


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(create, remove)]
