"""Token authentication against hashed keys (`ApiToken`), with the brake on guessing (brakes).

`Authorization: Token <key>` as before; the key is hashed and looked up, never stored. The token is checked
first, so a valid token always passes whatever others sent from the same address; a failed one is counted by
client address and prefix and answered 429 (RATE_LIMITED, with Retry-After) instead of 401 once either has failed
too often. (DRF's throttles run only after authentication, so they never see a failing token.)
"""

from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from brakes import addresses, services
from policies.models import ApiToken

KEYWORD = b"token"


def find_token(key: str) -> ApiToken | None:
    """The active user's token with this key, marking it used (at most once a minute)."""
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    if token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token


class HashedTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        try:
            key = parts[1].decode() if len(parts) == 2 else ""
        except UnicodeDecodeError:
            key = ""
        token = find_token(key) if key else None
        if token is not None:
            return token.user, token
        refusal = services.token_failure(key, addresses.of_request(request))
        if refusal is not None:
            raise exceptions.Throttled(
                wait=refusal.retry_after_s, detail="too many failed tokens from this address or with this prefix"
            )
        if not key:
            raise exceptions.AuthenticationFailed("invalid token header: `Token <key>` expected")
        raise exceptions.AuthenticationFailed("invalid token")

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
