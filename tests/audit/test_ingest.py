"""The ingest stores every decision exactly once: redelivered, replayed, shared between two processes, through a
store outage of a minute and through SIGKILL mid-batch; on both backends, against real servers, counted."""

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import nats
import pytest
from django.db import connection

from audit.ingest import AuditIngest
from audit.verify import verify_store
from cio_kernel.audit_chain import SEQ_HEADER
from deploy.servers import ServerProcess
from tests.audit.ingest_helpers import (
    IngestProcess,
    create_stream,
    ingest_env,
    ingest_settled,
    publish_now,
    publish_records,
    wait_for,
)
from tests.audit.records import TRUST, chain_of, signed

# How long the store stays away in the outage tests (the minute; shorten locally with the variable). MongoDB,
# the production store, is away the whole minute. The SQL stores are away 35 s: still past the consumer's 30 s ack
# wait and past the ingest's back-off reaching its 10 s cap (audit/ingest.py), so they take the same path, and the
# suite (which runs the Django variant twice, on SQLite and on PostgreSQL) stays inside its time budget.
OUTAGE_S = float(os.environ.get("CIO_TEST_AUDIT_OUTAGE_S", "60"))
SQL_OUTAGE_S = min(OUTAGE_S, 35.0)


def _ids(store) -> set[str]:
    return {r.decision_id for chain in store.chains() for r in store.chain_records(chain)}


def _assert_exactly(store, records) -> None:
    assert store.count_decisions() == len(records)
    assert _ids(store) == {r.decision_id for r in records}
    heads = {r.chain: signed(r) for r in sorted(records, key=lambda r: r.seq or 0)}  # each chain's last
    report = verify_store(store, TRUST, heads)
    assert report.intact, report.findings[:5]


async def _drain(ingest: AuditIngest) -> None:
    while await ingest.step():
        pass


async def _ingested(nc, store, batch_size: int):
    """Everything waiting ingested by one process; what its consumer still holds."""
    ingest = AuditIngest(nc, store, batch_size=batch_size, fetch_timeout_s=0.3)
    await ingest.start()
    await _drain(ingest)
    await ingest.close()
    return await nc.jetstream().consumer_info("CIO_AUDIT", ingest.durable)


def test_redelivered_and_replayed_events_are_stored_once(audit_store, nats_url):
    records = chain_of(30)
    audit_store.insert_decisions(records[:10])  # a crash after the write, before the ack: they come again
    asyncio.run(_redeliver_and_replay(audit_store, nats_url, records))
    _assert_exactly(audit_store, records)


async def _redeliver_and_replay(audit_store, nats_url, records) -> None:
    nc = await nats.connect(nats_url)
    try:
        await create_stream(nc)
        await publish_records(nc, records)
        # A gate replaying its spool after the duplicate window: same decisions, new message ids.
        js = nc.jetstream()
        for r in records[20:25]:
            await js.publish(
                r.audit_subject, r.payload, headers={"Nats-Msg-Id": f"replay-{r.decision_id}", **r.link.headers()}
            )
        ingest = AuditIngest(nc, audit_store, batch_size=7, fetch_timeout_s=0.3)
        await ingest.start()
        await _drain(ingest)
        await ingest.close()
    finally:
        await nc.close()
    assert (ingest.counters.received, ingest.counters.stored, ingest.counters.duplicates) == (35, 20, 15)


def test_what_is_not_an_audit_event_is_quarantined_and_does_not_block(audit_store, nats_url):
    records = chain_of(5)
    info = asyncio.run(_with_garbage(audit_store, nats_url, records))
    _assert_exactly(audit_store, records)
    kept = audit_store.quarantined()
    assert sorted(q.payload for q in kept) == sorted([b'{"decision_id": "half an event"}', b"\xff not json"])
    assert all(q.problem and q.stream_seq in (3, 4) for q in kept)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)  # nothing left to redeliver


async def _with_garbage(audit_store, nats_url, records):
    nc = await nats.connect(nats_url)
    try:
        await create_stream(nc)
        await publish_records(nc, records[:2])
        await nc.jetstream().publish("cio.audit.decision.approved", b'{"decision_id": "half an event"}')
        await nc.jetstream().publish("cio.audit.decision.rejected", b"\xff not json")
        await publish_records(nc, records[2:])
        return await _ingested(nc, audit_store, batch_size=3)
    finally:
        await nc.close()


def test_a_backlog_is_warned_about_before_the_stream_drops_it_and_a_loss_is_reported(audit_store, nats_url):
    asyncio.run(_backlog(audit_store, nats_url))
    assert audit_store.count_decisions() == 0


