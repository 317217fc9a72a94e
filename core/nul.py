"""Text holding a NUL character is refused before it reaches a query: PostgreSQL can neither store nor compare it
(psycopg raises `DataError`, which answered 500). REST refuses it in `core/api.py` (a VAL_ERR envelope), MCP in
`cio_site/mcp/calls.py` (a VAL_ERR tool error), the admin here (a 400 page saying so)."""

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

NUL = "\x00"
REFUSAL = "Null characters are not allowed in an admin address or form."


def _texts(request: HttpRequest) -> list[str]:
    texts = [request.path]
    for params in (request.GET, request.POST):
        for name, values in params.lists():
            texts += [name, *values]
    return texts


class AdminNulRefusalMiddleware:
    """Every admin page at once: its search box (`?q=`), filters, record addresses and forms; the admin's own forms
    refuse NUL already, but filters, custom views and plain `request.POST` reads do not."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: Any, args: Any, kwargs: Any) -> HttpResponse | None:
        match = request.resolver_match
        if match is None or "admin" not in match.namespaces:
            return None
        if any(NUL in text for text in _texts(request)):
            return HttpResponseBadRequest(REFUSAL, content_type="text/plain; charset=utf-8")
        return None
