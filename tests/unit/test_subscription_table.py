"""The subscription table's one error mapping, without a server: a failing handler is counted against its own entry,
logged with its name, and the next message is handled."""

import asyncio
import logging

import pytest
from nats.aio.msg import Msg

from gate.runtime.subscriptions import Subscribe, SubscriptionTable


def _msg(subject: str, data: bytes) -> Msg:
    return Msg(None, subject=subject, data=data)  # type: ignore[arg-type]  # delivered by hand, no client needed


async def test_a_failing_handler_costs_one_message_counted_against_its_own_entry(caplog):
    handled: list[bytes] = []

    async def handler(msg: Msg) -> None:
        if msg.data == b"poison":
            raise ValueError("cannot handle this one")
        handled.append(msg.data)

    flaky = Subscribe("snapshot", "cio.portfolio.snapshot", handler)
    steady = Subscribe("ping", "cio.gate.ping", handler)
    table = SubscriptionTable([flaky, steady])
    with caplog.at_level(logging.ERROR, logger="gate.runtime.subscriptions"):
        for data in (b"one", b"poison", b"two"):
            await flaky.deliver(_msg(flaky.subject, data))
        await steady.deliver(_msg(steady.subject, b"three"))

    assert handled == [b"one", b"two", b"three"]
    assert table.counts() == {"snapshot": (3, 1), "ping": (1, 0)}
    [record] = caplog.records
    assert "subscription snapshot" in record.getMessage() and "cio.portfolio.snapshot" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[0] is ValueError


async def test_a_cancelled_handler_is_not_swallowed():
    async def handler(msg: Msg) -> None:
        raise asyncio.CancelledError  # not an Exception: the mapping must not hide a cancellation

    entry = Subscribe("snapshot", "cio.portfolio.snapshot", handler)
    with pytest.raises(asyncio.CancelledError):
        await entry.deliver(_msg(entry.subject, b"{}"))
    assert (entry.received, entry.errors) == (1, 0)


def test_every_entry_has_its_own_name():
    async def handler(msg: Msg) -> None:
        return None

    with pytest.raises(ValueError, match="unique"):
        SubscriptionTable([Subscribe("ping", "cio.gate.ping", handler), Subscribe("ping", "cio.gate.ping2", handler)])
