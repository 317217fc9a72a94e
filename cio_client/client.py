"""The fleet's fail-safe client: what a strategy uses to talk to the gate (docs/client.md).

    client = GateClient(nc, on_conservative=run_hard_coded_logic, on_recovered=resume)
    await client.start()
    envelope = await client.submit(intent)      # the gate's decision envelope

- `submit` sends the intent on `cio.intent.trading.<strategy key>` (the subject today's fleet uses, with the
  strategy id written as its key) as a request and returns the decision envelope. Connect `nc` with your
  identity's own reply inbox, `nats.connect(..., inbox_prefix="_INBOX.<identity>")` (docs/access.md).
  `RETRY_SAFE` (nothing happened, the gate could not decide) is retried up to
  `retries` times with full jitter; a timeout is retried only when the intent carries an id, because the gate
  refuses a second promotion of the same id (so a retry can never double an order).
- It watches `cio.gate.heartbeat`. With no heartbeat for longer than the gate's announced timeout
  (`heartbeat_timeout_s` in the heartbeat; `default_timeout_s` before the first one), it goes **conservative**:
  `on_conservative` is called once, and `submit` refuses anything that could open a position (`buy`, `sell`)
  with `ConservativeModeError`, while `close` and `hold` still go to the gate. The first heartbeat after that
  ends it and calls `on_recovered`.

Dependencies: nats-py and the kernel's contracts (pydantic, orjson); nothing else of the project (the
`petrosa-cio-client` distribution ships this package and the contracts alone)."""

import asyncio
import contextlib
import inspect
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from cio_kernel.contracts.envelope import DecisionEnvelope
from cio_kernel.contracts.heartbeat import GateHeartbeat
from cio_kernel.contracts.identity import (
    STRATEGY_SUBJECT_PREFIX,
    IdentityError,
    strategy_key,
    strategy_subject,
    subject_token,
)
from cio_kernel.contracts.intent import INTENT_ID_FIELDS
from cio_kernel.subjects import GATE_HEARTBEAT

Callback = Callable[[], Any] | Callable[[], Awaitable[Any]]
OPENING_ACTIONS = frozenset({"buy", "sell"})


class ConservativeModeError(Exception):
    """The gate's heartbeat is missing: the client refuses intents that could open a position."""


class GateUnavailableError(Exception):
    """No gate answered (no responders, or a timeout the client could not safely retry)."""


class GateClient:
    def __init__(
        self,
        nc: NATS,
        *,
        timeout_s: float = 1.0,
        retries: int = 3,
        backoff_s: float = 0.05,
        default_timeout_s: float = 3.0,
        on_conservative: Callback | None = None,
        on_recovered: Callback | None = None,
        check_every_s: float = 0.1,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._nc = nc
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._default_timeout_s = default_timeout_s
        self._on_conservative = on_conservative
        self._on_recovered = on_recovered
        self._check_every_s = check_every_s
        self._monotonic = monotonic
        self._last_beat: float | None = None
        self._started_at = 0.0
        self._gate_timeout_s: float | None = None
        self.conservative = False
        self.last_heartbeat: GateHeartbeat | None = None
        self._sub: Any = None
        self._watch: asyncio.Task[None] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def start(self) -> "GateClient":
        self._started_at = self._monotonic()
        self._sub = await self._nc.subscribe(GATE_HEARTBEAT, cb=self._on_heartbeat)
        self._watch = asyncio.create_task(self._watchdog(), name="gate-client-watchdog")
        return self

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()

    @property
    def heartbeat_timeout_s(self) -> float:
        return self._gate_timeout_s or self._default_timeout_s

    # -- heartbeats ------------------------------------------------------------------------------------------------
    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            beat = GateHeartbeat.model_validate_json(msg.data)
        except ValueError:
            return
        self.last_heartbeat, self._last_beat = beat, self._monotonic()
        if beat.heartbeat_timeout_s:
            self._gate_timeout_s = beat.heartbeat_timeout_s
        if self.conservative:
            self.conservative = False
            await _call(self._on_recovered)

    def check(self) -> bool:
        """Whether the heartbeat is missing now (the watchdog's step; a test may call it directly)."""
        since = self._last_beat if self._last_beat is not None else self._started_at
        return self._monotonic() - since > self.heartbeat_timeout_s

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(self._check_every_s)
            if not self.conservative and self.check():
                self.conservative = True
                await _call(self._on_conservative)

    # -- intents -----------------------------------------------------------------------------------------------
    @staticmethod
    def subject_for(intent: dict[str, Any]) -> str:
        """`cio.intent.trading.<strategy key>`: the one subject a strategy with an identity of its own may use, and
        as good as any spelling for the others (the gate compares keys)."""
        raw = str(intent.get("strategy_id", ""))
        try:
            return strategy_subject(strategy_key(raw))
        except IdentityError:
            return f"{STRATEGY_SUBJECT_PREFIX}{subject_token(raw)}"  # the gate answers VAL_ERR with the reason

    async def submit(self, intent: dict[str, Any], subject: str | None = None) -> DecisionEnvelope:
        if self.conservative and str(intent.get("action", "")).lower() in OPENING_ACTIONS:
            raise ConservativeModeError(
                f"no gate heartbeat for over {self.heartbeat_timeout_s:g} s: only close and hold are sent"
            )
        payload = orjson.dumps(intent)
        subject = subject or self.subject_for(intent)
        has_id = any(intent.get(k) for k in INTENT_ID_FIELDS)
        envelope: DecisionEnvelope | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(random.uniform(0, self.backoff_s * 2 ** (attempt - 1)))
            try:
                reply = await self._nc.request(subject, payload, timeout=self.timeout_s)
            except NoRespondersError:
                if attempt == self.retries:
                    raise GateUnavailableError("no gate is listening") from None
                continue  # nothing was delivered: safe to try again
            except (NatsTimeoutError, TimeoutError):
                if not has_id or attempt == self.retries:
                    raise GateUnavailableError(
                        "no answer within the timeout"
                        + ("" if has_id else " (an intent without an id is not retried: it could have been promoted)")
                    ) from None
                continue  # the gate refuses a second promotion of the same id
            envelope = DecisionEnvelope.model_validate_json(reply.data)
            if envelope.data is None or envelope.data.decision != "RETRY_SAFE":
                return envelope
        assert envelope is not None
        return envelope  # still RETRY_SAFE after every retry: the caller decides (nothing was promoted)


async def _call(callback: Callback | None) -> None:
    if callback is None:
        return
    result = callback()
    if inspect.isawaitable(result):
        await result
