"""The statistics come from per-minute rollups kept at ingest (audit/store/rollups.py): on both backends they must
say exactly what a count of the stored decisions says, whatever the window's edges, redeliveries, concurrent
ingest, retention and a rebuild."""

import importlib
import threading
from datetime import datetime, timedelta

from django.core.management import call_command

from audit.records import DecisionRecord
from audit.store.decisions import DecisionStats, busiest, most_frequent
from tests.audit.records import T0, chain_of

EVERY = timedelta(seconds=7)  # 60 records over seven minutes: whole minutes, partial ones and the edges


def counted(records: list[DecisionRecord], since: datetime, top: int = 10) -> DecisionStats:
    """The statistics as a scan of the decisions computes them: serving gates' decisions at or after `since`."""
    window = [r for r in records if r.ts >= since and not r.shadow]
    by_decision: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    by_strategy: dict[tuple[str | None, str], int] = {}
    by_symbol: dict[tuple[str | None, str], int] = {}
    for r in window:
        by_decision[r.decision] = by_decision.get(r.decision, 0) + 1
        for code in set(r.reason_codes):
            by_reason[code] = by_reason.get(code, 0) + 1
        by_strategy[r.strategy_key, r.decision] = by_strategy.get((r.strategy_key, r.decision), 0) + 1
        by_symbol[r.symbol, r.decision] = by_symbol.get((r.symbol, r.decision), 0) + 1
    return DecisionStats(
        since,
        len(window),
        by_decision,
        most_frequent(by_reason, top),
        busiest(by_strategy, top),
        busiest(by_symbol, top),
    )


def edges(records: list[DecisionRecord]) -> list[datetime]:
    """Window starts on a minute, inside one, on a decision, before all and after all."""
    return [
        T0 - timedelta(hours=1),
        T0,
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=2, seconds=31),
        records[17].ts,
        records[-1].ts,
        records[-1].ts + timedelta(milliseconds=1),  # MongoDB keeps milliseconds
    ]


def rollup_rows(store) -> list[tuple]:
    if store.name == "mongodb":
        return sorted((d["minute"], d["kind"], d["key"], d["decision"], d["n"]) for d in store._decision_minutes.find())
    from audit import models

    return sorted(models.DecisionMinute.objects.values_list("minute", "kind", "key", "decision", "n"))


def decided(store) -> int:
    return sum(n for _, kind, _, _, n in rollup_rows(store) if kind == "strategy")


def test_statistics_from_rollups_equal_a_count_of_the_stored_decisions(audit_store):
    serving = chain_of(60, every=EVERY)
    other_gate = chain_of(30, gate_id="gate-b", start=60, every=EVERY)
    shadowed = chain_of(20, gate_id="gate-s", start=5, shadow=True, every=EVERY)  # counted nowhere
    stored = serving + other_gate
    audit_store.insert_decisions(serving[:25] + shadowed)
    audit_store.insert_decisions(serving[20:] + other_gate)  # overlaps the first batch: a redelivery
    audit_store.insert_decisions(serving[::3] + shadowed[::2])  # and again, every decision already stored
    for since in edges(stored):
        assert audit_store.decision_stats(since) == counted(stored, since), since
    assert audit_store.decision_stats(T0, top=1) == counted(stored, T0, top=1)
    assert decided(audit_store) == len(stored)

    # Retention takes the removed decisions out of the rollups too.
    audit_store.prune_chain("gate-a.1", 40)
    remaining = serving[40:] + other_gate
    for since in edges(stored):
        assert audit_store.decision_stats(since) == counted(remaining, since), since


def test_two_ingest_processes_storing_the_same_events_count_each_once(audit_store):
    records = chain_of(60, every=EVERY) + chain_of(40, gate_id="gate-b", start=60, every=EVERY)
    failures: list[BaseException] = []

    def ingest(batch: list[DecisionRecord]) -> None:
        try:
            audit_store.insert_decisions(batch)
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            failures.append(exc)
        finally:
            audit_store.release_thread()

    # Overlapping batches in both orders, at once: every decision reaches both writers.
    threads = [
        threading.Thread(target=ingest, args=(batch,)) for batch in (records, records[::-1], records[30:], records[:70])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert audit_store.decision_stats(T0) == counted(records, T0)
    assert decided(audit_store) == len(records)


def test_the_rebuild_command_recounts_the_same_rollups(configured_store):
    records = chain_of(60, every=EVERY) + chain_of(20, gate_id="gate-s", shadow=True, every=EVERY)
    configured_store.insert_decisions(records)
    kept = rollup_rows(configured_store)
    assert {kind for _, kind, *_ in kept} == {"strategy", "symbol", "reason"}
    call_command("audit_rollups_rebuild", "--all", verbosity=0)
    assert rollup_rows(configured_store) == kept
    # Minutes recounted after they were lost (a crash between the two writes on MongoDB): the same counts again.
    configured_store.rebuild_rollups(T0 + timedelta(hours=1), T0 + timedelta(hours=2))  # empties nothing stored
    assert rollup_rows(configured_store) == kept
    _forget_rollups(configured_store)
    assert configured_store.decision_stats(T0).total == 0
    call_command("audit_rollups_rebuild", "--since", (T0 + timedelta(minutes=2, seconds=5)).isoformat(), verbosity=0)
    assert configured_store.decision_stats(T0 + timedelta(minutes=2)) == counted(records, T0 + timedelta(minutes=2))
    call_command("audit_rollups_rebuild", "--all", verbosity=0)
    assert rollup_rows(configured_store) == kept


def _forget_rollups(store) -> None:
    """Below the interface: as if the counts had never been added."""
    if store.name == "mongodb":
        store._decision_minutes.delete_many({})
    else:
        from audit import models

        models.DecisionMinute.objects.all().delete()


def test_the_migration_counts_the_decisions_a_database_already_holds(transactional_db):
    from django.apps import apps
    from django.db import connection

    from audit.store.django_db import DjangoAuditStore

    store = DjangoAuditStore()
    store.insert_decisions(chain_of(60, every=EVERY) + chain_of(10, gate_id="gate-s", shadow=True, every=EVERY))
    kept = rollup_rows(store)
    _forget_rollups(store)  # as stored before migration 0009
    with connection.schema_editor(atomic=True) as editor:
        importlib.import_module("audit.migrations.0009_minute_rollups").count_stored(apps, editor)
    assert rollup_rows(store) == kept
