"""Upgrade step for latches released before releases were signed (`manage.py sign_latch_releases`; `make up` runs
it on old local state).

Gates now take a latch as released only when the control plane's policy key verifies the release, so a release
stored unsigned would latch its scope again. This signs each such release the control plane's own database
confirms: a `latch_released` policy event for that latch with the same release time, officer and trip. A release
the database does not know (written by someone else, or the database was replaced) is left as it is: the latch
holds, and a risk officer releases it again (admin, *risk latches*) if it should not.
"""

import asyncio
from dataclasses import dataclass, field

from django.conf import settings

from cio_kernel.contracts.latch import LatchRecord
from cio_kernel.policy.latch_store import legacy_releases, sign_release
from core.redis_clients import async_redis
from policies.live import policy_signer, policy_verifier
from policies.models import PolicyEvent


@dataclass
class UpgradeReport:
    signed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # no matching release event: left holding


def _recorded(record: LatchRecord) -> bool:
    events = PolicyEvent.objects.filter(kind=PolicyEvent.Kind.LATCH_RELEASED, detail__latch_id=record.id)
    for event in events:
        detail = event.detail or {}
        if (
            detail.get("released_at") == record.released_at
            and detail.get("released_by") == record.released_by
            and detail.get("tripped_at") == record.tripped_at
            and detail.get("snapshot_ts") == record.snapshot_ts
        ):
            return True
    return False


def sign_legacy_releases() -> UpgradeReport:
    signer, verifier = policy_signer(), policy_verifier()

    async def read() -> list[LatchRecord]:
        redis = async_redis(settings.REDIS_URL, 3)
        try:
            return await legacy_releases(redis, verifier)
        finally:
            await redis.aclose()

    async def sign(records: list[LatchRecord]) -> list[str]:
        redis = async_redis(settings.REDIS_URL, 3)
        try:
            return [record.id for record in records if await sign_release(redis, record, signer)]
        finally:
            await redis.aclose()

    report = UpgradeReport()
    confirmed = []
    for record in asyncio.run(read()):
        if _recorded(record):
            confirmed.append(record)
        else:
            report.unknown.append(record.id)
    report.signed = asyncio.run(sign(confirmed))
    return report
