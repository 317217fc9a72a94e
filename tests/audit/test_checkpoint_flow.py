"""The whole way, on real servers and each backend: a gate signs its chain's head and publishes it on JetStream, the
ingest stores the events and the checkpoints, and `audit_verify` (reading the latest checkpoints from the stream)
passes the trail; then someone with the store's admin rights rewrites, removes, truncates or reorders records,
recomputes every link and removes the stored checkpoints too, and `audit_verify` fails the trail, naming what."""

import asyncio
from collections.abc import Callable
from io import StringIO
from typing import Any

import nats
import pytest
from django.core.management import call_command
from django.db import connections

from audit.checkpoints import latest_checkpoints
from audit.ingest import AuditIngest
from audit.records import DecisionRecord, StoredCheckpoint
from cio_kernel.audit_chain import GENESIS
from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX, checkpoint_subject
from cio_kernel.audit_stream import checkpoint_stream_config
from cio_kernel.contracts.envelope import Reason
from tests.audit.records import TRUST, chain_of, relinked, rewritten, signed
from tests.audit.tampering import Tamper
from tests.factories import TEST_AUDIT_PUBLIC_KEY, live_intent_body, make_spec
from tests.integration.helpers import activate, request, wait_for_policy, wait_until

DECISIONS = 10
CHAIN = "gate-a.1"


async def off_the_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Store and ORM work from an async test: in a thread of its own, its database connection closed after."""

    def run() -> Any:
        try:
            return fn(*args)
        finally:
            connections.close_all()

    return await asyncio.to_thread(run)


def verify_command(*args: str) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("audit_verify", "--settle", "0", *args, stdout=out, stderr=err)
    except SystemExit as exited:
        return int(exited.code or 0), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


def _rewrite(records: list[DecisionRecord], tamper: Tamper) -> None:
    index = next(i for i, r in enumerate(records) if r.decision == "APPROVED" and i >= 3)
    reason = Reason(code="CONFIDENCE_TOO_LOW", message="low", observed=0.1, limit=0.5)
    changed = rewritten(records[index], decision="REJECTED", reasons=[reason], signal_subject=None)
    for record in relinked([changed, *records[index + 1 :]], records[index - 1].hash or GENESIS):
        tamper.put(record)


def _remove_and_renumber(records: list[DecisionRecord], tamper: Tamper) -> None:
    tamper.remove(records[5].decision_id)
    for record in relinked(records[6:], records[4].hash or GENESIS, first=6):
        tamper.put(record)


def _cut_the_end(records: list[DecisionRecord], tamper: Tamper) -> None:
    for record in records[-3:]:
        tamper.remove(record.decision_id)


def _reorder(records: list[DecisionRecord], tamper: Tamper) -> None:
    for record in relinked([records[6], records[5], *records[7:]], records[4].hash or GENESIS, first=6):
        tamper.put(record)


ATTACKS: dict[str, tuple[Callable[[list[DecisionRecord], Tamper], None], str]] = {
    "an approval rewritten as a rejection, relinked": (_rewrite, "signed"),
    "a record removed, the rest renumbered and relinked": (_remove_and_renumber, "tail"),
    "the last records cut": (_cut_the_end, "tail"),
    "every record removed (truncated)": (lambda records, tamper: tamper.truncate(), "tail"),
    "two records reordered, relinked": (_reorder, "signed"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_signed_trail_verifies_and_every_store_level_rewrite_is_found(
    configured_store, tamper, make_gate, redis, nc, nats_url, settings, attack
):
    settings.NATS_URL = nats_url
    settings.CIO_AUDIT_PUBLIC_KEY = TEST_AUDIT_PUBLIC_KEY
    gate = await make_gate(gate_id="signing-gate")
    await activate(redis, nc, make_spec(min_confidence=0.5), 1)
    await wait_for_policy(gate, 1)
    for i in range(DECISIONS):
        await request(nc, live_intent_body(signal_id=f"s{i}", confidence=0.9 if i % 2 else 0.1))
    await wait_until(lambda: gate.heartbeat().counters.audit_published >= DECISIONS, what="the events published")
    chain = gate.heartbeat().audit_chain
    await gate.checkpoint_step()  # the periodic step may have signed the head already: then this one has nothing to do

    async def head_signed() -> bool:
        latest, _ = await latest_checkpoints(nc, CHECKPOINT_STREAM)
        return chain in latest and latest[chain].seq == DECISIONS and latest[chain].verified_by(TRUST)

    await wait_until(head_signed, what="the gate's signed head on the checkpoint stream")

    ingest = AuditIngest(nc, configured_store, fetch_timeout_s=0.2)
    await ingest.start()
    while ingest.counters.stored < DECISIONS:
        await ingest.step()
    while await ingest.checkpoint_step(timeout_s=0.2):
        pass
    await ingest.close()
    stored: list[StoredCheckpoint] = await off_the_loop(configured_store.checkpoints, chain)
    assert stored and stored[-1].seq == DECISIONS and stored[-1].checkpoint().verified_by(TRUST)

    code, output = await off_the_loop(verify_command)
    assert code == 0, output
    assert f"1 chains, {DECISIONS} records ({DECISIONS} vouched for by signed checkpoints), 0 findings" in output

    how, problem = ATTACKS[attack]
    records = await off_the_loop(lambda: list(configured_store.chain_records(chain)))
    await off_the_loop(how, records, tamper)
    await off_the_loop(tamper.remove_checkpoints)  # and the checkpoints the store kept, to cover it
    code, output = await off_the_loop(verify_command)
    assert code == 1, output
    assert problem in {line.split()[0] for line in output.splitlines() if line and not line.startswith("audit")}


def test_the_ingest_copies_each_checkpoint_once_and_waits_for_the_stream(audit_store, nats_url):
    records = chain_of(6)
    asyncio.run(_copy_checkpoints(audit_store, nats_url, records))
    assert [(c.seq, c.checkpoint()) for c in audit_store.checkpoints(CHAIN)] == [
        (3, signed(records[2])),
        (5, signed(records[4])),
    ]


async def _copy_checkpoints(store, nats_url: str, records: list[DecisionRecord]) -> None:
    nc = await nats.connect(nats_url)
    ingest = AuditIngest(nc, store, fetch_timeout_s=0.2)
    try:
        assert await ingest.checkpoint_step() == 0  # no gate has created the stream yet: nothing to read
        js = nc.jetstream()
        await js.add_stream(checkpoint_stream_config(CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX))
        for checkpoint, msg_id in (
            (signed(records[2]), "a"),
            (signed(records[4]), "b"),
            (signed(records[4]), "c"),  # the same checkpoint again, past the duplicate window
        ):
            await js.publish(checkpoint_subject(CHAIN), checkpoint.model_dump_json().encode(), headers={
                "Nats-Msg-Id": msg_id
            })  # fmt: skip
        await js.publish(checkpoint_subject(CHAIN), b'{"not": "a checkpoint"}')
        handled = 0
        while step := await ingest.checkpoint_step(timeout_s=0.2):
            handled += step
        assert (handled, ingest.counters.checkpoints, ingest.counters.checkpoints_refused) == (4, 2, 1)
        consumer = await js.consumer_info(CHECKPOINT_STREAM, ingest.checkpoint_durable)
        assert (consumer.num_pending, consumer.num_ack_pending) == (0, 0)  # all acknowledged, the stray one too
    finally:
        await ingest.close()
        await nc.close()
