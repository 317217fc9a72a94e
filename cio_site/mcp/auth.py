"""Bearer tokens for MCP: the same API tokens as REST (`ApiToken`, stored hashed), sent as
`Authorization: Bearer <token>`. The SDK's bearer middleware calls `verify_token`; tools read who is calling with
`caller()`."""

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.utils import timezone
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken

from policies import roles
from policies.models import ApiToken


class NotAuthenticatedError(Exception):
    pass


def _lookup(key: str) -> AccessToken | None:
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    if token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    user = token.user
    scopes = sorted(c for c in roles.ROLE_PERMISSIONS.get(_role(user), ()))
    return AccessToken(token=key, client_id=user.get_username(), scopes=scopes)


def _role(user: User) -> str:
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in roles.ROLE_PERMISSIONS if role in names), "")


class ApiTokenVerifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        return await sync_to_async(_lookup, thread_sensitive=True)(token)


def caller() -> User:
    """The user behind the current MCP request (call from inside a tool, in a thread with a database connection)."""
    access = get_access_token()
    if access is None:
        raise NotAuthenticatedError("no bearer token")
    user = User.objects.filter(username=access.client_id, is_active=True).first()
    if user is None:
        raise NotAuthenticatedError("the token's user is gone")
    return user
