"""`audit_verify` finds every kind of tampering, done directly in each backend's storage (as someone with the
database's admin rights would), and passes an untouched trail."""

from collections.abc import Callable

import orjson
import pymongo
import pytest
from django.db import DatabaseError, connection, transaction

from audit import triggers
from audit.models import Decision, ImmutableRecordError
from audit.verify import verify_store
from tests.audit.records import chain_of


class Tamper:
    """Edits one backend's storage below the store interface."""

    def __init__(self, store, mongo_url: str | None) -> None:
        self.store = store
        self.mongo = pymongo.MongoClient(mongo_url)["cio_test"]["audit_logs"] if mongo_url else None

    def set(self, decision_id: str, **fields) -> None:
        if self.mongo is not None:
            self.mongo.update_one({"_id": decision_id}, {"$set": fields})
            return
        assignments = ", ".join(f"{name} = %s" for name in fields)
        self._bypassing_triggers(
            f"UPDATE audit_logs SET {assignments} WHERE decision_id = %s", [*fields.values(), decision_id]
        )

    def remove(self, decision_id: str) -> None:
        if self.mongo is not None:
            self.mongo.delete_one({"_id": decision_id})
            return
        self._bypassing_triggers("DELETE FROM audit_logs WHERE decision_id = %s", [decision_id])

    @staticmethod
    def _bypassing_triggers(sql: str, params: list) -> None:
        # What an attacker with the database's admin rights would do; the guard is put back afterwards so the
        # next test starts from the migrated schema.
        with connection.cursor() as cursor:
            triggers.drop(cursor.execute, connection.vendor, ("audit_logs",))
            try:
                cursor.execute(sql, params)
            finally:
                triggers.create(cursor.execute, connection.vendor, ("audit_logs",))


@pytest.fixture
def tamper(audit_store, request):
    mongo_url = request.getfixturevalue("mongo_url") if audit_store.name == "mongodb" else None
    return Tamper(audit_store, mongo_url)


def _edit_payload(records, index: int) -> Callable[[Tamper], None]:
    def edit(t: Tamper) -> None:
        body = orjson.loads(records[index].payload)
        body["decision"] = "APPROVED"
        body["reasons"] = []
        t.set(records[index].decision_id, payload=orjson.dumps(body).decode())

    return edit


CASES = {
    # what was done: (how, the problem verify must report, at which sequence number)
    "payload edited (a rejection made an approval)": (lambda rs: _edit_payload(rs, 5), "hash", 6),
    "a filterable field edited": (
        lambda rs: lambda t: t.set(rs[6].decision_id, strategy_id="someone-else"),
        "fields",
        7,
    ),
    "a record removed": (lambda rs: lambda t: t.remove(rs[3].decision_id), "gap", 5),
    "two records reordered": (
        lambda rs: lambda t: (t.set(rs[2].decision_id, seq=4), t.set(rs[3].decision_id, seq=3)),
        "hash",
        3,
    ),
    "the hash recomputed after an edit": (
        lambda rs: lambda t: t.set(rs[5].decision_id, hash="f" * 64),
        "hash",
        6,
    ),
}


def test_an_untouched_trail_verifies(audit_store):
    audit_store.insert_decisions(chain_of(10) + chain_of(4, gate_id="gate-b", start=10))
    report = verify_store(audit_store)
    assert report.intact, report.findings
    assert (report.chains, report.records) == (2, 14)


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_found_where_it_happened(audit_store, tamper, case):
    records = chain_of(10)
    audit_store.insert_decisions(records)
    how, problem, seq = CASES[case]
    how(records)(tamper)
    report = verify_store(audit_store)
    assert not report.intact
    assert (problem, seq) in {(f.problem, f.seq) for f in report.findings}, report.findings


def test_an_inserted_record_is_found(audit_store):
    records = chain_of(6)
    forged = chain_of(1, start=100)[0]  # a genuine-looking record, linked as seq 1 of the same chain
    audit_store.insert_decisions([*records, forged])
    report = verify_store(audit_store)
    assert ("repeat", 1) in {(f.problem, f.seq) for f in report.findings}


