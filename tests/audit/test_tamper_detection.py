"""`audit_verify` finds every kind of tampering done directly in each backend's storage by someone with the
database's admin rights (who can drop the guard triggers, rewrite a record and recompute every link after it),
but without the gates' signing key: the gates' signed checkpoints give it away. An untouched trail passes."""

from dataclasses import replace
from datetime import timedelta

import orjson
import pytest
from django.db import DatabaseError, connection, transaction

from audit import triggers
from audit.models import Decision, ImmutableRecordError
from audit.records import DecisionRecord
from audit.verify import StoreVerification, verify_store
from cio_kernel.audit_chain import GENESIS
from cio_kernel.contracts.envelope import Reason
from cio_kernel.policy.signing import PolicySigner
from tests.audit.records import TRUST, chain_of, relinked, rewritten, signed, stored
from tests.audit.tampering import Tamper

CHAIN = "gate-a.1"


def _signed_trail(store, count: int = 10, stored_at: tuple[int, ...] = (4,)) -> tuple[list[DecisionRecord], dict]:
    """A gate's chain as it reaches the store: the records, the checkpoints the ingest copied (at `stored_at`),
    and the latest checkpoint as read from the stream (the head)."""
    records = chain_of(count)
    store.insert_decisions(records)
    store.insert_checkpoints([stored(signed(records[seq - 1])) for seq in stored_at])
    return records, {CHAIN: signed(records[-1])}


def _problems(report) -> set[tuple[str, int | None]]:
    return {(f.problem, f.seq) for f in report.findings}


def test_an_untouched_trail_verifies(audit_store):
    a, b = chain_of(10), chain_of(4, gate_id="gate-b", start=10)
    audit_store.insert_decisions(a + b)
    audit_store.insert_checkpoints([stored(signed(a[3]))])
    report = verify_store(audit_store, TRUST, {"gate-a.1": signed(a[-1]), "gate-b.1": signed(b[-1])})
    assert report.intact, report.findings
    assert (report.chains, report.records, report.vouched) == (2, 14, 14)


# -- what the chain alone finds (an edit made without recomputing the links) ------------------------------------
def _edit_payload(records, index: int):
    def edit(t: Tamper) -> None:
        body = orjson.loads(records[index].payload)
        body["decision"] = "APPROVED"
        body["reasons"] = []
        t.set(records[index].decision_id, payload=orjson.dumps(body).decode())

    return edit


CARELESS = {
    # what was done: (how, the problem verify must report, at which sequence number)
    "payload edited (a rejection made an approval)": (lambda rs: _edit_payload(rs, 5), "hash", 6),
    "a filterable field edited": (lambda rs: lambda t: t.set(rs[6].decision_id, strategy_id="x"), "fields", 7),
    "a record removed": (lambda rs: lambda t: t.remove(rs[3].decision_id), "gap", 5),
    "two records reordered": (
        lambda rs: lambda t: (t.set(rs[2].decision_id, seq=4), t.set(rs[3].decision_id, seq=3)),
        "hash",
        3,
    ),
    "a hash replaced": (lambda rs: lambda t: t.set(rs[5].decision_id, hash="f" * 64), "hash", 6),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CARELESS))
def test_careless_tampering_is_found_where_it_happened(audit_store, tamper, case):
    records, head = _signed_trail(audit_store)
    how, problem, seq = CARELESS[case]
    how(records)(tamper)
    report = verify_store(audit_store, TRUST, head)
    assert (problem, seq) in _problems(report), report.findings


# -- what only the signed checkpoints find (the links recomputed after the change) ------------------------------
def _approval_made_a_rejection(records: list[DecisionRecord], tamper: Tamper) -> int:
    """The issue's attack: an APPROVED decision becomes REJECTED and every link after it is recomputed."""
    index = next(i for i, r in enumerate(records) if r.decision == "APPROVED" and i > 3)
    reason = Reason(code="CONFIDENCE_TOO_LOW", message="low", observed=0.1, limit=0.5)
    changed = [rewritten(records[index], decision="REJECTED", reasons=[reason], signal_subject=None)]
    for record in relinked(changed + records[index + 1 :], records[index - 1].hash or GENESIS):
        tamper.put(record)
    return index + 1


