"""Seals on what the Strategist keeps in Redis (cached inputs, lock and debounce tokens): an HMAC under a key
derived from the control plane's `SECRET_KEY`, which the listener and the worker hold and the Redis password does
not carry. Whoever holds only the `strategist` Redis identity can still delete or overwrite these keys, but not
write one that verifies: a reader takes nothing unsealed for the Strategist's own (docs/strategist.md)."""

import hmac
from hashlib import sha256

from django.conf import settings
from django.utils.crypto import salted_hmac


def _key(purpose: str) -> bytes:
    # One key per purpose: a seal made for a lock token never verifies as a regime entry's, and the reverse.
    return salted_hmac(f"cio.strategist.seal.{purpose}", "key", secret=settings.SECRET_KEY, algorithm="sha256").digest()


def seal(purpose: str, *parts: str) -> str:
    message = "\x1f".join(parts).encode()
    return hmac.new(_key(purpose), message, sha256).hexdigest()


def verifies(purpose: str, mark: object, *parts: str) -> bool:
    # Compared as bytes: `compare_digest` raises on a str holding anything but ASCII, and a mark is read from Redis.
    return isinstance(mark, str) and hmac.compare_digest(mark.encode(), seal(purpose, *parts).encode())
