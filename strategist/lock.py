"""At most one reasoning cycle at a time, across every worker: a Redis lock with a time to live.

The holder renews it while it works; a worker that crashes (or is SIGKILLed) stops renewing, and the lock
lapses `ttl_s` later, so a crash never blocks the Strategist for longer than that. Release and renewal check the
holder's token, so a lock that lapsed and was taken by another cycle is never released by the first.

The token is sealed with a deadline (`owned_keys.py`), and a lock found without an expiry, with one beyond
`ttl_s`, with a value we did not seal or past its deadline is broken (`on_broken` counts it), so whoever holds
the `strategist` Redis identity cannot stop every cycle by holding it. A token's deadline is one `ttl_s` away, and
every renewal swaps in a fresh one: the value is readable by that identity, so a token copied back after its cycle
ended must stop counting within one time to live, not only at the longest hold (`max_hold_s`, after which the
holder stops renewing)."""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from strategist import owned_keys

log = logging.getLogger(__name__)

LOCK_KEY = "strategist:cycle_lock"
PURPOSE = "cycle_lock"

# Compare-and-act: only the holder (same token) may renew (swapping in its next token) or release.
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) and 1 or 0 end return 0"
)


class CycleBusyError(Exception):
    """Another cycle holds the lock."""


def _ignore(why: str) -> None:
    return None


class CycleLock:
    def __init__(
        self,
        client: Any,
        ttl_s: float,
        key: str = LOCK_KEY,
        max_hold_s: float = 900.0,
        on_broken: Callable[[str], None] = _ignore,
    ) -> None:
        self._client = client
        self._ttl_ms = max(1, int(ttl_s * 1000))
        self._key = key
        self._hold_ms = max(self._ttl_ms, int(max_hold_s * 1000))
        self._on_broken = on_broken
        self._deadline_ms = owned_keys.now_ms() + self._hold_ms
        self.token = self._next_token()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _next_token(self) -> str:
        # Good for one time to live (never past the longest hold): the renewer replaces it every third of that.
        return owned_keys.token(PURPOSE, min(self._ttl_ms, max(0, self._deadline_ms - owned_keys.now_ms())))

    def acquire(self) -> bool:
        for _ in range(3):
            if self._client.set(self._key, self.token, nx=True, px=self._ttl_ms):
                self._renewer = threading.Thread(target=self._renew_until_released, name="strategist-lock", daemon=True)
                self._renewer.start()
                return True
            held, pttl = self._client.get(self._key), self._client.pttl(self._key)
            if held is None or pttl == -2:
                continue  # released meanwhile
            why = owned_keys.illegitimate(PURPOSE, held, pttl, self._ttl_ms)
            if why is None:
                return False
            if self._client.eval(owned_keys.COMPARE_AND_DELETE, 1, self._key, held):
                log.error("broke an illegitimate Strategist cycle lock: %s", why)
                self._on_broken(why)
        return False

    def _renew_until_released(self) -> None:
        while not self._stop.wait(self._ttl_ms / 3000):
            if owned_keys.now_ms() >= self._deadline_ms:
                log.error("the cycle outlived its longest hold: the lock is left to lapse")
                return
            following = self._next_token()
            try:
                if not self._client.eval(_RENEW, 1, self._key, self.token, following, self._ttl_ms):
                    return  # lapsed and taken by another cycle: nothing left to renew
                self.token = following
            except Exception as exc:  # Redis away for a moment: keep trying until the lock would lapse anyway
                log.warning("could not renew the Strategist lock: %r", exc)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(5)
        self._client.eval(owned_keys.COMPARE_AND_DELETE, 1, self._key, self.token)


@contextmanager
def cycle_lock(
    client: Any, ttl_s: float, max_hold_s: float = 900.0, on_broken: Callable[[str], None] = _ignore
) -> Iterator[CycleLock]:
    lock = CycleLock(client, ttl_s, max_hold_s=max_hold_s, on_broken=on_broken)
    if not lock.acquire():
        raise CycleBusyError("another Strategist cycle is running")
    try:
        yield lock
    finally:
        lock.release()
