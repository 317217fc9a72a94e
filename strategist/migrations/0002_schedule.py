"""The beat schedule, as rows risk officers can edit in admin (django-celery-beat): a reasoning cycle every
`CIO_STRATEGIST_INTERVAL_S` seconds (900 unless set when this migration runs) and the thought outbox's flush
every minute. Existing rows are left as they are."""

from django.conf import settings
from django.db import migrations

CYCLE = "strategist: reasoning cycle"
FLUSH = "strategist: store pending thoughts"


def create_schedule(apps, schema_editor):
    interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    task = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, every, path, kwargs in (
        (CYCLE, settings.CIO_STRATEGIST_INTERVAL_S, "strategist.run_cycle", '{"trigger": "schedule"}'),
        (FLUSH, 60, "strategist.flush_thoughts", "{}"),
    ):
        if task.objects.filter(name=name).exists():
            continue
        schedule, _ = interval.objects.get_or_create(every=every, period="seconds")
        task.objects.create(name=name, task=path, interval=schedule, kwargs=kwargs, enabled=True)


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=(CYCLE, FLUSH)).delete()


class Migration(migrations.Migration):
    dependencies = [("strategist", "0001_initial"), ("django_celery_beat", "0019_alter_periodictasks_options")]
    operations = [migrations.RunPython(create_schedule, remove_schedule)]
