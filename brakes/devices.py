"""Device cookies: a browser that signed in to an account before proves it with a signed cookie, and its login
attempts for that account are counted on their own, untouched by anyone else's failures (OWASP's answer to
lockout by guessing wrong on purpose). The cookie names the account and a random device id, signed with
SECRET_KEY; it is no credential (the password is still checked) and it expires after `CIO_AUTH_DEVICE_DAYS`."""

import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core import signing

COOKIE = "cio_device"
PATH = "/admin/"
_SALT = "petrosa-cio.brakes.device"


def _max_age() -> timedelta:
    return timedelta(days=settings.CIO_AUTH_DEVICE_DAYS)


def device_of(request: Any, username: str) -> str | None:
    """The id of this browser's device cookie if it was issued for `username` and is still valid."""
    raw = request.COOKIES.get(COOKIE)
    if not raw:
        return None
    try:
        claims = signing.loads(raw, salt=_SALT, max_age=_max_age())
    except signing.BadSignature:
        return None
    if not isinstance(claims, dict) or claims.get("u") != username or not isinstance(claims.get("d"), str):
        return None
    return claims["d"]


def remember(response: Any, request: Any, username: str) -> None:
    """Give the browser that just signed in as `username` a device cookie."""
    value = signing.dumps({"u": username, "d": secrets.token_hex(16)}, salt=_SALT)
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(_max_age().total_seconds()),
        path=PATH,
        secure=request.is_secure(),
        httponly=True,
        samesite="Lax",
    )
