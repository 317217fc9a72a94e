"""The Django backend indexes trace and signal ids through a 64-bit key (audit/store/django_rows.lookup_key, migration
0011): lookups match the key and then the id, and decisions stored before the keys get theirs from the migration."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.db import DatabaseError, connection, transaction

from audit.models import Decision
from audit.store.decisions import DecisionQuery
from audit.store.django_db import DjangoAuditStore
from audit.store.django_rows import lookup_key
from tests.audit.records import chain_of
from tests.audit.tampering import Tamper

migration = importlib.import_module("audit.migrations.0011_trace_and_signal_keys")


def _found(store: DjangoAuditStore, **filters: str) -> list[str]:
    return [r.decision_id for r in store.find_decisions(DecisionQuery(**filters)).records]


def test_a_key_shared_by_two_ids_finds_only_the_id_asked_for(transactional_db):
    store = DjangoAuditStore()
    a, b = chain_of(2)
    store.insert_decisions([a, b])
    # As if b's ids hashed to a's keys: the key narrows the search, the id decides.
    Tamper(store, None).set(b.decision_id, trace_key=lookup_key(a.trace_id), signal_key=lookup_key(a.signal_id))
    assert _found(store, trace_id=a.trace_id) == [a.decision_id]
    assert _found(store, signal_id=a.signal_id) == [a.decision_id]
    assert _found(store, trace_id=b.trace_id) == []  # b's own key no longer leads to it


def test_the_migration_gives_stored_decisions_their_keys_and_keeps_the_guard(transactional_db):
    store = DjangoAuditStore()
    records = chain_of(5)
    store.insert_decisions(records)
    tamper = Tamper(store, None)
    for r in records:  # as stored before migration 0011
        tamper.set(r.decision_id, trace_key=None, signal_key=None)
    assert set(Decision.objects.values_list("trace_key", flat=True)) == {None}
    with connection.schema_editor(atomic=True) as editor:
        migration.backfill(django_apps, editor)
    for r in records:
        assert _found(store, trace_id=r.trace_id) == [r.decision_id]
        if r.signal_id is not None:
            assert _found(store, signal_id=r.signal_id) == [r.decision_id]
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_logs SET trace_key = 1")  # the guard is back in place