def test_a_decision_rewritten_and_relinked_is_found_by_the_signed_head(audit_store, tamper):
    records, head = _signed_trail(audit_store)
    seq = _approval_made_a_rejection(records, tamper)
    stored_record = audit_store.get_decision(records[seq - 1].decision_id)
    assert stored_record is not None and stored_record.decision == "REJECTED"
    # The links alone no longer show it: without checkpoints the only complaint is that nothing is signed.
    assert {f.problem for f in verify_store(audit_store, None).findings} == {"unsigned", "forged"}
    report = verify_store(audit_store, TRUST, head)
    assert _problems(report) == {("signed", 10)}, report.findings


def test_removing_the_stored_checkpoints_does_not_hide_a_rewrite(audit_store, tamper):
    records, head = _signed_trail(audit_store, stored_at=(4, 7))
    _approval_made_a_rejection(records, tamper)
    assert ("signed", 7) in _problems(verify_store(audit_store, TRUST, head))  # the stored one at 7 sees it too
    tamper.remove_checkpoints()
    assert _problems(verify_store(audit_store, TRUST, head)) == {("signed", 10)}  # the head from the stream


def test_a_record_removed_and_the_rest_renumbered_is_found(audit_store, tamper):
    records, head = _signed_trail(audit_store)
    tamper.remove(records[5].decision_id)
    for record in relinked(records[6:], records[4].hash or GENESIS, first=6):
        tamper.put(record)
    report = verify_store(audit_store, TRUST, head)
    assert ("tail", 9) in _problems(report), report.findings  # the gate signed 10 events, 9 are left
    assert not {"gap", "link", "hash", "repeat"} & {f.problem for f in report.findings}  # the links are clean


def test_two_records_reordered_and_relinked_are_found(audit_store, tamper):
    records, head = _signed_trail(audit_store)
    swapped = [*records[:5], records[6], records[5], *records[7:]]
    for record in relinked(swapped[5:], records[4].hash or GENESIS, first=6):
        tamper.put(record)
    assert _problems(verify_store(audit_store, TRUST, head)) == {("signed", 10)}


def test_records_cut_from_the_end_are_found(audit_store, tamper):
    records, head = _signed_trail(audit_store)
    for record in records[7:]:
        tamper.remove(record.decision_id)
    assert _problems(verify_store(audit_store, TRUST, head)) == {("tail", 7)}


def test_records_cut_from_the_start_are_found_without_a_retention_period(audit_store, tamper):
    records, head = _signed_trail(audit_store)
    for record in records[:4]:
        tamper.remove(record.decision_id)
    assert ("gap", 5) in _problems(verify_store(audit_store, TRUST, head))
    # With retention, only as far as a checkpoint old enough: this one (at 4) was signed too recently.
    retained_from = records[3].ts  # the checkpoint was signed a second after its record
    assert ("gap", 5) in _problems(verify_store(audit_store, TRUST, head, retained_from=retained_from))


def test_the_whole_table_truncated_is_found(audit_store, tamper):
    _, head = _signed_trail(audit_store)
    tamper.truncate()
    assert audit_store.count_decisions() == 0
    assert _problems(verify_store(audit_store, TRUST, head)) == {("tail", 0)}


def test_a_chain_made_up_from_nothing_is_found(audit_store):
    _, head = _signed_trail(audit_store)
    forged = chain_of(5, gate_id="gate-x", start=50)  # consistent links, but no gate ever signed it
    audit_store.insert_decisions(forged)
    report = verify_store(audit_store, TRUST, head)
    assert [(f.chain, f.problem, f.seq) for f in report.findings] == [("gate-x.1", "unsigned", 1)]


