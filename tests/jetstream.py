"""A JetStream consumer watched from outside: settled is the one state after which what its processor did is final."""

from nats.aio.client import Client as NATS

from tests.integration.helpers import wait_until


async def consumer_settled(nc: NATS, stream: str, consumer: str) -> bool:
    """The consumer has nothing left to deliver and nothing delivered unacknowledged: no message can come again, so
    what its processor did by now is final (no wait past the ack wait for a redelivery that might not come)."""
    info = await nc.jetstream().consumer_info(stream, consumer)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def wait_consumer_settled(nc: NATS, stream: str, consumer: str, timeout_s: float) -> None:
    """Until `consumer_settled`; the timeout only bounds a failing test."""
    await wait_until(lambda: consumer_settled(nc, stream, consumer), timeout_s, f"the {consumer} consumer settled")
