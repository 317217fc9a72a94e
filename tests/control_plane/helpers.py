"""Helpers the control-plane tests share (fixtures are in tests/plugins/control_plane.py and conftest.py)."""

import asyncio
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import orjson

from cio_kernel.contracts.alert import Alert
from cio_kernel.policy.document import ACTIVE_POLICY_KEY, PolicyDocument
from tests.factories import live_intent_body

ROOT = Path(__file__).resolve().parents[2]
TRACE = re.compile(r"^[0-9a-f]{32}$")


def body(response: Any) -> dict[str, Any]:
    """A REST response's envelope (docs/contracts.md), checked for its shape."""
    data = orjson.loads(response.content)
    assert set(data) == {"success", "data", "trace_id", "error"}, data
    assert TRACE.match(data["trace_id"])
    assert data["success"] == (response.status_code < 400)
    if data["success"]:
        assert data["error"] is None
    else:
        assert set(data["error"]) == {"code", "message"} and re.match(r"^[A-Z_]+$", data["error"]["code"])
        assert data["error"]["message"]
    return data


def ok(response: Any) -> Any:
    """The data of a response that must have succeeded."""
    data = body(response)
    assert data["success"], data
    return data["data"]


def redis_policy(client: Any) -> PolicyDocument | None:
    raw = client.get(ACTIVE_POLICY_KEY)
    return PolicyDocument.model_validate_json(raw) if raw else None


def _wait(condition: Any, timeout_s: float) -> float:
    """Poll a condition on a real external process (the gate) until it holds; the timeout only bounds a failing
    test, it asserts no speed."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise TimeoutError("condition not met")
        time.sleep(0.02)  # a poll interval while the gate process works
    return time.monotonic() - started


def gate_version(redis_client: Any) -> int | None:
    raw = redis_client.get("gate:heartbeat:flow-gate")
    return orjson.loads(raw)["policy_version"] if raw else None


def decide_buy(nats_url: str, **overrides: Any) -> dict:
    """One intent through the running gate, as a strategy would send it; returns the reply envelope."""

    async def ask() -> dict:
        client = await nats.connect(nats_url)
        try:
            intent = live_intent_body(timestamp=datetime.now(UTC).isoformat(), **overrides)
            reply = await client.request("intent.trading.BTCUSDT", orjson.dumps(intent), timeout=5)
            return orjson.loads(reply.data)
        finally:
            await client.close()

    return asyncio.run(ask())


class AlertListener:
    """The alerting bridge's view: `cio.alert.>` (as the identity `url` names, with its inbox prefix), on a thread
    of its own, so a test that is not async hears what the code under test publishes."""

    def __init__(self, url: str, inbox_prefix: str = "_INBOX") -> None:
        self.alerts: list[Alert] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._nc = asyncio.run_coroutine_threadsafe(self._connect(url, inbox_prefix), self._loop).result(10)

    async def _connect(self, url: str, inbox_prefix: str) -> Any:
        client = await nats.connect(url, inbox_prefix=inbox_prefix)

        async def on_alert(msg: Any) -> None:
            self.alerts.append(Alert.model_validate_json(msg.data))

        await client.subscribe("cio.alert.>", cb=on_alert)
        await client.flush()
        return client

    def keys(self, source: str) -> set[str]:
        return {a.detail.get("key") for a in list(self.alerts) if a.source == source and a.severity == "critical"}

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._nc.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
