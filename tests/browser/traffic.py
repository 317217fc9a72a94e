"""Intents through the browser stack's gate as a strategy sends them, each after a fresh portfolio snapshot, so the
gate judges them against a book and can approve; returned once the audit ingest has stored their decisions."""

import asyncio
import time
from typing import Any

import nats
import orjson

from audit.store import decision_log
from cio_kernel.nats_flush import flush_ordered
from tests.audit.ingest_helpers import wait_for
from tests.browser.harness import off_loop
from tests.factories import live_intent_body, make_snapshot

SNAPSHOT_SUBJECT = "cio.portfolio.snapshot"


async def _decide(nats_url: str, signals: list[str]) -> list[dict[str, Any]]:
    """A flat book (the gate's snapshot, on NATS: without one it rejects SNAPSHOT_MISSING) before each intent.
    Snapshots and intents reach the gate on separate subscriptions, so an intent decided before the first snapshot
    landed is sent again: those rejections stay in the store, rejected under any policy."""
    client = await nats.connect(nats_url)
    try:
        decided = []
        for signal in signals:
            snapshot = make_snapshot({}, ts=time.time(), daily_pnl=-1_200.0)
            await client.publish(SNAPSHOT_SUBJECT, snapshot.model_dump_json().encode())
            await flush_ordered(client)
            for _ in range(50):
                intent = live_intent_body(signal_id=signal)
                reply = await client.request("intent.trading.BTCUSDT", orjson.dumps(intent), timeout=5)
                data = orjson.loads(reply.data)["data"]
                if {r["code"] for r in data["reasons"]} != {"SNAPSHOT_MISSING"}:
                    break
                await asyncio.sleep(0.05)
            decided.append(data)
        return decided
    finally:
        await client.close()


def decide_stored(nats_url: str, *signals: str) -> list[dict[str, Any]]:
    """What the gate decided for a $500 BTCUSDT buy per signal id, once the ingest has stored every decision."""
    decided = off_loop(asyncio.run, _decide(nats_url, list(signals)))
    for data in decided:
        found = data["decision_id"]
        wait_for(lambda found=found: decision_log().get_decision(found), 20, f"decision {found} stored")
    return decided
