"""Keys that hold something for a while — the cycle lock, the debounce windows — as tokens only we can make:
`<nonce>.<deadline ms>.<seal>`, sealed with `seals.py` for one purpose. Every such key is written with an expiry,
and released only by its holder (compare-and-delete in one script).

The `strategist` Redis identity may write these keys, so a reader that finds one taken checks it: no expiry
(PTTL -1), an expiry beyond the key's maximum, a value we did not seal, or a deadline passed means nobody
legitimate holds it. The reader then breaks it (deleting exactly the value it saw), counts it as an anomaly (an
alert follows), and takes the key itself: a key can delay the Strategist at most until its sealed deadline,
never forever."""

import secrets
import time

from cio_kernel.numbers import whole_number
from strategist import seals

# Delete the key only while it still holds the value the caller saw (its own token, or the one it judged).
COMPARE_AND_DELETE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_SLACK_MS = 1000  # clocks and the round trip: a deadline this little past is not yet a breach


def now_ms() -> int:
    return int(time.time() * 1000)


def token(purpose: str, hold_ms: int) -> str:
    """A fresh token, good until `hold_ms` from now."""
    nonce, deadline = secrets.token_hex(12), str(now_ms() + hold_ms)
    return f"{nonce}.{deadline}.{seals.seal(f'key.{purpose}', nonce, deadline)}"


def illegitimate(purpose: str, value: bytes | str | None, pttl_ms: int, max_ttl_ms: int) -> str | None:
    """Why a key found taken is held by nobody legitimate, or None when it is (or has just gone)."""
    if value is None or pttl_ms == -2:
        return None  # gone meanwhile: the caller tries to take it again
    if pttl_ms == -1:
        return "it never expires"
    if pttl_ms > max_ttl_ms + _SLACK_MS:
        return f"it expires in {pttl_ms} ms, beyond its maximum of {max_ttl_ms} ms"
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    nonce, _, rest = text.partition(".")
    deadline, _, mark = rest.partition(".")
    deadline_ms = whole_number(deadline)
    if not (deadline_ms is not None and seals.verifies(f"key.{purpose}", mark, nonce, deadline)):
        return "its value is not a token we sealed"
    if now_ms() > deadline_ms + _SLACK_MS:
        return "its holder's deadline has passed"
    return None