def test_a_cut_at_the_end_is_found_against_the_gates_reported_head(audit_store, tamper):
    records = chain_of(8)
    audit_store.insert_decisions(records)
    tamper.remove(records[-1].decision_id)
    assert verify_store(audit_store).intact  # the chain alone cannot show it...
    report = verify_store(audit_store, heads={"gate-a.1": 8})  # ...the head the gate reported can
    assert [(f.problem, f.seq) for f in report.findings] == [("tail", 7)]


def test_a_record_without_a_link_is_reported(audit_store):
    record = chain_of(1)[0]
    unlinked = type(record)(
        **{
            **{f: getattr(record, f) for f in record.__slots__},
            "chain": None,
            "seq": None,
            "prev_hash": None,
            "hash": None,
        }
    )
    audit_store.insert_decisions([unlinked])
    assert [f.problem for f in verify_store(audit_store).findings] == ["unchained"]


def test_the_django_backend_refuses_changes_at_every_level(transactional_db):
    from audit.store.django_db import DjangoAuditStore

    records = {r.decision_id: r for r in chain_of(2)}
    DjangoAuditStore().insert_decisions(list(records.values()))
    row = Decision.objects.first()
    row.decision = "APPROVED"
    with pytest.raises(ImmutableRecordError):
        row.save()
    with pytest.raises(ImmutableRecordError):
        row.delete()
    with pytest.raises(ImmutableRecordError):
        Decision.objects.filter(pk=row.pk).update(decision="APPROVED")
    with pytest.raises(ImmutableRecordError):
        Decision.objects.all().delete()
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE audit_logs SET decision = 'APPROVED'")  # the database's own trigger
    stored = Decision.objects.get(pk=row.pk)
    assert (stored.decision, stored.payload) == (
        records[stored.decision_id].decision,
        records[stored.decision_id].payload.decode(),
    )  # unchanged


def test_audit_verify_exits_1_with_one_line_per_finding_and_0_when_intact(audit_store, tamper, monkeypatch):
    from io import StringIO

    from django.core.management import CommandError, call_command

    import audit.store

    monkeypatch.setattr(audit.store, "_store", audit_store)
    records = chain_of(6)
    audit_store.insert_decisions(records)
    out = StringIO()
    call_command("audit_verify", "--head", "gate-a.1=6", stdout=out)
    assert "intact: 1 chains, 6 records, 0 findings" in out.getvalue()
    tamper.remove(records[2].decision_id)
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", "--head", "gate-a.1=7", stdout=out, stderr=err)
    assert exited.value.code == 1
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["gap", "tail"] and "NOT intact" in err.getvalue()
    with pytest.raises(CommandError, match="CHAIN=SEQ"):
        call_command("audit_verify", "--head", "gate-a.1")


@pytest.mark.parametrize(
    ("table", "assignment"),
    [
        ("thoughts", "rationale = 'edited'"),
        ("alerts", "title = 'edited'"),
        ("alert_events", "outcome = 'delivered'"),
        ("mcp_calls", "outcome = 'ok'"),
    ],
)
def test_every_audit_table_refuses_an_update_at_the_database(transactional_db, table, assignment):
    from datetime import UTC, datetime

    from audit.records import DELIVERY, AlertEvent, AlertRecord, Thought, ToolCall
    from audit.store.django_db import DjangoAuditStore

    now = datetime.now(UTC)
    store = DjangoAuditStore()
    store.put_thought(Thought("th-1", now, "rules-v1", {}, {}, "why"))
    store.insert_alert(AlertRecord("al-1", now, "critical", "gate", "down", {}, None, now))
    store.add_alert_event(AlertEvent("ev-1", "al-1", now, DELIVERY, "email", 1, "failed"))
    store.insert_tool_call(
        ToolCall("c-1", now, "agent", "activate_policy_version", {}, "error", "X", "no", "0" * 32, 1)
    )
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {assignment}")
