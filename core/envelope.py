"""The reply envelope (docs/contracts.md) for every REST response, success or failure, produced in exactly one place.

`EnvelopeRenderer` wraps successful DRF responses, `envelope_exception_handler` turns every exception DRF sees
into an error envelope, and `ApiErrorEnvelopeMiddleware` covers what never reaches DRF under `/api/` (unknown
URLs, crashes). `TraceIdMiddleware` gives each request a trace id, continuing an incoming `traceparent`.
"""

import logging
import os
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from cio_kernel.trace_context import valid_traceparent
from core import errors

log = logging.getLogger(__name__)

API_PREFIX = "/api/"

# The one mapping of domain errors to HTTP: services stay HTTP-free, every endpoint answers alike.
HTTP_STATUS: dict[type[errors.DomainError], int] = {
    errors.PermissionDeniedError: 403,
    errors.FourEyesError: 403,
    errors.OutsideEnvelopeError: 403,
    errors.InvalidTransitionError: 409,
    errors.IdempotencyKeyReusedError: 409,
    errors.SpecInvalidError: 400,
    errors.NotFoundError: 404,
    errors.ActivationFailedError: 503,
    errors.StoreUnavailableError: 503,
    errors.UpstreamUnavailableError: 503,
}


def http_status(exc: errors.DomainError) -> int:
    return next((status for cls, status in HTTP_STATUS.items() if isinstance(exc, cls)), 500)


def trace_id_of(request: HttpRequest) -> str:
    return getattr(request, "trace_id", None) or os.urandom(16).hex()


class TraceIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = valid_traceparent(request.headers.get("traceparent"))
        request.trace_id = incoming.split("-")[1] if incoming else os.urandom(16).hex()  # type: ignore[attr-defined]
        return self.get_response(request)


def envelope(trace_id: str, data: Any = None, error: tuple[str, str] | None = None) -> dict[str, Any]:
    return {
        "success": error is None,
        "data": data,
        "trace_id": trace_id,
        "error": None if error is None else {"code": error[0], "message": error[1]},
    }


class EnvelopeRenderer(JSONRenderer):
    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        context = renderer_context or {}
        response: Response | None = context.get("response")
        request = context.get("request")
        if response is not None and getattr(response, "envelope_ready", False):
            body = data
        else:
            body = envelope(trace_id_of(request) if request is not None else os.urandom(16).hex(), data)
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS, default=str)


_DRF_CODES: list[tuple[type[Exception], str]] = [
    (exceptions.ParseError, "VAL_ERR"),
    (exceptions.ValidationError, "VAL_ERR"),
    (exceptions.NotAuthenticated, "NOT_AUTHENTICATED"),
    (exceptions.AuthenticationFailed, "NOT_AUTHENTICATED"),
    (exceptions.PermissionDenied, "PERMISSION_DENIED"),
    (exceptions.NotFound, "NOT_FOUND"),
    (exceptions.MethodNotAllowed, "METHOD_NOT_ALLOWED"),
    (exceptions.NotAcceptable, "NOT_ACCEPTABLE"),
    (exceptions.UnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE"),
    (exceptions.Throttled, "RATE_LIMITED"),
]
_STATUS_CODES = {413: "PAYLOAD_TOO_LARGE"}


def _message(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_message(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return "; ".join(_message(v) for v in detail)
    return str(detail)


def envelope_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    # Imported here: rest_framework.views reads the renderer setting, which points back at this module.
    from rest_framework.views import exception_handler

    request = context.get("request")
    trace_id = trace_id_of(request) if request is not None else os.urandom(16).hex()
    if isinstance(exc, errors.DomainError):
        response = Response(envelope(trace_id, None, (exc.code, str(exc))), status=http_status(exc))
    else:
        drf_response = exception_handler(exc, context)
        if drf_response is None:
            log.exception("unhandled error in %s", context.get("view"))
            response = Response(envelope(trace_id, None, ("INTERNAL_ERROR", "internal error")), status=500)
        else:
            code = next((c for cls, c in _DRF_CODES if isinstance(exc, cls)), None)
            code = code or _STATUS_CODES.get(drf_response.status_code, "ERROR")
            if isinstance(exc, Http404):
                code = "NOT_FOUND"
            detail = drf_response.data
            data = {"field_errors": detail} if code == "VAL_ERR" and isinstance(detail, dict | list) else None
            message = _message(detail.get("detail", detail) if isinstance(detail, dict) else detail)
            response = Response(
                envelope(trace_id, data, (code, message)),
                status=drf_response.status_code,
                headers=dict(drf_response.items()),
            )
    response.envelope_ready = True  # type: ignore[attr-defined]
    return response


class ApiErrorEnvelopeMiddleware:
    """Errors that never reach DRF (unknown URL, uncaught crash) still answer with the envelope under /api/."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) or response.status_code < 400:
            return response
        if response.get("Content-Type", "").startswith("application/json"):
            return response  # DRF already rendered an envelope
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 403: "PERMISSION_DENIED"}.get(
            response.status_code, "INTERNAL_ERROR" if response.status_code >= 500 else "ERROR"
        )
        message = {404: f"no API endpoint at {request.path}"}.get(response.status_code, response.reason_phrase)
        return JsonResponse(envelope(trace_id_of(request), None, (code, message)), status=response.status_code)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            message = f"request body over the {settings.CIO_MAX_REQUEST_BYTES:,}-byte limit"
            return JsonResponse(envelope(trace_id_of(request), None, ("PAYLOAD_TOO_LARGE", message)), status=413)
        log.exception("unhandled error on %s", request.path)
        return JsonResponse(envelope(trace_id_of(request), None, ("INTERNAL_ERROR", "internal error")), status=500)
