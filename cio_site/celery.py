"""The Celery app: `celery -A cio_site worker` and `celery -A cio_site beat` (SPEC §1). Configured from Django's
settings (`CELERY_*`); tasks are discovered in each app's `tasks.py`; beat reads its schedule from the database
(django-celery-beat), so risk officers edit it in admin."""

import os
from typing import Any

from celery import Celery, signals

from cio_site.log_component import stamp_entry_point

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cio_site.settings")
stamp_entry_point()  # in `celery worker`/`beat` only: their banners (printed, not logged) get timestamps too

app = Celery("cio_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.setup_logging.connect
def keep_django_logging(**kwargs: Any) -> None:
    """Connected, so Celery leaves logging alone: Django's LOGGING (with the redacting formatter) applies."""
