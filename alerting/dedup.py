"""Deduplication: the same severity, source and title within `CIO_ALERT_DEDUP_WINDOW_S` is one alert. The first is
delivered; repeats are kept, pointing at it (`duplicate_of`), and counted in admin. The window lives in Redis
(`alerting:dedup:<severity>:<hash>`), so several bridges agree.

Only a bridge opens a window. Its Redis identity is the only writer of these keys, but that password alone must
not be able to silence an alarm (issue 17), so a window counts only when the bridge can recognise it as its own:
the value names the first alert and the wall-clock time the window ends, signed with a key derived from Django's
`SECRET_KEY` (which the Redis identity does not hold), and Redis must still expire it within the window. Anything
else under the key (unsigned, no expiry, a genuine value replayed past its end or with a longer expiry) is not a
window: the bridge replaces it, delivers the alert and reports the tampering. Severity is part of the key, so an
info alert never opens the window a critical one would fall into."""

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any

from cio_kernel.contracts.alert import Alert
from cio_kernel.numbers import whole_number

KEY_PREFIX = "alerting:dedup:"
_SALT = b"petrosa-cio/alerting/dedup-window/v1"


def key(alert: Alert) -> str:
    digest = hashlib.sha256(f"{alert.source}\x00{alert.title}".encode()).hexdigest()[:32]
    return f"{KEY_PREFIX}{alert.severity.value}:{digest}"


def signing_key(secret: str | bytes) -> bytes:
    """The windows' own key, derived so that it is never the secret itself (nor any other use of it)."""
    raw = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(raw, _SALT, hashlib.sha256).digest()


@dataclass(frozen=True)
class Verdict:
    first: str | None  # the alert that opened the window this one falls into; None: deliver it
    tampered: str | None = None  # why what the key held was not a window of ours


class Deduplicator:
    def __init__(self, redis: Any, secret: str | bytes, window_s: float) -> None:
        self._redis = redis
        self._key = signing_key(secret)
        self._window_ms = max(1, int(window_s * 1000))

    def _mac(self, name: str, alert_id: str, ends_ms: int) -> str:
        message = f"{name}\x00{alert_id}\x00{ends_ms}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def _value(self, name: str, alert_id: str, now_ms: int) -> str:
        ends_ms = now_ms + self._window_ms
        return f"{alert_id}|{ends_ms}|{self._mac(name, alert_id, ends_ms)}"

    def _ours(self, name: str, raw: Any, ttl_ms: int, now_ms: int) -> tuple[str | None, str | None]:
        """(the first alert's id, None) for a window this bridge opened and that is still open; else (None, why)."""
        if ttl_ms == -1:
            return None, "no_expiry"
        if ttl_ms > self._window_ms:
            return None, "beyond_window"
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        alert_id, _, rest = text.partition("|")
        ends, _, mac = rest.partition("|")
        # ASCII digits only: "²" made `int` raise, which the bridge took for Redis being away (the planted key stayed,
        # unreported), and "١٢" read as 12 let a respelled copy of a genuine value pass as that value.
        ends_ms = whole_number(ends)
        # The MACs compared as bytes: `compare_digest` raises on a str holding anything but ASCII.
        signed = ends_ms is not None and hmac.compare_digest(mac.encode(), self._mac(name, alert_id, ends_ms).encode())
        if not (alert_id and signed):
            return None, "unsigned"
        if ends_ms <= now_ms:  # a genuine value written back after its window ended
            return None, "replayed"
        return alert_id, None

    async def first_of(self, alert: Alert, now_ms: int | None = None) -> Verdict:
        name = key(alert)
        for _ in range(2):  # the key may expire between our two reads: then it is simply free again
            now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
            value = self._value(name, alert.alert_id, now)
            if await self._redis.set(name, value, nx=True, px=self._window_ms):
                return Verdict(None)
            pipe = self._redis.pipeline(transaction=False)
            pipe.get(name)
            pipe.pttl(name)
            raw, ttl_ms = await pipe.execute()
            if raw is None or ttl_ms == -2:
                continue
            first, why = self._ours(name, raw, int(ttl_ms), now)
            if first is not None:
                return Verdict(first)
            # Not a window of ours: this alert opens the real one (several bridges racing here each deliver, which
            # is the safe way to be wrong).
            await self._redis.set(name, value, px=self._window_ms)
            return Verdict(None, tampered=why)
        return Verdict(None)

    async def reopen(self, alert: Alert) -> None:
        """Open a fresh window with `alert` as its first, over whatever the key holds: the window's first alert was
        acknowledged, and what comes after an acknowledgement is news (see `AlertBridge.handle`)."""
        name = key(alert)
        await self._redis.set(name, self._value(name, alert.alert_id, time.time_ns() // 1_000_000), px=self._window_ms)
