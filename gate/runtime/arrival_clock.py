"""How long has the message being handled now waited in the client's queue? nats-py does not stamp arrival
times, so this reconstructs a bound from its delivery counter.

Each time a message is handled we note (now, messages delivered so far). The k-th message handled had
certainly arrived by the first noted time at which at least k messages had been delivered, so its wait is at
least `now - that time`. Exact for a burst that lands on an idle gate, tight under steady overload, and never
an overestimate except when nats-py drops messages as a slow consumer (then it errs towards RETRY_SAFE).
"""

from collections import deque


class ArrivalClock:
    __slots__ = ("_handled", "_samples")

    def __init__(self) -> None:
        self._samples: deque[tuple[float, int]] = deque()
        self._handled = 0

    def waited(self, delivered: int, now: float) -> float:
        """Call once per handled message, in order; returns that message's minimum time spent queued."""
        if not self._samples or delivered > self._samples[-1][1]:
            self._samples.append((now, delivered))
        self._handled += 1
        samples = self._samples
        while samples[0][1] < self._handled:
            samples.popleft()
        return now - samples[0][0]
