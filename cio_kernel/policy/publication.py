"""Activating a policy for the gates: Redis `policy:active` (the commit point), then `cio.strategist.update`.

The one implementation of the protocol, used by the control plane, the tests and the benchmark. Redis is
written first with the check-and-set of `cio_kernel.policy.store` (versions only go up); the NATS notice is only a
hint that makes gates re-read at once (they also poll), so it is sent after the commit and never instead of it.
"""

import redis.asyncio as aioredis
from nats.aio.client import Client as NATS

from cio_kernel.contracts.policy_update import PolicyUpdate
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.document import PolicyDocument
from cio_kernel.policy.store import write_active_policy
from cio_kernel.subjects import STRATEGIST_UPDATE


class NewerVersionActiveError(Exception):
    """Redis already holds this version or a newer one: nothing was written."""


class GatesNotNotifiedError(Exception):
    """The policy is committed in Redis but the notice did not go out: gates switch on their next freshness
    poll instead of at once. Not a reason to retry the commit."""


async def notify_gates(nc: NATS, document: PolicyDocument, within_s: float = 5.0) -> None:
    update = PolicyUpdate(version=document.version, checksum=document.checksum, seal=document.seal())
    await nc.publish(STRATEGIST_UPDATE, update.model_dump_json().encode())
    await flush_ordered(nc, within_s)


async def publish_policy(
    redis: aioredis.Redis,
    nc: NATS,
    document: PolicyDocument,
    replacing: bytes | None = None,
    within_s: float = 5.0,
) -> None:
    """Commit `document` in Redis, then tell the gates. Raises `NewerVersionActiveError` when Redis refused it
    and lets Redis errors propagate (in both cases nothing changed); raises `GatesNotNotifiedError` when the
    commit stood but the notice failed."""
    if not await write_active_policy(redis, document, replacing):
        raise NewerVersionActiveError(f"Redis already holds v{document.version} or newer")
    try:
        await notify_gates(nc, document, within_s)
    except Exception as exc:
        raise GatesNotNotifiedError(f"v{document.version} is live but the gates were not told: {exc!r}") from exc
