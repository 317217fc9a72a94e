"""The published OpenAPI schema (`GET /api/schema`, drf-spectacular) tells the truth about the envelope.

Views annotate what their `data` is; this module's postprocessing hook wraps every success response in the
envelope `{success, data, trace_id, error}` (core/envelope.py) and gives every error response the error envelope,
adding the errors every operation of this API can answer (400/401/403/429 when it needs credentials, 400 when it
takes input, 404 under a path parameter, 413/415 with a body). Views add the errors only they answer
(`errors(409, 503)`).
tests/control_plane/test_api_contract.py fuzzes the API against this schema, every operation and every role.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import OpenApiResponse

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input (`VAL_ERR`, with `data.field_errors` per field when the body or a parameter is wrong)",
    401: "No credentials, or credentials that do not authenticate (`NOT_AUTHENTICATED`)",
    403: "The caller's role may not do this, or four-eyes forbids it (`PERMISSION_DENIED`, `FOUR_EYES_VIOLATION`…)",
    404: "Nothing there (`NOT_FOUND`)",
    409: "Not allowed in the current state (`INVALID_TRANSITION`), or an idempotency key already used for another "
    "request (`IDEMPOTENCY_KEY_REUSED`)",
    413: "Request body over the size limit (`PAYLOAD_TOO_LARGE`)",
    415: "Request body not JSON (`UNSUPPORTED_MEDIA_TYPE`)",
    429: "Too many requests from this client (`RATE_LIMITED`, with `Retry-After`)",
    503: "A dependency (Redis, NATS, the audit store, the trade engine) is unavailable",
}

TRACE_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "the request's trace id"}
ERROR_ENVELOPE_NAME = "ErrorEnvelope"
ERROR_ENVELOPE: dict[str, Any] = {
    "type": "object",
    "description": "Every error: `success` false, `error` with a stable code (docs/contracts.md)",
    "additionalProperties": False,
    "required": ["success", "data", "trace_id", "error"],
    "properties": {
        "success": {"type": "boolean", "enum": [False]},
        "data": {
            "type": "object",
            "nullable": True,
            "description": "null, or `{field_errors: {field: [message]}}` with `VAL_ERR`",
            "properties": {"field_errors": {}},
        },
        "trace_id": TRACE_ID,
        "error": {
            "type": "object",
            "additionalProperties": False,
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Z_]+$"},
                "message": {"type": "string", "minLength": 1},
            },
        },
    },
}
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_ENVELOPE_NAME}"}


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """Error responses an operation answers beyond the common ones, for `extend_schema(responses=...)`."""
    return {status: OpenApiResponse(description=ERROR_DESCRIPTIONS[status]) for status in statuses}


class HashedTokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <key>` (policies/authentication.py); named by string, as core sits below policies."""

    target_class = "policies.authentication.HashedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(header_name="Authorization", token_prefix="Token")  # noqa: S106 (the scheme word)


def _success(data_schema: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["success", "data", "trace_id", "error"],
        "properties": {
            "success": {"type": "boolean", "enum": [True]},
            "data": data_schema if data_schema is not None else {"nullable": True},
            "trace_id": TRACE_ID,
            "error": {"type": "object", "nullable": True, "enum": [None]},
        },
    }


def _common_errors(operation: dict[str, Any]) -> set[int]:
    statuses: set[int] = set()
    if any(scheme for scheme in operation.get("security", [])):  # `{}` is the anonymous alternative
        # 400 too: every such view (core.api.ApiView) refuses a NUL character in any query parameter.
        statuses |= {400, 401, 403, 429}
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    if parameters or "requestBody" in operation:
        statuses.add(400)
    if "requestBody" in operation:
        statuses |= {413, 415}
    return statuses


def envelope_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: every response as it really goes over the wire (see the module doc)."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_ENVELOPE_NAME] = ERROR_ENVELOPE
    for path_item in result.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status in _common_errors(operation):
                responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status]})
            for status, response in responses.items():
                if int(status) >= 400:
                    response["content"] = {"application/json": {"schema": ERROR_REF}}
                else:
                    media = response.get("content", {}).get("application/json", {})
                    response["content"] = {"application/json": {"schema": _success(media.get("schema"))}}
    return result
