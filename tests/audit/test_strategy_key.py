"""Decisions are filed under the strategy key every gate control compared: records stored before gates stamped the
key get it derived from their `strategy_id` (Django migration 0008, MongoDB at start-up), so filters find them and
`audit_verify` sees them as they were."""

import importlib
from dataclasses import replace

import pytest
from django.apps import apps as django_apps
from django.db import DatabaseError, connection, transaction

from audit.models import Decision
from audit.store.django_db import DjangoAuditStore
from audit.store.mongo import MongoAuditStore
from audit.verify import verify_store
from tests.audit.records import TRUST, chain_of, signed

migration = importlib.import_module("audit.migrations.0008_strategy_key")


def _as_stored_before_keys(count: int):
    """Records as an older gate wrote them: no key in the event, and none in the store's column."""
    records = chain_of(count)
    return records, [replace(r, strategy_key=None) for r in records]


def test_the_django_migration_files_old_records_under_their_key_and_keeps_the_guard(transactional_db):
    records, old = _as_stored_before_keys(8)
    DjangoAuditStore().insert_decisions(old)
    assert set(Decision.objects.values_list("strategy_key", flat=True)) == {None}
    with connection.schema_editor(atomic=True) as editor:
        migration.backfill(django_apps, editor)
    assert {r.decision_id: r.strategy_key for r in DjangoAuditStore().chain_records("gate-a.1")} == {
        r.decision_id: r.strategy_key for r in records
    }
    report = verify_store(DjangoAuditStore(), TRUST, {"gate-a.1": signed(records[-1])})
    assert report.intact, report.findings
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_logs SET strategy_key = 'other'")  # the guard is back in place


@pytest.mark.usefixtures("transactional_db")
def test_mongodb_files_old_records_under_their_key_at_start(mongo_url):
    records, old = _as_stored_before_keys(8)
    store = MongoAuditStore.from_uri(mongo_url)
    try:
        store.ensure_schema()
        store.insert_decisions(old)
        store._decisions.update_many({}, {"$unset": {"strategy_key": ""}})  # as an older ingest wrote them
        store.ensure_schema()  # a restart of the new version
        assert {r.decision_id: r.strategy_key for r in store.chain_records("gate-a.1")} == {
            r.decision_id: r.strategy_key for r in records
        }
        report = verify_store(store, TRUST, {"gate-a.1": signed(records[-1])})
        assert report.intact, report.findings
    finally:
        store.close()
