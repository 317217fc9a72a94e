"""The API's JSON body parser: bounded, and parse errors answered as 400/413 in the envelope, never a 500.

Django's default would read any size and Python's json module recurses on nesting; orjson stops at a depth of
1,024 and rejects invalid UTF-8 and lone surrogates, each as a plain parse error.
"""

from typing import Any

import orjson
from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import BaseParser

from core.numbers import whole_number


class PayloadTooLargeError(exceptions.APIException):
    status_code = 413
    default_detail = "request body too large"
    default_code = "payload_too_large"


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        limit = settings.CIO_MAX_REQUEST_BYTES
        request = (parser_context or {}).get("request")
        declared = whole_number(request.META.get("CONTENT_LENGTH")) if request is not None else None
        if declared is not None and declared > limit:
            raise PayloadTooLargeError(f"request body is {declared:,} bytes; the limit is {limit:,}")
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLargeError(f"request body is over the {limit:,}-byte limit")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise exceptions.ParseError(f"JSON parse error: {exc}") from exc
