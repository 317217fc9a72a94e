"""Which pages may open the live feed's websocket with an officer's session cookie: the site's own origin, and the
origins listed in `CIO_TRUSTED_ORIGINS` (Django's `CSRF_TRUSTED_ORIGINS`, the list admin's own forms trust).

A browser sends the session cookie with a websocket handshake from any page, so the Origin header is what tells
the admin's page from another one. Scheme, host and port are compared exactly: a page served by another port on
an allowed host (another service on the same machine, a dev server) is another origin, and is refused. Same
origin means the Origin the socket's own `Host` names, with the page's scheme (`http` for `ws`, `https` for
`wss`), on a host `ALLOWED_HOSTS` allows. Behind a TLS-terminating proxy that speaks plain HTTP to this server,
list the public origin (`https://cio.example.com`) in `CIO_TRUSTED_ORIGINS`."""

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

Origin = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_origin(text: str) -> Origin | None:
    """`scheme://host[:port]` as (scheme, host, port), the port made explicit; None for anything else (a path,
    credentials, a query, another scheme, `null`)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", []) if key == name]
    if len(values) != 1:  # missing, or sent twice: no single answer, so none
        return None
    try:
        return values[0].decode("latin1")
    except UnicodeDecodeError:
        return None


def trusted_origins() -> set[Origin]:
    return {o for o in (parse_origin(t) for t in getattr(settings, "CSRF_TRUSTED_ORIGINS", ())) if o is not None}


def origin_allowed(scope: dict[str, Any]) -> bool:
    raw = _header(scope, b"origin")
    origin = parse_origin(raw) if raw is not None else None
    if origin is None:
        return False
    if origin in trusted_origins():
        return True
    host = _header(scope, b"host")
    if host is None:
        return False
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    page_scheme = "https" if scope.get("scheme") == "wss" else "http"
    return origin == parse_origin(f"{page_scheme}://{host}")


class ExactOriginValidator:
    """ASGI middleware for websockets: refuse the handshake (HTTP 403) unless `origin_allowed`."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("ExactOriginValidator guards websocket connections only")
        if origin_allowed(scope):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)
