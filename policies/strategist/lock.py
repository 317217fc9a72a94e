"""At most one reasoning cycle at a time, across every worker: a Redis lock with a time to live.

The holder renews it while it works; a worker that crashes (or is SIGKILLed) stops renewing, and the lock
lapses `ttl_s` later, so a crash never blocks the Strategist for longer than that. Release and renewal check the
holder's token, so a lock that lapsed and was taken by another cycle is never released by the first."""

import logging
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

LOCK_KEY = "strategist:cycle_lock"

# Compare-and-act: only the holder (same token) may renew or release.
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class CycleBusyError(Exception):
    """Another cycle holds the lock."""


class CycleLock:
    def __init__(self, client: Any, ttl_s: float, key: str = LOCK_KEY) -> None:
        self._client = client
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._key = key
        self.token = secrets.token_hex(16)
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> bool:
        if not self._client.set(self._key, self.token, nx=True, px=self._ttl_ms):
            return False
        self._renewer = threading.Thread(target=self._renew_until_released, name="strategist-lock", daemon=True)
        self._renewer.start()
        return True

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self._ttl_ms / 3000):
            try:
                if not self._client.eval(_RENEW, 1, self._key, self.token, self._ttl_ms):
                    return  # lapsed and taken by another cycle: nothing left to renew
            except Exception as exc:  # Redis away for a moment: keep trying until the lock would lapse anyway
                log.warning("could not renew the Strategist lock: %r", exc)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(5)
        self._client.eval(_RELEASE, 1, self._key, self.token)


@contextmanager
def cycle_lock(client: Any, ttl_s: float) -> Iterator[CycleLock]:
    lock = CycleLock(client, ttl_s)
    if not lock.acquire():
        raise CycleBusyError("another Strategist cycle is running")
    try:
        yield lock
    finally:
        lock.release()
