"""The trade engine's configuration routes (`/api/v1/config/...`) at `CIO_TRADEENGINE_URL`, with its bearer token
(`CIO_TRADEENGINE_TOKEN`) and a timeout. Every failure is an `UpstreamError` saying whether a retry can help and
whether the request may still have been carried out (a write that timed out after it was sent, or a 5xx: the
engine may have applied it; only reading its live value settles that)."""

from typing import Any

import httpx
from django.conf import settings

from cio_kernel.redaction import redact_text
from tradeconfig.contract import ConfigScope, UpstreamConfig


class UpstreamError(Exception):
    def __init__(
        self, message: str, *, retry_may_help: bool, details: Any = None, outcome_unknown: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_may_help = retry_may_help
        self.details = details
        self.outcome_unknown = outcome_unknown


# Failures that happen before the request has left: the engine cannot have acted on it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def _request(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    base = settings.CIO_TRADEENGINE_URL
    if not base:
        raise UpstreamError("no trade engine is configured (CIO_TRADEENGINE_URL)", retry_may_help=False)
    headers = {"Authorization": f"Bearer {settings.CIO_TRADEENGINE_TOKEN}"} if settings.CIO_TRADEENGINE_TOKEN else {}
    try:
        response = httpx.request(
            method,
            f"{base.rstrip('/')}/api/v1/config/{path}",
            json=body,
            headers=headers,
            timeout=settings.CIO_TRADEENGINE_TIMEOUT_S,
        )
    except _NOT_SENT as exc:
        raise UpstreamError(f"the trade engine is unreachable: {type(exc).__name__}", retry_may_help=True) from exc
    except httpx.HTTPError as exc:
        raise UpstreamError(
            f"the trade engine did not answer: {type(exc).__name__}", retry_may_help=True, outcome_unknown=True
        ) from exc
    if response.status_code >= 400:
        raise UpstreamError(
            f"the trade engine answered HTTP {response.status_code}",
            retry_may_help=response.status_code >= 500,
            outcome_unknown=response.status_code >= 500,
        )
    try:
        answer = response.json()
    except ValueError as exc:
        raise UpstreamError("the trade engine's answer is not JSON", retry_may_help=False) from exc
    if not isinstance(answer, dict) or not answer.get("success"):
        error = (answer or {}).get("error") if isinstance(answer, dict) else None
        message = redact_text(str((error or {}).get("message", "refused"))) if isinstance(error, dict) else "refused"
        details = (error or {}).get("details") if isinstance(error, dict) else None
        raise UpstreamError(f"the trade engine refused: {message}", retry_may_help=False, details=details)
    return answer.get("data")


def get_config(scope: ConfigScope) -> UpstreamConfig:
    return UpstreamConfig.model_validate(_request("GET", scope.path()))


def get_schema() -> dict[str, Any]:
    data = _request("GET", "trading/schema")
    return data if isinstance(data, dict) else {}


def push(
    scope: ConfigScope, parameters: dict[str, Any], changed_by: str, reason: str, validate_only: bool = False
) -> Any:
    """Write (or, with `validate_only`, only check) the parameters for `scope`; returns what the engine answered."""
    body = {"parameters": parameters, "changed_by": changed_by, "reason": reason, "validate_only": validate_only}
    data = _request("POST", scope.path(), body)
    return UpstreamConfig.model_validate(data) if data is not None else None