def test_records_appended_after_the_last_checkpoint_are_found(audit_store):
    records, _ = _signed_trail(audit_store, count=12)
    head = {CHAIN: signed(records[9])}  # the gate signed up to 10; 11 and 12 appeared in the store only
    assert _problems(verify_store(audit_store, TRUST, head)) == {("unsigned", 11)}


def test_a_checkpoint_signed_with_another_key_is_found(audit_store, tamper):
    records, _ = _signed_trail(audit_store)
    seq = _approval_made_a_rejection(records, tamper)
    relinked_records = list(audit_store.chain_records(CHAIN))
    impostor = PolicySigner.generate()
    forged_head = {CHAIN: signed(relinked_records[-1], signer=impostor)}  # as if published on the stream
    audit_store.insert_checkpoints([stored(signed(relinked_records[seq], signer=impostor))])
    problems = {f.problem for f in verify_store(audit_store, TRUST, forged_head).findings}
    assert problems == {"forged", "unsigned"}  # what no trusted key signed vouches for nothing


def test_a_stored_checkpoint_edited_is_found(audit_store, tamper):
    records, head = _signed_trail(audit_store)
    other = signed(records[6]).model_dump_json().encode()  # a genuine checkpoint, moved to another position
    tamper.set_checkpoint_payload(4, other)
    assert ("forged", 4) in _problems(verify_store(audit_store, TRUST, head))


def test_a_record_inserted_is_found(audit_store):
    _, head = _signed_trail(audit_store, count=6)
    forged = chain_of(1, start=100)[0]  # a genuine-looking record, linked as seq 1 of the same chain
    audit_store.insert_decisions([forged])
    assert ("repeat", 1) in _problems(verify_store(audit_store, TRUST, head))


def test_a_cut_at_the_end_is_found_against_the_gates_reported_head_too(audit_store, tamper):
    records = chain_of(8)
    audit_store.insert_decisions(records)
    tamper.remove(records[-1].decision_id)
    head = {CHAIN: signed(records[-2])}  # the last checkpoint came before the last event
    assert verify_store(audit_store, TRUST, head).intact
    report = verify_store(audit_store, TRUST, head, heads={CHAIN: 8})  # what the heartbeat says
    assert [(f.problem, f.seq) for f in report.findings] == [("tail", 7)]


def test_a_record_without_a_link_is_reported(audit_store):
    record = chain_of(1)[0]
    unlinked = replace(record, chain=None, seq=None, prev_hash=None, hash=None)
    audit_store.insert_decisions([unlinked])
    assert [f.problem for f in verify_store(audit_store, TRUST).findings] == ["unchained"]


def test_checkpoints_are_needed_a_trail_without_any_proves_nothing(audit_store):
    audit_store.insert_decisions(chain_of(3))
    assert _problems(verify_store(audit_store, TRUST)) == {("unsigned", 1)}
    with_the_wrong_key = verify_store(audit_store, None, {CHAIN: signed(chain_of(3)[-1])})
    assert {f.problem for f in with_the_wrong_key.findings} == {"forged", "unsigned"}


# -- a live trail: the last moments are not signed or not stored yet ---------------------------------------------
def test_a_busy_chain_is_proven_by_its_next_checkpoint_and_later_records_wait_for_the_next_run(audit_store):
    records = chain_of(12)
    audit_store.insert_decisions(records[:8])
    verification = StoreVerification(audit_store, TRUST)
    verification.run({CHAIN: signed(records[5])})  # the gate signed up to 6; 7 and 8 are stored, not yet signed
    assert verification.pending() == [CHAIN]
    audit_store.insert_decisions(records[8:])  # the gate goes on deciding
    verification.catch_up({CHAIN: signed(records[9])})  # its next checkpoint covers 7 and 8
    assert verification.pending() == []
    report = verification.report()
    assert report.intact, report.findings
    assert (report.records, report.vouched) == (10, 10)  # 11 and 12 are the next run's


