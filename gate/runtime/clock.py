"""The clocks the gate reads, injectable so tests can move time instead of sleeping through it."""

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock Unix seconds (decision times, staleness, trading days)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never go back (queueing, budgets, freshness)."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.perf_counter()
