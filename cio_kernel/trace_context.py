"""W3C trace context: find the incoming `traceparent` (header first, then the fleet's body fields) and format
the one we pass on. The fleet puts it in the body: `_otel_trace_context` (realtime strategies) or
`_otel_trace_headers` (TA bot)."""

import re
from typing import Any

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_BODY_FIELDS = ("_otel_trace_context", "_otel_trace_headers")
# For messages answered without being parsed (load shedding): the first traceparent-looking value in the body.
_RAW_TRACEPARENT = re.compile(rb'"traceparent"\s*:\s*"([0-9a-fA-F-]{55})"')


def valid_traceparent(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip().lower()
    if not _TRACEPARENT.match(value) or value[3:35] == "0" * 32 or value[36:52] == "0" * 16:
        return None
    return value


def incoming_traceparent(headers: dict[str, str] | None, body: Any) -> str | None:
    if headers:
        found = valid_traceparent(headers.get("traceparent"))
        if found:
            return found
    if isinstance(body, dict):
        for name in _BODY_FIELDS:
            carrier = body.get(name)
            if isinstance(carrier, dict):
                found = valid_traceparent(carrier.get("traceparent"))
                if found:
                    return found
    return None


def format_traceparent(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags:02x}"


def traceparent_without_parsing(headers: dict[str, str] | None, raw: bytes) -> str | None:
    """The header, else the first `"traceparent": "..."` in the raw body: a regex scan, no JSON parse."""
    if headers:
        found = valid_traceparent(headers.get("traceparent"))
        if found:
            return found
    match = _RAW_TRACEPARENT.search(raw, 0, 8192)
    return valid_traceparent(match.group(1).decode()) if match else None
