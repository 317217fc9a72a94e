"""Releasing a risk latch: risk officers only, with a reason, recorded as a policy event, announced to the gates."""

import asyncio
import threading
import time

import nats
import orjson
import pytest

from cio_kernel.contracts.latch import LatchNotice, LatchRecord, latch_id
from cio_kernel.nats_flush import flush_ordered
from cio_kernel.policy.latch_store import LATCHES_KEY, read_latches
from policies.models import PolicyEvent
from tests.control_plane.helpers import body
from tests.factories import GATES_KEY, POLICY_KEY, TEST_AUDIT_SIGNER

DRAWDOWN = latch_id("drawdown", "global")


def trip(redis_client, latch: str = DRAWDOWN) -> LatchRecord:
    kind, scope, key, *day = latch.split(":")
    record = LatchRecord(
        kind=kind,
        scope=scope,
        key=key,
        day=day[0] if day else None,
        tripped_at=time.time(),
        tripped_by="gate-a",
        snapshot_ts=time.time(),
        observed=0.2,
        limit=0.15,
    ).signed_trip(TEST_AUDIT_SIGNER)
    redis_client.hset(LATCHES_KEY, record.id, record.model_dump_json())
    return record


class NoticeListener:
    """Listens on `cio.risk.latch` from a thread of its own (the control-plane tests are synchronous)."""

    def __init__(self, nats_url: str) -> None:
        self.notices: list[LatchNotice] = []
        self._ready, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(nats_url),), daemon=True)
        self._thread.start()
        assert self._ready.wait(5)

    async def _run(self, nats_url: str) -> None:
        nc = await nats.connect(nats_url)

        async def on_notice(msg) -> None:
            self.notices.append(LatchNotice.model_validate_json(msg.data))
            self._done.set()

        await nc.subscribe("cio.risk.latch", cb=on_notice)
        await flush_ordered(nc)
        self._ready.set()
        await asyncio.to_thread(self._done.wait, 10)
        await nc.close()

    def wait(self) -> list[LatchNotice]:
        assert self._done.wait(10), "no notice on cio.risk.latch"
        return self.notices


def test_an_officer_releases_a_latch_and_the_gates_are_told(api, users, stack, redis_client, nats_url):
    trip(redis_client)
    listed = body(api["viewer"].get("/api/latch"))
    assert [latch["id"] for latch in listed["data"]["latches"]] == [DRAWDOWN]
    listener = NoticeListener(nats_url)
    released = body(
        api["officer1"].post("/api/latch/release", {"latch": DRAWDOWN, "reason": "recovered; reviewed"}, format="json")
    )
    assert released["data"]["released_by"] == "officer1" and released["data"]["release_reason"] == "recovered; reviewed"
    stored = asyncio.run(_read(stack.REDIS_URL))[DRAWDOWN]
    assert not stored.active and stored.released_by == "officer1"
    [notice] = listener.wait()
    assert notice.latch_id == DRAWDOWN and notice.event == "released" and notice.by == "officer1"
    event = PolicyEvent.objects.get(kind=PolicyEvent.Kind.LATCH_RELEASED)
    assert event.actor == users["officer1"] and event.reason == "recovered; reviewed"
    assert event.detail["latch_id"] == DRAWDOWN and event.detail["notice"] == "sent"
    assert body(api["viewer"].get("/api/latch"))["data"]["latches"] == []
    assert len(body(api["viewer"].get("/api/latch?all=1"))["data"]["latches"]) == 1


async def _read(url: str) -> dict[str, LatchRecord]:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        return (await read_latches(client, GATES_KEY, POLICY_KEY)).records
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("who", "status", "code"), [("agent", 403, "PERMISSION_DENIED"), ("viewer", 403, "PERMISSION_DENIED")]
)
def test_only_risk_officers_release_latches(api, stack, redis_client, who, status, code):
    trip(redis_client)
    response = api[who].post("/api/latch/release", {"latch": DRAWDOWN, "reason": "let me trade"}, format="json")
    assert response.status_code == status and body(response)["error"]["code"] == code
    assert orjson.loads(redis_client.hget(LATCHES_KEY, DRAWDOWN))["released_at"] is None
    assert not PolicyEvent.objects.filter(kind=PolicyEvent.Kind.LATCH_RELEASED).exists()


