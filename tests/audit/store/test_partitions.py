"""PostgreSQL's `audit_logs` is partitioned by day (migration 0012, audit/store/partitions.py): each day's decisions
land in that day's partition, a day without one in DEFAULT (stored and readable all the same), a decision is stored
once however often it arrives, and the append-only guard holds on every partition."""

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import DatabaseError, connection, transaction

from audit.store import partitions
from audit.store.django_db import DjangoAuditStore
from tests.audit.records import T0, chain_of

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
