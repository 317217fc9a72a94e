"""ASGI entry point (uvicorn): Django admin and the REST API; static files are served in the embedded run."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cio_site.settings")
django_application = get_asgi_application()

if os.environ.get("CIO_SERVE_STATIC", "1") == "1":
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(django_application)
else:
    application = django_application