def test_a_release_needs_a_reason_and_an_active_latch(api, stack, redis_client):
    trip(redis_client)
    blank = api["officer1"].post("/api/latch/release", {"latch": DRAWDOWN, "reason": "  "}, format="json")
    assert blank.status_code == 400 and body(blank)["error"]["code"] == "VAL_ERR"
    missing = api["officer1"].post("/api/latch/release", {"latch": "drawdown:global:x", "reason": "r"}, format="json")
    assert missing.status_code == 404 and body(missing)["error"]["code"] == "NOT_FOUND"
    assert not PolicyEvent.objects.filter(kind=PolicyEvent.Kind.LATCH_RELEASED).exists()


def test_with_redis_down_a_release_fails_loudly_and_records_nothing(api, stack, redis_proc):
    redis_proc.stop()
    response = api["officer1"].post("/api/latch/release", {"latch": DRAWDOWN, "reason": "r"}, format="json")
    assert response.status_code == 503 and body(response)["error"]["code"] == "SERVICE_UNAVAILABLE"
    listing = api["viewer"].get("/api/latch")
    assert listing.status_code == 503
    assert not PolicyEvent.objects.filter(kind=PolicyEvent.Kind.LATCH_RELEASED).exists()


def test_the_admin_lists_and_releases_latches(client, users, stack, redis_client):
    trip(redis_client)
    client.force_login(users["officer2"])
    page = client.get("/admin/policies/policyversion/latches/")
    assert page.status_code == 200 and DRAWDOWN.encode() in page.content
    done = client.post("/admin/policies/policyversion/latches/", {"latch": DRAWDOWN, "reason": "reviewed"})
    assert done.status_code == 302
    assert orjson.loads(redis_client.hget(LATCHES_KEY, DRAWDOWN))["released_by"] == "officer2"


def test_the_upgrade_signs_only_the_releases_the_database_records(api, users, stack, redis_client):
    """Releases stored before they were signed: `sign_latch_releases` signs those a `latch_released` event
    records; one the database does not know stays unsigned, so the gates keep that latch holding."""
    from django.core.management import call_command

    recorded = trip(redis_client).model_copy(
        update={"released_at": time.time(), "released_by": "officer1", "release_reason": "reviewed"}
    )
    redis_client.hset(LATCHES_KEY, recorded.id, recorded.model_dump_json())
    PolicyEvent.objects.create(
        kind=PolicyEvent.Kind.LATCH_RELEASED,
        actor=users["officer1"],
        reason="reviewed",
        detail={**recorded.model_dump(mode="json"), "latch_id": recorded.id, "notice": "sent"},
    )
    daily = latch_id("daily_loss", "global", "*", "2026-12-01")
    unknown = trip(redis_client, daily).model_copy(
        update={"released_at": time.time(), "released_by": "officer2", "release_reason": "written by someone else"}
    )
    redis_client.hset(LATCHES_KEY, daily, unknown.model_dump_json())
    assert asyncio.run(_read(stack.REDIS_URL))[DRAWDOWN].active  # unsigned: the latch holds

    call_command("sign_latch_releases")
    latches = asyncio.run(_read(stack.REDIS_URL))
    assert not latches[DRAWDOWN].active and latches[DRAWDOWN].release_verified_by(POLICY_KEY)
    assert latches[DRAWDOWN].released_by == "officer1"
    assert latches[daily].active  # no release on record: left holding for an officer
    call_command("sign_latch_releases")  # nothing left to do, nothing changed
    assert asyncio.run(_read(stack.REDIS_URL)) == latches