def test_records_the_ingest_has_not_stored_yet_are_awaited(audit_store):
    records = chain_of(10)
    audit_store.insert_decisions(records[:6])
    verification = StoreVerification(audit_store, TRUST)
    verification.run({CHAIN: signed(records[-1])})
    assert verification.pending() == [CHAIN]
    audit_store.insert_decisions(records[6:])
    verification.catch_up({CHAIN: signed(records[-1])})
    assert verification.report().intact


def test_records_no_checkpoint_comes_for_are_reported_when_the_wait_ends(audit_store):
    records = chain_of(8)
    audit_store.insert_decisions(records)
    verification = StoreVerification(audit_store, TRUST)
    verification.run({CHAIN: signed(records[5])})
    verification.catch_up({CHAIN: signed(records[5])})  # nothing newer came
    assert verification.pending() == [CHAIN]
    assert _problems(verification.report()) == {("unsigned", 7)}


# -- the database's own guard -------------------------------------------------------------------------------------
def test_the_django_backend_refuses_changes_and_removals_at_every_level(transactional_db):
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
    statements = ["UPDATE audit_logs SET decision = 'APPROVED'", "DELETE FROM audit_logs"]
    if connection.vendor == "postgresql":
        statements.append("TRUNCATE audit_logs")
    for sql in statements:  # the database's own triggers
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    stored = Decision.objects.get(pk=row.pk)
    assert Decision.objects.count() == 2
    assert (stored.decision, stored.payload) == (
        records[stored.decision_id].decision,
        records[stored.decision_id].payload.decode(),
    )  # unchanged


