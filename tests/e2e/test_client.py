"""The fleet's fail-safe client against a real gate process that is stopped and restarted: decisions while the
gate beats, conservative mode (and its callback) when the heartbeat stops, recovery when it returns, and the
bounded retries of RETRY_SAFE."""

import asyncio

import orjson
import pytest

from cio_client import ConservativeModeError, GateClient, GateUnavailableError
from tests.factories import live_intent_body, make_spec
from tests.integration.helpers import activate

pytestmark = pytest.mark.e2e


class Events:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.conservative = asyncio.Event()
        self.recovered = asyncio.Event()

    def on_conservative(self) -> None:
        self.log.append("conservative")
        self.conservative.set()

    async def on_recovered(self) -> None:  # callbacks may be coroutines too
        self.log.append("recovered")
        self.recovered.set()


async def test_the_client_goes_conservative_without_heartbeats_and_recovers(spawn_gate, redis, nc):
    await activate(redis, nc, make_spec(), 1)
    gate = await spawn_gate("client-gate", CIO_BOT_HEARTBEAT_TIMEOUT_S="1")
    events = Events()
    client = await GateClient(nc, on_conservative=events.on_conservative, on_recovered=events.on_recovered).start()
    try:
        envelope = await client.submit(live_intent_body(signal_id="c-1"))
        assert envelope.data.decision == "APPROVED" and not client.conservative
        await asyncio.wait_for(_first_beat(client), 5)
        assert client.heartbeat_timeout_s == 1.0  # announced by the gate in its heartbeat

        await gate.terminate()
        await asyncio.wait_for(events.conservative.wait(), 10)  # the watchdog notices within the timeout
        assert client.conservative and events.log == ["conservative"]
        with pytest.raises(ConservativeModeError):
            await client.submit(live_intent_body(signal_id="c-2", action="buy"))
        with pytest.raises(GateUnavailableError):  # a close still goes out; no gate answers it
            await client.submit(live_intent_body(signal_id="c-3", action="close", stop_loss=None))

        await spawn_gate("client-gate-2", CIO_BOT_HEARTBEAT_TIMEOUT_S="1")
        await asyncio.wait_for(events.recovered.wait(), 10)
        assert not client.conservative and events.log == ["conservative", "recovered"]
        envelope = await client.submit(live_intent_body(signal_id="c-4"))
        assert envelope.data.decision == "APPROVED"
    finally:
        await client.stop()


async def _first_beat(client: GateClient) -> None:
    while client.last_heartbeat is None:
        await asyncio.sleep(0.05)  # the gate (another process) beats every 0.2 s


async def test_retry_safe_is_retried_a_bounded_number_of_times(spawn_gate, nc):
    await spawn_gate("no-policy-gate")  # no policy in Redis: every intent RETRY_SAFE / NO_POLICY
    client = await GateClient(nc, retries=2, backoff_s=0.01).start()
    try:
        envelope = await client.submit(live_intent_body(signal_id="r-1"))
    finally:
        await client.stop()
    assert envelope.data.decision == "RETRY_SAFE" and envelope.data.reasons[0].code == "NO_POLICY"
    reply = await nc.request("cio.gate.ping", b"", timeout=2)
    assert orjson.loads(reply.data)["counters"]["received"] == 3  # the first try and two retries, no more
