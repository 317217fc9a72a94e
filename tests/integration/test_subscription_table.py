"""The subscription table on a real NATS server: stages, queue groups, and a handler failing on one message that
keeps its subscription delivering; the gate's own table counts what each entry received."""

import asyncio

from nats.aio.msg import Msg

from cio_kernel import subjects
from cio_kernel.nats_flush import flush_ordered
from gate.runtime.subscriptions import Stage, Subscribe, SubscriptionTable
from tests.integration.helpers import wait_until


async def test_a_handler_failing_on_one_message_keeps_its_subscription_delivering(nc):
    handled: list[bytes] = []

    async def handler(msg: Msg) -> None:
        if msg.data == b"poison":
            raise RuntimeError("cannot handle this one")
        handled.append(msg.data)

    flaky = Subscribe("flaky", "test.flaky", handler, queue="workers")
    early = Subscribe("early", "test.early", handler, stage=Stage.FLOOR)
    table = SubscriptionTable([flaky, early])
    await table.subscribe(nc, Stage.SERVE)
    assert flaky.sub is not None and early.sub is None  # each stage subscribes only its own entries
    await flush_ordered(nc)

    for data in (b"one", b"poison", b"two", b"poison", b"three"):
        await nc.publish("test.flaky", data)
    await nc.publish("test.early", b"not yet")
    await wait_until(lambda: len(handled) == 3, what="the messages after the failures handled")
    assert handled == [b"one", b"two", b"three"]
    assert table.counts() == {"flaky": (5, 2), "early": (0, 0)}

    await table.subscribe(nc, Stage.FLOOR)
    await flush_ordered(nc)
    await nc.publish("test.early", b"now")
    await wait_until(lambda: len(handled) == 4, what="the later stage's message handled")
    assert handled[-1] == b"now" and table.counts()["early"] == (1, 0)

    await table.drain(table.entries)
    assert flaky.sub is None and early.sub is None
    await nc.publish("test.flaky", b"after the drain")
    await flush_ordered(nc)
    await asyncio.sleep(0.1)
    assert table.counts()["flaky"] == (5, 2)


async def test_the_gate_subscribes_through_its_table(gate, nc):
    counts = gate.subscriptions.counts()
    intents = [f"intent {subject}" for subject in subjects.INTENT_SUBJECTS]
    expected = [
        "policy-update",
        "peer-heartbeat",
        "latch-notice",
        "trading-state",
        "snapshot",
        "ping",
        "peer-promotion",
    ]
    assert list(counts) == expected + intents
    assert all(entry.sub is not None for entry in gate.subscriptions.entries)
    for entry in gate.intake.entries:
        assert entry.queue == gate.settings.queue_group

    await nc.request(subjects.GATE_PING, b"", timeout=5)
    await nc.publish(subjects.PORTFOLIO_SNAPSHOT, b"not a snapshot")  # refused by its handler: not an error
    await wait_until(lambda: gate.subscriptions.counts()["snapshot"] == (1, 0), what="the snapshot counted")
    assert gate.subscriptions.counts()["ping"] == (1, 0)