async def _backlog(audit_store, nats_url) -> None:
    nc = await nats.connect(nats_url)
    try:
        await create_stream(nc, max_age_s=3.0)
        ingest = AuditIngest(nc, audit_store, fetch_timeout_s=0.3)
        await ingest.start()
        quiet = await ingest.backlog_step()
        assert (quiet.pending, quiet.warning) == (0, None)
        await publish_records(nc, chain_of(4))
        # The store has taken nothing (the ingest is not stepping); just under half the stream's age: quiet.
        young = await ingest.backlog_step(now=time.time() + 1.0)
        assert young.pending == 4 and young.warning is None and young.max_age_s == 3.0
        old = await ingest.backlog_step(now=time.time() + 1.6)
        assert old.warning and "restore the audit store" in old.warning and ingest.counters.backlog_warnings == 1
        # The server then drops them (max age): the next check says how many were lost before being stored.
        js = nc.jetstream()
        for _ in range(100):  # polls the server's own expiry
            if (await js.stream_info("CIO_AUDIT")).state.messages == 0:
                break
            await asyncio.sleep(0.1)
        lost = await ingest.backlog_step()
        assert lost.lost == 4 and "dropped" in (lost.warning or "")
        assert ingest.counters.lost_before_ingest == 4
        await ingest.close()
    finally:
        await nc.close()


@pytest.fixture(params=["django", "mongodb"])
def backend(request, transactional_db, tmp_path):
    """(name, store in this process, env for an ingest process, the server to take away for mongodb)"""
    if request.param == "django":
        from audit.store.django_db import DjangoAuditStore

        yield "django", DjangoAuditStore(), None
        return
    from audit.store.mongo import MongoAuditStore
    from tests.plugins.mongo import MONGO_DB

    proc: ServerProcess = request.getfixturevalue("persistent_mongo_proc")
    url = f"mongodb://127.0.0.1:{proc.port}/{MONGO_DB}?directConnection=true&serverSelectionTimeoutMS=2000"
    store = MongoAuditStore.from_uri(url)
    store.ensure_schema()
    yield "mongodb", store, proc
    store.close()


