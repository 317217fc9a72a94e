"""Bearer tokens for MCP: the same API tokens as REST (`ApiToken`, stored hashed), sent as
`Authorization: Bearer <token>`. The SDK's bearer middleware calls `verify_token`; tools read who is calling with
`caller()`.

The same brake as REST (brakes): the token is checked first, so a valid one always passes; a failed one
is counted by the client address (which `McpApp` puts in `current_attempt` for the request) and by its prefix,
and once either has failed too often the attempt carries a refusal that `McpApp` answers 429 instead of the
SDK's 401."""

from contextvars import ContextVar
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from brakes import addresses, services
from core import roles
from policies.authentication import find_token


class NotAuthenticatedError(Exception):
    pass


@dataclass
class BearerAttempt:
    """One HTTP request's bearer check: where it came from and, if the brake engaged, how long to wait."""

    address: str
    refusal: services.Refusal | None = None


current_attempt: ContextVar[BearerAttempt | None] = ContextVar("mcp_bearer_attempt", default=None)


def _lookup(key: str, attempt: BearerAttempt) -> AccessToken | None:
    token = find_token(key) if key else None
    if token is None:
        attempt.refusal = services.token_failure(key, attempt.address)
        return None
    user = token.user
    scopes = sorted(c for c in roles.ROLE_PERMISSIONS.get(_role(user), ()))
    return AccessToken(token=key, client_id=user.get_username(), scopes=scopes)


def _role(user: User) -> str:
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in roles.ROLE_PERMISSIONS if role in names), "")


class ApiTokenVerifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        # Outside `McpApp` (never in the served app) failures still count, under an unknown address.
        attempt = current_attempt.get() or BearerAttempt(addresses.UNKNOWN)
        return await sync_to_async(_lookup, thread_sensitive=True)(token, attempt)


def caller() -> User:
    """The user behind the current MCP request (call from inside a tool, in a thread with a database connection)."""
    access = get_access_token()
    if access is None:
        raise NotAuthenticatedError("no bearer token")
    user = User.objects.filter(username=access.client_id, is_active=True).first()
    if user is None:
        raise NotAuthenticatedError("the token's user is gone")
    return user
