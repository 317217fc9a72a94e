"""The Django project. Its Celery app is loaded with it, so `shared_task`s bind to it (`cio_site.celery`)."""

from cio_site.celery import app as celery_app

__all__ = ["celery_app"]