@pytest.mark.parametrize("table", [t for t in triggers.TABLES if t != "audit_logs"])
def test_every_audit_table_refuses_updates_and_removals_at_the_database(transactional_db, table):
    from datetime import UTC, datetime

    from audit.records import DELIVERY, AlertEvent, AlertRecord, Incident, QuarantinedEvent, Thought, ToolCall
    from audit.store.django_db import DjangoAuditStore

    now = datetime.now(UTC)
    store = DjangoAuditStore()
    records = chain_of(2)
    store.insert_decisions(records)  # the second is a rejection: reason rows too
    store.insert_checkpoints([stored(signed(records[1]))])
    store.quarantine([QuarantinedEvent(7, "cio.audit.decision.approved", b"not json", {}, "bad", now)])
    store.put_thought(Thought("th-1", now, "rules-v1", {}, {}, "why"))
    store.insert_incident(Incident("in-1", now, "rejection_burst", "a burst", {}, None, None, None, (1.0,)))
    store.insert_alert(AlertRecord("al-1", now, "critical", "gate", "down", {}, None, now))
    store.add_alert_event(AlertEvent("ev-1", "al-1", now, DELIVERY, "email", 1, "failed"))
    store.insert_tool_call(
        ToolCall("c-1", now, "agent", "activate_policy_version", {}, "error", "X", "no", "0" * 32, 1)
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        before = cursor.fetchone()[0]
    statements = [f"UPDATE {table} SET id = id + 1000", f"DELETE FROM {table}"]
    if connection.vendor == "postgresql":
        statements.append(f"TRUNCATE {table}")
    for sql in statements:
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        assert cursor.fetchone()[0] == before > 0


def test_audit_verify_exits_1_with_one_line_per_finding_and_0_when_intact(
    audit_store, tamper, nats_url, settings, monkeypatch
):
    """The command reads the latest checkpoints from the checkpoint stream (a real NATS here)."""
    import asyncio
    from io import StringIO

    import nats
    from django.core.management import CommandError, call_command

    import audit.store
    from cio_kernel.audit_checkpoint import CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX, checkpoint_subject
    from cio_kernel.audit_stream import checkpoint_stream_config
    from tests.factories import TEST_AUDIT_PUBLIC_KEY

    monkeypatch.setattr(audit.store, "_store", audit_store)
    settings.NATS_URL = nats_url
    settings.CIO_AUDIT_PUBLIC_KEY = TEST_AUDIT_PUBLIC_KEY
    records = chain_of(6)
    audit_store.insert_decisions(records)

    async def publish(*checkpoints) -> None:
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await js.add_stream(checkpoint_stream_config(CHECKPOINT_STREAM, CHECKPOINT_SUBJECT_PREFIX))
        for checkpoint in checkpoints:
            await js.publish(checkpoint_subject(checkpoint.chain), checkpoint.model_dump_json().encode())
        await nc.close()

    asyncio.run(publish(signed(records[2]), signed(records[5])))  # the stream keeps both; verify reads the latest
    out = StringIO()
    call_command("audit_verify", "--settle", "0", stdout=out)
    assert "intact: 1 chains, 6 records (6 vouched for by signed checkpoints), 0 findings" in out.getvalue()
    tamper.remove(records[2].decision_id)
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", "--settle", "0", "--head", f"{CHAIN}=7", stdout=out, stderr=err)
    assert exited.value.code == 1
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["gap", "tail"] and "NOT intact" in err.getvalue()
    for head in (CHAIN, f"{CHAIN}=²", f"{CHAIN}=٧"):  # "²" raised a bare ValueError, "٧" was read as 7
        with pytest.raises(CommandError, match="CHAIN=SEQ"):
            call_command("audit_verify", "--head", head)
    settings.CIO_AUDIT_PUBLIC_KEY = ""
    settings.CIO_AUDIT_PUBLIC_KEY_FILE = None
    with pytest.raises(SystemExit) as exited:
        call_command("audit_verify", stdout=StringIO(), stderr=(err := StringIO()))
    assert exited.value.code == 2 and "no trusted gate key" in err.getvalue()


def test_retention_keeps_verification_whole_and_refuses_to_remove_evidence(audit_store, tamper):
    from audit.retention import prune

    records = chain_of(12)
    audit_store.insert_decisions(records)
    old, recent = signed(records[5], ts=records[5].ts), signed(records[9], ts=records[9].ts + timedelta(days=30))
    audit_store.insert_checkpoints([stored(old), stored(recent)])
    head = {CHAIN: signed(records[-1], ts=records[-1].ts + timedelta(days=30))}
    retained_from = records[5].ts + timedelta(days=1)  # the checkpoint at 6 is old enough, the one at 10 is not
    outcome = prune(audit_store, TRUST, retained_from)
    assert [(o.chain, o.through.seq if o.through else None, o.removed, o.refused) for o in outcome] == [
        (CHAIN, 6, 6, [])
    ]
    assert [r.seq for r in audit_store.chain_records(CHAIN)] == list(range(7, 13))
    assert [c.seq for c in audit_store.checkpoints(CHAIN)] == [6, 10]  # the anchor stays
    assert verify_store(audit_store, TRUST, head, retained_from=retained_from).intact
    # Without a retention period nothing may be missing at the start, however it went.
    assert ("gap", 7) in _problems(verify_store(audit_store, TRUST, head))
    # Removing the anchor too (to pretend the chain starts later) is found.
    tamper.remove_checkpoints()
    assert ("gap", 7) in _problems(verify_store(audit_store, TRUST, head, retained_from=retained_from))


def test_retention_keeps_a_chain_that_does_not_verify(audit_store, tamper):
    from audit.retention import prune

    records = chain_of(10)
    audit_store.insert_decisions(records)
    audit_store.insert_checkpoints([stored(signed(records[7], ts=records[7].ts))])
    changed = rewritten(records[2], decision="APPROVED", reasons=[])
    for record in relinked([changed, *records[3:]], records[1].hash or GENESIS):
        tamper.put(record)
    (outcome,) = prune(audit_store, TRUST, records[9].ts + timedelta(days=1))
    assert outcome.removed == 0 and [f.problem for f in outcome.refused] == ["signed"]
    assert audit_store.count_decisions() == 10  # the evidence stays
