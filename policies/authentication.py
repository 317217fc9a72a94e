"""Token authentication against hashed keys (`ApiToken`), with a brake on guessing.

`Authorization: Token <key>` as before; the key is hashed and looked up, never stored. Failed attempts are
counted per client address in the cache: past `CIO_AUTH_FAILURES_PER_MINUTE` within a minute, further attempts
from that address are refused as RATE_LIMITED before any lookup (DRF's throttles run only after authentication,
so they cannot slow down a guessing client).
"""

from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from policies.models import ApiToken

KEYWORD = b"token"
WINDOW_S = 60


def client_address(request: Any) -> str:
    return str(request.META.get("REMOTE_ADDR", "unknown"))


def _failures_key(kind: str, who: str) -> str:
    return f"auth-failures:{kind}:{who}"


def too_many_failures(kind: str, who: str) -> bool:
    return int(cache.get(_failures_key(kind, who), 0)) >= settings.CIO_AUTH_FAILURES_PER_MINUTE


def record_failure(kind: str, who: str) -> None:
    key = _failures_key(kind, who)
    if cache.add(key, 1, WINDOW_S):
        return
    try:
        cache.incr(key)
    except ValueError:  # expired in between
        cache.add(key, 1, WINDOW_S)


class HashedTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        address = client_address(request)
        if too_many_failures("token", address):
            raise exceptions.Throttled(wait=WINDOW_S, detail="too many failed token attempts from this address")
        if len(parts) != 2:
            record_failure("token", address)
            raise exceptions.AuthenticationFailed("invalid token header: `Token <key>` expected")
        try:
            key = parts[1].decode()
        except UnicodeDecodeError as exc:
            record_failure("token", address)
            raise exceptions.AuthenticationFailed("invalid token") from exc
        token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.digest(key)).first()
        if token is None or not token.user.is_active:
            record_failure("token", address)
            raise exceptions.AuthenticationFailed("invalid token")
        if token.last_used_at is None or (timezone.now() - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
