"""ASGI entry point (uvicorn): Django admin and the REST API; static files are served in the embedded run."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cio_site.settings")
django_application = get_asgi_application()

if os.environ.get("CIO_SERVE_STATIC", "1") == "1":
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.exceptions import SuspiciousFileOperation
    from django.http import Http404, HttpRequest, HttpResponseBase

    class StaticFiles(ASGIStaticFilesHandler):
        """A path that climbs out of the static folders (`/static/../`) is a 404, not a crash."""

        def serve(self, request: HttpRequest) -> HttpResponseBase:
            try:
                return super().serve(request)
            except SuspiciousFileOperation as exc:
                raise Http404("no such static file") from exc

    application = StaticFiles(django_application)
else:
    application = django_application
