"""PostgreSQL's `audit_logs` is partitioned by day (migration 0012, audit/store/partitions.py): each day's decisions
land in that day's partition, a day without one in DEFAULT (stored and readable all the same), a decision is stored
once however often it arrives, the append-only guard holds on every partition, and retention drops a day whose
records may all go."""

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from audit.models import DecisionMinute
from audit.retention import prune
from audit.store import partitions
from audit.store.django_db import DjangoAuditStore
from tests.audit.records import T0, TRUST, chain_of, signed, stored

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="PostgreSQL's partitions; runs in make test's PostgreSQL pass",
)


def _where(decision_id: str) -> str:
    with connection.cursor() as c:
        c.execute("SELECT tableoid::regclass::text FROM audit_logs WHERE decision_id = %s", [decision_id])
        return c.fetchone()[0]


def test_each_day_has_its_partition_and_a_day_without_one_lands_in_default(transactional_db):
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    store = DjangoAuditStore()
    store.ensure_schema()
    with connection.cursor() as c:
        assert partitions.is_partitioned(c)
        days = [day for day, _ in partitions.day_partitions(c)]
    ahead = [today.date() + timedelta(days=n) for n in range(partitions.DAYS_AHEAD + 1)]
    assert set(ahead) <= set(days)
    recent, old = chain_of(2, start=900)[0], chain_of(1)[0]  # old: T0, a day before any partition
    recent = replace(recent, ts=today)
    assert store.insert_decisions([recent, old]) == 2
    assert _where(recent.decision_id) == partitions.name_of(today.date())
    assert _where(old.decision_id) == partitions.DEFAULT
    assert store.get_decision(old.decision_id) == old
    assert store.get_decision(recent.decision_id) == recent
    # T0's rows sit in DEFAULT: that day's partition cannot be made until they are moved, and it says so.
    with transaction.atomic(), connection.cursor() as c:
        assert partitions.ensure_partitions(c, days_ahead=1, today=T0.date()) == [T0.date()]
        assert partitions.create_day(c, T0.date() + timedelta(days=1))  # the next one can
        transaction.set_rollback(True)  # the test database keeps its migrated partitions only


def test_a_redelivered_decision_is_stored_once_even_with_another_ts(transactional_db):
    store = DjangoAuditStore()
    first = chain_of(3)
    assert store.insert_decisions(first) == 3
    assert store.insert_decisions(first) == 0
    # The unique key is (decision_id, ts) now: the ingest's own read refuses the same id at another time.
    moved = replace(first[0], ts=first[0].ts + timedelta(days=1))
    assert store.insert_decisions([moved]) == 0
    assert store.count_decisions() == 3
    assert store.get_decision(first[0].decision_id) == first[0]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE {} SET decision = 'APPROVED'", "DELETE FROM {}", "TRUNCATE {}"],
)
def test_the_guard_holds_on_each_partition(transactional_db, statement):
    store = DjangoAuditStore()
    today = replace(chain_of(1, start=901)[0], ts=datetime.now(UTC))
    assert store.insert_decisions([today, chain_of(1)[0]]) == 2
    for table in (partitions.name_of(today.ts.date()), partitions.DEFAULT, "audit_logs"):
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as c:
            c.execute(statement.format(table))
    assert store.count_decisions() == 2


def test_retention_drops_a_day_only_when_every_record_of_it_may_go(transactional_db):
    store = DjangoAuditStore()
    day = partitions.name_of(T0.date())
    with connection.cursor() as c:
        assert partitions.create_day(c, T0.date())
    try:
        a, b = chain_of(6), chain_of(4, gate_id="gate-b")
        assert store.insert_decisions(a + b) == 10
        assert _where(a[0].decision_id) == day
        store.insert_checkpoints([stored(signed(a[-1], ts=a[-1].ts)), stored(signed(b[1], ts=b[1].ts))])
        # gate-b's last two are not covered yet: the day stays, what may go goes record by record.
        outcome = prune(store, TRUST, T0 + timedelta(days=1))
        assert sorted((o.chain, o.removed) for o in outcome) == [("gate-a.1", 6), ("gate-b.1", 2)]
        assert [r.seq for r in store.chain_records("gate-b.1")] == [3, 4]
        store.insert_checkpoints([stored(signed(b[-1], ts=b[-1].ts))])
        (outcome,) = prune(store, TRUST, T0 + timedelta(days=1))
        assert (outcome.chain, outcome.removed) == ("gate-b.1", 2)
        with connection.cursor() as c:
            c.execute("SELECT to_regclass(%s)", [day])
            assert c.fetchone()[0] is None  # dropped whole
        assert store.count_decisions() == 0
        assert not DecisionMinute.objects.exists()  # the rollups lost what went
    finally:
        with connection.cursor() as c:
            c.execute(f"DROP TABLE IF EXISTS {day}")  # the other tests' T0 decisions go to DEFAULT
