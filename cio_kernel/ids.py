"""Decision ids: time-ordered UUIDv7 (RFC 9562), written as 32 lowercase hex digits like every id before them.

Why time-ordered: the audit store keeps a unique index on the decision id (and the reasons table one on the id and
code); random ids put every new decision on its own page of those indexes, so ingest slowed as the store grew
(bench/audit_store). Ids that start with the time they were made land at the right-hand end of the index instead.

Layout (most significant first): 48 bits of Unix time in milliseconds, the version nibble 7, 12 bits `rand_a`, the
variant bits `10`, 62 bits `rand_b`. `rand_a` and `rand_b` together are a 74-bit counter (RFC 9562 §6.2, method 2):
random at each new millisecond (top bit clear, so it has room to count), one more for each further id in the same
millisecond, so ids from one process are strictly increasing even when the clock stands still or steps back.
Uniqueness across processes rests on the 73 random bits, as it did on 128 before; ids are not secrets.
"""

import os
import random
import time
from collections.abc import Callable

UUID7_VERSION = 7
COUNTER_BITS = 74
_RAND_B_BITS = 62
_RAND_B_MASK = (1 << _RAND_B_BITS) - 1
_MS_MASK = (1 << 48) - 1
_VERSION = UUID7_VERSION << 76
_VARIANT = 0b10 << 62
_MARKERS = _VERSION | _VARIANT
_FRESH_COUNTER = (0x7FF << 64) | _RAND_B_MASK  # rand_a's low 11 bits and rand_b, in place


def uuid7_int(ms: int, counter: int) -> int:
    """The 128-bit UUIDv7 of millisecond `ms` whose 74 non-time, non-marker bits are `counter`."""
    return ((ms & _MS_MASK) << 80) | _VERSION | ((counter >> _RAND_B_BITS) << 64) | _VARIANT | (counter & _RAND_B_MASK)


def uuid7_ms(decision_id: str) -> int:
    """The Unix millisecond a UUIDv7 id (32 hex) was made in."""
    return int(decision_id[:12], 16)


def is_uuid7(value: str) -> bool:
    """32 lowercase hex digits with UUIDv7's version and variant bits."""
    if len(value) != 32 or value.lower() != value:
        return False
    try:
        number = int(value, 16)
    except ValueError:
        return False
    return (number >> 76) & 0xF == UUID7_VERSION and (number >> 62) & 0b11 == 0b10


class Uuid7:
    """A per-process generator: cheap (no syscall per id: a PRNG seeded from the OS) and monotonic."""

    __slots__ = ("_clock_ns", "_last_ms", "_rng", "_value")

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns, seed: bytes | None = None) -> None:
        self._clock_ns = clock_ns
        self._rng = random.Random(seed if seed is not None else os.urandom(32))
        self._last_ms = -1
        self._value = 0

    def __call__(self) -> str:
        ms = self._clock_ns() // 1_000_000
        if ms > self._last_ms:
            self._last_ms = ms
            # uuid7_int with a fresh counter (top bit clear), in fewer big-int steps: nearly every id at 1,000/s
            value = (ms << 80) | (self._rng.getrandbits(76) & _FRESH_COUNTER) | _MARKERS
        else:  # the same millisecond, or the clock stepped back: count on from the last id
            value = self._value + 1
            if not value & _RAND_B_MASK:  # rand_b wrapped into the variant bits: carry into rand_a by hand
                value = self._carry()
        self._value = value
        return f"{value:032x}"

    def _carry(self) -> int:
        counter = (((self._value >> 64) & 0xFFF) << _RAND_B_BITS | (self._value & _RAND_B_MASK)) + 1
        if counter >> COUNTER_BITS:  # 2**73 ids in one millisecond: borrow the next one
            self._last_ms += 1
            counter = self._rng.getrandbits(COUNTER_BITS - 1)
        return uuid7_int(self._last_ms, counter)

    def reseed(self) -> None:
        """A forked child must not repeat its parent's ids: fresh randomness and a fresh millisecond."""
        self._rng.seed(os.urandom(32))
        self._last_ms = -1


new_decision_id = Uuid7()
os.register_at_fork(after_in_child=new_decision_id.reseed)
