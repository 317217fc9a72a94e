"""ASGI entry point (uvicorn): Django admin, the cockpit and the REST API over HTTP (static files served in the
embedded run), MCP at `/mcp` (cio_site/mcp), the live audit feed and the cockpit's pushes over websockets (Channels,
the admin's session, the site's own origin only)."""

import os

from django.core.asgi import get_asgi_application

from cio_site.log_component import stamp_entry_point

stamp_entry_point()  # under uvicorn only: anything printed, a start-up traceback, stamped like the log lines
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

    http_application = StaticFiles(django_application)
else:
    http_application = django_application

from channels.auth import AuthMiddlewareStack  # noqa: E402  (after Django is set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from audit.routing import websocket_urlpatterns  # noqa: E402
from cio_site.mcp.app import McpApp  # noqa: E402
from cio_site.origins import ExactOriginValidator  # noqa: E402
from cockpit.routing import websocket_urlpatterns as cockpit_websockets  # noqa: E402

mcp_application = McpApp()


async def http_router(scope: dict, receive: object, send: object) -> None:
    """`/mcp` (and the OAuth resource metadata MCP clients look for) to the MCP app, the rest to Django."""
    path = scope.get("path", "")
    if path == "/mcp" or path.startswith(("/mcp/", "/.well-known/oauth-protected-resource")):
        await mcp_application(scope, receive, send)
    else:
        await http_application(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_router,
        # The feed is opened with the admin's session cookie: only the site's own origin (scheme, host and port
        # exactly) and CIO_TRUSTED_ORIGINS may (cio_site/origins.py).
        "websocket": ExactOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns + cockpit_websockets))),
    }
)