def _size(backend, django: int) -> int:
    """mongoeco's file engine slows with size (see STACK-NOTES): its fixtures stay small, the behaviour is the same."""
    return django if backend[0] == "django" else max(60, django // 7)


def _env(backend, nats_url: str, tmp_path: Path) -> dict[str, str]:
    name, _, proc = backend
    url = None
    if proc is not None:
        url = f"mongodb://127.0.0.1:{proc.port}/cio_test?directConnection=true&serverSelectionTimeoutMS=2000"
    return ingest_env(name, nats_url, tmp_path / "state", url)


def _count(store) -> int:
    try:
        return store.count_decisions()
    except Exception:
        store.release_thread()  # a connection the outage dropped: open a new one next time
        return -1  # the store is away or busy; ask again


@pytest.mark.timeout(180)
def test_two_ingest_processes_at_once_store_each_decision_once(backend, nats_url, tmp_path):
    _, store, _ = backend
    records = chain_of(_size(backend, 1500)) + chain_of(_size(backend, 500), gate_id="gate-b")
    env = _env(backend, nats_url, tmp_path)
    publish_now(nats_url, records[:10])  # the stream exists before the ingests bind to it
    first, second = IngestProcess(env, tmp_path / "i1.log"), IngestProcess(env, tmp_path / "i2.log")
    try:
        publish_now(nats_url, records[10:])
        wait_for(lambda: _count(store) >= len(records), 120, "every decision stored")
        # Both acknowledged everything: a batch both had seen would have been written twice by now.
        wait_for(lambda: ingest_settled(nats_url), 60, "every batch acknowledged")
    finally:
        codes = first.stop(), second.stop()
    assert codes == (0, 0), first.log()[-2000:] + second.log()[-2000:]
    _assert_exactly(store, records)
    assert "stored=" in first.log() and "stored=" in second.log()


@pytest.mark.timeout(180)
def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(backend, nats_url, tmp_path):
    _, store, _ = backend
    records = chain_of(_size(backend, 2000))
    env = _env(backend, nats_url, tmp_path)
    publish_now(nats_url, records)
    victim = IngestProcess(env, tmp_path / "victim.log", "--batch-size", str(len(records) // 10))
    wait_for(lambda: _count(store) >= len(records) // 5, 60, "the ingest under way")
    victim.kill()
    stored_at_kill = _count(store)
    assert 0 < stored_at_kill < len(records), "the kill must land while batches are still being written"
    successor = IngestProcess(env, tmp_path / "successor.log")
    try:
        wait_for(lambda: _count(store) >= len(records), 90, "every decision stored after the restart")
        # The batch the victim had written but not acknowledged has come again and been acknowledged.
        wait_for(lambda: ingest_settled(nats_url), 60, "every batch acknowledged")
    finally:
        assert successor.stop() == 0, successor.log()[-3000:]
    _assert_exactly(store, records)


class _Outage:
    """Takes the store away for real, in the way each backend can be away."""

    def __init__(self, backend) -> None:
        self.name, self.store, self.mongo = backend
        self._lock: sqlite3.Connection | None = None

    def begin(self) -> None:
        if self.mongo is not None:
            self.mongo.stop()  # the server process is gone; its data stays on disk
        elif connection.vendor == "sqlite":
            # Another process holding the database's write lock: every write waits out its timeout and fails.
            self._lock = sqlite3.connect(connection.settings_dict["NAME"], timeout=0, isolation_level=None)
            self._lock.execute("BEGIN EXCLUSIVE")
        else:
            # What a database restart looks like to a client: its connection dropped, new ones refused.
            self._admin(
                f'ALTER DATABASE "{self._db}" ALLOW_CONNECTIONS false',
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{self._db}'",
            )

    def end(self) -> None:
        if self.mongo is not None:
            self.mongo.start(timeout_s=30)
        elif self._lock is not None:
            self._lock.rollback() if self._lock.in_transaction else None
            self._lock.close()
        else:
            self._admin(f'ALTER DATABASE "{self._db}" ALLOW_CONNECTIONS true')

    @property
    def _db(self) -> str:
        return connection.settings_dict["NAME"]

    @staticmethod
    def _admin(*statements: str) -> None:
        import psycopg

        s = connection.settings_dict
        with psycopg.connect(
            dbname="postgres", user=s["USER"], password=s["PASSWORD"], host=s["HOST"], port=s["PORT"], autocommit=True
        ) as admin:
            for statement in statements:
                admin.execute(statement)


@pytest.mark.timeout(OUTAGE_S * 2 + 150)
def test_a_store_outage_of_a_minute_loses_nothing(backend, nats_url, tmp_path):
    _, store, mongo = backend
    outage_s = OUTAGE_S if mongo is not None else SQL_OUTAGE_S
    everything = chain_of(_size(backend, 900))
    third = len(everything) // 3
    before, during, after = everything[:third], everything[third : 2 * third], everything[2 * third :]
    env = _env(backend, nats_url, tmp_path)
    publish_now(nats_url, before)
    ingest = IngestProcess(env, tmp_path / "ingest.log")
    outage = _Outage(backend)
    try:
        wait_for(lambda: _count(store) >= len(before), 60, "the first decisions stored")
        outage.begin()
        started = time.monotonic()
        try:
            # Gates go on deciding while the store is away: their events wait in the stream.
            step = max(1, len(during) // 10)
            for start in range(0, len(during), step):
                publish_now(nats_url, during[start : start + step])
                time.sleep(outage_s / 10)
            time.sleep(max(0.0, outage_s - (time.monotonic() - started)))
            assert ingest.proc.poll() is None, "the ingest must ride out the outage, not exit"
        finally:
            outage.end()
        publish_now(nats_url, after)
        wait_for(lambda: _count(store) >= len(everything), 90, "every decision stored after the outage")
        wait_for(lambda: ingest_settled(nats_url), 60, "every batch acknowledged")  # redeliveries done
    finally:
        code = ingest.stop()
    log = ingest.log()
    assert code == 0, log[-3000:]
    assert "will be redelivered" in log, "the outage must have been seen by the ingest"
    _assert_exactly(store, everything)


def test_a_link_number_spelled_in_unicode_digits_is_no_link_and_does_not_block(transactional_db, nats_url):
    """Anyone who may publish on `cio.audit.>` chooses the headers. "³" passed `isdigit()` and made `int()` raise out
    of the batch (never acknowledged, redelivered for ever: the ingest stuck); "٤" was read as link 4. Neither is a
    link now: the record is stored unchained, which verification reports."""
    from audit.store.django_db import DjangoAuditStore

    store = DjangoAuditStore()
    records = chain_of(4)
    respelled = {records[2].decision_id: "³", records[3].decision_id: "٤"}
    info = asyncio.run(_with_respelled_links(store, nats_url, records, respelled))
    assert store.count_decisions() == 4
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    assert [r.decision_id for r in store.chain_records(records[0].chain)] == [r.decision_id for r in records[:2]]
    assert {r.decision_id for r in store.unchained_decisions()} == set(respelled)
    assert [f.problem for f in verify_store(store, TRUST).findings].count("unchained") == 2


async def _with_respelled_links(store, nats_url, records, respelled):
    nc = await nats.connect(nats_url)
    try:
        await create_stream(nc)
        for r in records:
            headers = {"Nats-Msg-Id": r.decision_id, **r.link.headers()}
            if r.decision_id in respelled:
                headers[SEQ_HEADER] = respelled[r.decision_id]
            await nc.jetstream().publish(r.audit_subject, r.payload, headers=headers)
        return await _ingested(nc, store, batch_size=10)
    finally:
        await nc.close()
